/** A Kafka record as sluice sees it, independent of the client library that fetched it. */
export interface SourceRecord {
  topic: string;
  partition: number;
  /** Kafka offsets are 64-bit; kept as the decimal string the client gives. */
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  /** Milliseconds since the epoch, as a decimal string. */
  timestamp: string;
  headers: Record<string, Buffer | string | Array<Buffer | string> | undefined>;
  /** Key plus value size, used for the byte bounds. */
  sizeBytes: number;
}

/** `topic:partition`: how sluice keys per-partition state. */
export function partitionKey(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}
