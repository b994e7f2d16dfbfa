/**
 * Where a dead-lettered record came from and why, read from its headers in whichever dialect wrote them: sluice's own,
 * Kafka Connect's (`__connect.errors.*`), Spring Kafka's (`kafka_dlt-*`), Apache Kafka's share-group DLQ (KIP-1191,
 * `__dlq.errors.*`), or the ad hoc `x-original-topic`. One normalised origin for all of them, so that teams moving to
 * sluice can inspect and drain their old DLQs with the same commands.
 *
 * Encodings (facts from each project's source): every value is UTF-8 text, except Spring's original partition
 * (4-byte big-endian int) and offset and timestamp (8-byte big-endian longs). A record dead-lettered twice carries
 * the headers twice (kafkajs hands repeated names as an array): the last one is the latest failure.
 */
import { DlqHeaders, ReplayHeaders } from './dlq-headers.js';
import { headerText, lastHeader, type RecordHeaders } from '../record.js';

export type DlqDialect = 'sluice' | 'kafka-connect' | 'spring-kafka' | 'kafka-share-group' | 'x-original' | 'unknown';


export interface DlqOrigin {
  dialect: DlqDialect;
  /** The source record's coordinates, when the dialect says (Connect writes "" and -1 when it had no record). */
  topic: string | undefined;
  partition: number | undefined;
  offset: string | undefined;
  /** The source record's timestamp, ms since the epoch. */
  timestampMs: number | undefined;
  group: string | undefined;
  /** sluice's error code (SLUICE_POISON_RECORD), or the dialect's nearest: Connect's stage, Spring's cause class. */
  errorCode: string | undefined;
  /** The exception's class. */
  errorClass: string | undefined;
  errorMessage: string | undefined;
  sqlState: string | undefined;
  /** How often the record was tried: sluice's flush attempts, KIP-1191's delivery count. */
  attempts: number | undefined;
  /** How often sluice has replayed it already (0 when never). */
  replayCount: number;
}

function integer(headers: RecordHeaders, name: string): number | undefined {
  const value = headerText(headers, name);
  if (value === undefined || !/^-?\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

/** A Spring header: a big-endian binary number (4 or 8 bytes); text too, from producers that write it so. */
function springNumber(headers: RecordHeaders, name: string): string | undefined {
  const value = lastHeader(headers, name);
  if (value === undefined) return undefined;
  if (Buffer.isBuffer(value)) {
    // Digits written as text (by a producer other than Spring) read as text, whatever their length.
    const asText = value.toString('latin1');
    if (/^-?\d+$/.test(asText)) return asText;
    if (value.length === 4) return String(value.readInt32BE(0));
    if (value.length === 8) return value.readBigInt64BE(0).toString();
    return undefined;
  }
  return /^-?\d+$/.test(value) ? value : undefined;
}

const present = (headers: RecordHeaders, prefix: string) => Object.keys(headers).some((name) => name.startsWith(prefix));

/** The record's origin; fields a dialect does not carry are undefined. */
export function readOrigin(headers: RecordHeaders): DlqOrigin {
  const replayCount = integer(headers, ReplayHeaders.replayCount) ?? 0;
  const empty = { sqlState: undefined, attempts: undefined, group: undefined, timestampMs: undefined, replayCount };
  if (headers[DlqHeaders.sourceTopic] !== undefined) {
    return {
      dialect: 'sluice',
      topic: headerText(headers, DlqHeaders.sourceTopic),
      partition: integer(headers, DlqHeaders.sourcePartition),
      offset: headerText(headers, DlqHeaders.sourceOffset),
      timestampMs: integer(headers, DlqHeaders.sourceTimestamp),
      group: headerText(headers, DlqHeaders.consumerGroup),
      errorCode: headerText(headers, DlqHeaders.errorCode),
      errorClass: headerText(headers, DlqHeaders.errorClass),
      errorMessage: headerText(headers, DlqHeaders.errorMessage),
      sqlState: headerText(headers, DlqHeaders.sqlState),
      attempts: integer(headers, DlqHeaders.attempts),
      replayCount,
    };
  }
  if (present(headers, '__connect.errors.')) {
    const topic = headerText(headers, '__connect.errors.topic');
    const partition = integer(headers, '__connect.errors.partition');
    const offset = headerText(headers, '__connect.errors.offset');
    return {
      ...empty,
      dialect: 'kafka-connect',
      // Connect writes "" and -1 for an error that had no source record.
      topic: topic ? topic : undefined,
      partition: partition !== undefined && partition >= 0 ? partition : undefined,
      offset: offset !== undefined && offset !== '-1' ? offset : undefined,
      errorCode: headerText(headers, '__connect.errors.stage'),
      errorClass: headerText(headers, '__connect.errors.exception.class.name'),
      errorMessage: headerText(headers, '__connect.errors.exception.message'),
    };
  }
  if (present(headers, 'kafka_dlt-')) {
    const timestamp = springNumber(headers, 'kafka_dlt-original-timestamp');
    const partition = springNumber(headers, 'kafka_dlt-original-partition');
    return {
      ...empty,
      dialect: 'spring-kafka',
      topic: headerText(headers, 'kafka_dlt-original-topic'),
      partition: partition === undefined ? undefined : Number(partition),
      offset: springNumber(headers, 'kafka_dlt-original-offset'),
      timestampMs: timestamp === undefined ? undefined : Number(timestamp),
      group: headerText(headers, 'kafka_dlt-original-consumer-group'),
      errorCode: headerText(headers, 'kafka_dlt-exception-cause-fqcn'),
      errorClass: headerText(headers, 'kafka_dlt-exception-fqcn'),
      errorMessage: headerText(headers, 'kafka_dlt-exception-message'),
    };
  }
  if (present(headers, '__dlq.errors.')) {
    return {
      ...empty,
      dialect: 'kafka-share-group',
      topic: headerText(headers, '__dlq.errors.topic'),
      partition: integer(headers, '__dlq.errors.partition'),
      offset: headerText(headers, '__dlq.errors.offset'),
      group: headerText(headers, '__dlq.errors.group'),
      errorCode: undefined,
      errorClass: undefined,
      errorMessage: headerText(headers, '__dlq.errors.message'),
      attempts: integer(headers, '__dlq.errors.delivery.count'),
    };
  }
  const original = headerText(headers, 'x-original-topic');
  return {
    ...empty,
    dialect: original === undefined ? 'unknown' : 'x-original',
    topic: original,
    partition: undefined,
    offset: undefined,
    errorCode: undefined,
    errorClass: undefined,
    errorMessage: undefined,
  };
}
