import type { HeaderValue } from '../record.js';

/** A record for the DLQ: the original key, value and headers, plus sluice's provenance headers. */
export interface OutgoingRecord {
  key: Buffer | null;
  value: Buffer | null;
  /** A null value: the record carried the name with no value (kafkajs sends it empty, see consumer/kafkajs-headers.ts). */
  headers: Record<string, HeaderValue | HeaderValue[]>;
  /** A partition of its own choosing (a replay back to the source partition); by default the key's. */
  partition?: number;
  /** ms since the epoch, as text; by default the time of sending. */
  timestamp?: string;
}

/**
 * What the DLQ needs from a Kafka producer: a send that resolves only once every in-sync replica has the records
 * (acks=all, idempotent, so a retried send does not write twice). Implemented in src/consumer.
 */
export interface RecordProducer {
  send(topic: string, records: OutgoingRecord[]): Promise<void>;
  /** Bytes of records one send to `topic` may carry: its record batch must fit the topic's max.message.bytes. */
  maxSendBytes(topic: string): number;
  close(): Promise<void>;
}
