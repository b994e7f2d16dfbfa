/**
 * What a replay publishes for one DLQ record: the original key and value, the original headers without any DLQ
 * dialect's provenance (sluice's, Connect's, Spring's, KIP-1191's), and the replay's own headers, which count
 * replays (the loop guard) and point back at the DLQ record.
 */
import { ReplayHeaders } from './dlq-headers.js';
import type { DlqEntry } from './dlq-filter.js';
import type { OutgoingRecord } from './record-producer.js';

/** Header names that describe a dead-lettering, not the record: a replayed record leaves them behind. */
const provenancePrefixes = ['sluice.', '__connect.errors.', 'kafka_dlt-', '__dlq.errors.'];

export interface ReplayStamp {
  replayId: string;
  dlqTopic: string;
  replayedAt: Date;
}

/**
 * Back to its source topic, a record goes to its source partition (whatever partitioner its producer used) with its
 * original timestamp; elsewhere (`--to`), the key decides the partition.
 */
export function replayRecord(entry: DlqEntry, stamp: ReplayStamp, target: string): OutgoingRecord {
  const headers: OutgoingRecord['headers'] = {};
  for (const [name, value] of Object.entries(entry.headers)) {
    if (value === undefined || provenancePrefixes.some((prefix) => name.startsWith(prefix))) continue;
    headers[name] = value;
  }
  headers[ReplayHeaders.replayCount] = String(entry.origin.replayCount + 1);
  headers[ReplayHeaders.replayId] = stamp.replayId;
  headers[ReplayHeaders.replayedAt] = stamp.replayedAt.toISOString();
  headers[ReplayHeaders.fromTopic] = stamp.dlqTopic;
  headers[ReplayHeaders.fromPartition] = String(entry.partition);
  headers[ReplayHeaders.fromOffset] = entry.offset;
  const { topic, partition, timestampMs } = entry.origin;
  const home = target === topic && partition !== undefined;
  return {
    key: entry.key,
    value: entry.value,
    headers,
    ...(home ? { partition: partition! } : {}),
    ...(timestampMs !== undefined ? { timestamp: String(timestampMs) } : {}),
  };
}

/** The source record a DLQ record stands for, `topic[partition]@offset`: duplicates in the DLQ share it. */
export function sourceCoordinates(entry: DlqEntry): string | undefined {
  const { topic, partition, offset } = entry.origin;
  return topic === undefined || partition === undefined || offset === undefined ? undefined : `${topic}[${partition}]@${offset}`;
}
