/**
 * OpenTelemetry attribute keys used by sluice, in one place. Messaging and database keys follow the semantic
 * conventions (messaging.*, db.*); sluice-specific ones are namespaced `sluice.*`.
 */
export const Attr = {
  messagingSystem: 'messaging.system',
  destinationName: 'messaging.destination.name',
  partitionId: 'messaging.destination.partition.id',
  consumerGroup: 'messaging.consumer.group.name',
  batchMessageCount: 'messaging.batch.message_count',
  dbSystem: 'db.system.name',
  errorType: 'error.type',
  flushReason: 'sluice.flush.reason',
  upserted: 'sluice.rows.upserted',
  deleted: 'sluice.rows.deleted',
} as const;
