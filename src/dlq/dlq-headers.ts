import { SluiceError, sqlStateOf } from '../errors.js';
import type { SourceRecord } from '../record.js';

/**
 * Provenance headers sluice adds to every DLQ record, next to the original headers (which are kept unchanged).
 * Values are UTF-8 text. The names are part of sluice's interface: the README lists them and replay reads them.
 */
export const DlqHeaders = {
  sourceTopic: 'sluice.source.topic',
  sourcePartition: 'sluice.source.partition',
  sourceOffset: 'sluice.source.offset',
  /** The original record's timestamp, milliseconds since the epoch. */
  sourceTimestamp: 'sluice.source.timestamp',
  consumerGroup: 'sluice.consumer.group',
  /** sluice's error code, such as SLUICE_POISON_RECORD. */
  errorCode: 'sluice.error.code',
  /** The error's class, such as PoisonRecordError. */
  errorClass: 'sluice.error.class',
  errorMessage: 'sluice.error.message',
  /** The stack, cut to `maxStackBytes`. */
  errorStack: 'sluice.error.stack',
  /** PostgreSQL's SQLSTATE, when the database rejected the record. */
  sqlState: 'sluice.error.sqlstate',
  /** Attempts at the record's batch, the one that dead-lettered it included. */
  attempts: 'sluice.attempts',
  /** When the record was dead-lettered, ISO 8601 UTC. */
  failedAt: 'sluice.failed.at',
  sluiceVersion: 'sluice.version',
  /**
   * The W3C trace context of the flush that dead-lettered the record (its DLQ send span), when tracing is on. The
   * record's own `traceparent`, its producer's, is kept as it came: a replay links to both.
   */
  traceparent: 'sluice.error.traceparent',
} as const;

/**
 * Headers a replay adds to the records it publishes again (and that a DLQ record carries when it failed after a
 * replay): the loop guard counts them.
 */
export const ReplayHeaders = {
  /** How often the record has been replayed, this replay included. */
  replayCount: 'sluice.replay.count',
  replayId: 'sluice.replay.id',
  replayedAt: 'sluice.replay.at',
  /** The DLQ record it came from: topic, partition, offset. */
  fromTopic: 'sluice.replay.from.topic',
  fromPartition: 'sluice.replay.from.partition',
  fromOffset: 'sluice.replay.from.offset',
} as const;

export const maxStackBytes = 2048;
export const maxMessageBytes = 1024;

export interface ProvenanceContext {
  groupId: string;
  attempts: number;
  failedAt: Date;
  version: string;
}

/** The provenance headers of one poison record. */
export function provenanceHeaders(record: SourceRecord, error: SluiceError, context: ProvenanceContext): Record<string, string> {
  const headers: Record<string, string> = {
    [DlqHeaders.sourceTopic]: record.topic,
    [DlqHeaders.sourcePartition]: String(record.partition),
    [DlqHeaders.sourceOffset]: record.offset,
    [DlqHeaders.sourceTimestamp]: record.timestamp,
    [DlqHeaders.consumerGroup]: context.groupId,
    [DlqHeaders.errorCode]: error.code,
    [DlqHeaders.errorClass]: error.name,
    [DlqHeaders.errorMessage]: truncateUtf8(error.message, maxMessageBytes),
    [DlqHeaders.errorStack]: truncateUtf8(error.stack ?? '', maxStackBytes),
    [DlqHeaders.attempts]: String(context.attempts),
    [DlqHeaders.failedAt]: context.failedAt.toISOString(),
    [DlqHeaders.sluiceVersion]: context.version,
  };
  const sqlState = sqlStateOf(error);
  if (sqlState) headers[DlqHeaders.sqlState] = sqlState;
  return headers;
}

/** At most `maxBytes` of UTF-8, never cutting a character in two; a cut is marked with an ellipsis. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  const bytes = Buffer.from(text).subarray(0, maxBytes - 3);
  // Drop a trailing partial character: continuation bytes are 10xxxxxx.
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1]! & 0xc0) === 0x80) end--;
  if (end > 0 && bytes[end - 1]! >= 0xc0) end--;
  return `${bytes.subarray(0, end).toString('utf8')}…`;
}
