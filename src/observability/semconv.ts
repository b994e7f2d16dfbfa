/**
 * OpenTelemetry attribute keys used by sluice, in one place. Messaging and database keys follow the semantic
 * conventions (messaging.*, db.*, error.type; v1.44); sluice's own are namespaced `sluice.*`.
 */
export const Attr = {
  messagingSystem: 'messaging.system',
  operationName: 'messaging.operation.name',
  operationType: 'messaging.operation.type',
  destinationName: 'messaging.destination.name',
  partitionId: 'messaging.destination.partition.id',
  consumerGroup: 'messaging.consumer.group.name',
  batchMessageCount: 'messaging.batch.message_count',
  kafkaOffset: 'messaging.kafka.offset',
  dbSystem: 'db.system.name',
  dbCollection: 'db.collection.name',
  dbOperation: 'db.operation.name',
  dbBatchSize: 'db.operation.batch.size',
  dbStatusCode: 'db.response.status_code',
  errorType: 'error.type',
  firstOffset: 'sluice.batch.first_offset',
  lastOffset: 'sluice.batch.last_offset',
  flushReason: 'sluice.flush.reason',
  flushOutcome: 'sluice.flush.outcome',
  attempts: 'sluice.flush.attempts',
  written: 'sluice.records.written',
  stale: 'sluice.records.stale',
  skipped: 'sluice.records.skipped',
  deadLettered: 'sluice.records.dead_lettered',
  linksDropped: 'sluice.links.dropped',
  isolated: 'sluice.records.isolated',
  statements: 'sluice.statements',
  replayId: 'sluice.replay.id',
  dlqTopic: 'sluice.dlq.topic',
} as const;

/** `messaging.system` for every span and metric of sluice's. */
export const messagingSystem = 'kafka';
