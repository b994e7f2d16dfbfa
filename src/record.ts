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
  /** A header whose value is null on the wire (Kafka allows it) is null here. */
  headers: Record<string, HeaderValue | HeaderValue[] | undefined>;
  /** Key, value and header bytes: what maxRecordBytes and the buffer cap count. */
  sizeBytes: number;
}

/** Headers as a record carries them: Buffers, several values of one name as an array. */
export type RecordHeaders = SourceRecord['headers'];

/** One value of a header: null where the record carries the name with no value (Kafka allows it). */
export type HeaderValue = Buffer | string | null;

/** Each value of each header, a repeated name's values in order. */
export function forEachHeader(headers: RecordHeaders, visit: (name: string, value: HeaderValue) => void): void {
  // for…in rather than Object.entries: this runs for every record, and most have no headers (no array built).
  for (const name in headers) {
    if (!Object.hasOwn(headers, name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) visit(name, v);
    else visit(name, value);
  }
}

/** Bytes of a header value (none for a null one). */
export const headerValueBytes = (value: HeaderValue): number => (value === null ? 0 : Buffer.byteLength(value));

/** What a record's headers hold: names and values, in bytes. They count in maxRecordBytes and the buffer cap. */
export function recordHeaderBytes(headers: RecordHeaders): number {
  let bytes = 0;
  forEachHeader(headers, (name, value) => (bytes += Buffer.byteLength(name) + headerValueBytes(value)));
  return bytes;
}

/** A header's last value (a name repeated, as a record dead-lettered twice has them), or undefined (a null one too). */
export function lastHeader(headers: RecordHeaders, name: string): Buffer | string | undefined {
  const value = headers[name];
  return (Array.isArray(value) ? value.at(-1) : value) ?? undefined;
}

/** A header's last value as UTF-8 text, or undefined. */
export function headerText(headers: RecordHeaders, name: string): string | undefined {
  const value = lastHeader(headers, name);
  return value === undefined ? undefined : Buffer.isBuffer(value) ? value.toString('utf8') : value;
}

/** `topic:partition`: how sluice keys per-partition state. */
export function partitionKey(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}

/**
 * What one fetch of a partition covers: the offsets [fromOffset, toOffset), from the position the fetch was made
 * from to the end of the last Kafka record batch it returned, and the records in that range. Offsets inside it that
 * hold no record (a transaction's control record, an aborted transaction's records under read_committed, records
 * removed by compaction) are covered all the same: no later fetch can return a record there.
 */
export interface FetchedRange {
  fromOffset: string;
  toOffset: string;
  /** In offset order; may be empty (a fetch that returned only control records or aborted ones). */
  records: SourceRecord[];
}

/** Partitions of one topic, as a group assignment gives them. */
export interface Assignment {
  topic: string;
  partitions: number[];
}
