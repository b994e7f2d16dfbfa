/**
 * Turning a fetched record's value into the JSON object the routes read, before any route sees it: the schema
 * registry's wire formats (registry-decoder.ts), Kafka Connect's JSON envelopes (connect-json-decoder.ts), and the
 * change events of Debezium (debezium-envelope.ts) on top of either.
 *
 * A decoded record is a copy of the record with its value replaced; everything after reads it as a `json` value
 * (fields map to columns by name, keys and tombstones as for JSON). What leaves sluice is always the record as it
 * came: the DLQ gets the original bytes ({@link originalRecord}), so that a replay decodes them again. A change
 * event that deletes a row is a {@link isDeletion deletion}: its value is the deleted row's last state, from which
 * the route reads the key to delete.
 */
import { PoisonRecordError } from '../errors.js';
import type { SourceRecord } from '../record.js';
import type { PoisonRecord } from '../sinks/sink.js';

export interface DecodedBatch {
  /** The records that decoded (tombstones unchanged), in their order. */
  records: SourceRecord[];
  /** The records that cannot be decoded, as fetched, with the reason. */
  poison: PoisonRecord[];
}

export interface RecordDecoder {
  /** Decodes every record's value. May throw a retriable error (a schema registry that cannot be reached). */
  decode(records: readonly SourceRecord[]): Promise<DecodedBatch>;
}

/** Which part of a record a decoder reads: the value, or the Kafka key (a route's `keyFormat`). */
export type RecordPart = 'key' | 'value';

/**
 * A decoded copy of a fetched record: a class with fixed fields (records pass by the hundred thousand a second, and
 * every later step reads them), carrying the record as fetched, whether it deletes, and where in `value` its JSON
 * object is when a decoder has already checked it (then no later step scans it again).
 */
class DecodedRecord implements SourceRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly timestamp: string;
  readonly headers: SourceRecord['headers'];
  readonly sizeBytes: number;
  readonly fetched: SourceRecord;
  readonly deletes: boolean;
  /** The JSON object's place in `value`, checked (one object, within maxJsonDepth); undefined: not checked. */
  readonly objectSpan: [number, number] | undefined;

  constructor(from: SourceRecord, key: Buffer | null, value: Buffer | null, deletes: boolean, objectSpan: [number, number] | undefined) {
    this.topic = from.topic;
    this.partition = from.partition;
    this.offset = from.offset;
    this.key = key;
    this.value = value;
    this.timestamp = from.timestamp;
    this.headers = from.headers;
    this.sizeBytes = from.sizeBytes;
    this.fetched = originalRecord(from);
    this.deletes = deletes;
    this.objectSpan = objectSpan;
  }
}

/** The record as it was fetched from Kafka: itself, unless it is a decoded copy. */
export function originalRecord(record: SourceRecord): SourceRecord {
  return record instanceof DecodedRecord ? record.fetched : record;
}

/** Whether the record deletes a row (a change event's delete): its value is the row, for the key. */
export function isDeletion(record: SourceRecord): boolean {
  return record instanceof DecodedRecord && record.deletes;
}

/**
 * Where the record's value holds its JSON object, when a decoder has checked it is exactly one object nested no
 * deeper than maxJsonDepth; undefined when that is still to be checked.
 */
export function checkedObjectSpan(record: SourceRecord): [number, number] | undefined {
  return record instanceof DecodedRecord ? record.objectSpan : undefined;
}

/**
 * A decoded copy of `record` with `part` replaced. For the value, `span` is where its JSON object is if the decoder
 * checked it (a part of `bytes`: no copy needed), and `deletes` marks a change event's delete.
 */
export function decodedRecord(
  record: SourceRecord,
  part: RecordPart,
  bytes: Buffer | null,
  options: { deletes?: boolean; span?: [number, number] } = {},
): SourceRecord {
  if (part === 'key') return new DecodedRecord(record, bytes, record.value, isDeletion(record), checkedObjectSpan(record));
  return new DecodedRecord(record, record.key, bytes, options.deletes === true, options.span);
}

/**
 * Decoders applied one after the other (the key's, the value's, the envelope's); poison from any of them. A record
 * larger than `maxRecordBytes` is not decoded at all (decoded, it could be many times larger): it is passed on as it
 * is, in its place, and the route refuses it for its size.
 */
export function decoderChain(stages: RecordDecoder[], maxRecordBytes = Infinity): RecordDecoder | undefined {
  if (stages.length === 0) return undefined;
  return {
    async decode(records) {
      const oversized = records.filter((r) => r.sizeBytes > maxRecordBytes);
      let batch: DecodedBatch = { records: oversized.length > 0 ? records.filter((r) => r.sizeBytes <= maxRecordBytes) : [...records], poison: [] };
      for (const stage of stages) {
        const next = await stage.decode(batch.records);
        batch = { records: next.records, poison: [...batch.poison, ...next.poison] };
      }
      if (oversized.length > 0) {
        const position = new Map(records.map((r, i) => [r, i]));
        batch.records = [...batch.records, ...oversized].sort((a, b) => position.get(originalRecord(a))! - position.get(originalRecord(b))!);
      }
      return batch;
    },
  };
}

/** Decodes each record with `decodeOne`, which answers the decoded record or why it cannot be decoded. */
export function decodeEach(records: readonly SourceRecord[], decodeOne: (record: SourceRecord) => SourceRecord | string): DecodedBatch {
  const out: SourceRecord[] = [];
  const poison: PoisonRecord[] = [];
  for (const record of records) {
    const decoded = decodeOne(record);
    if (typeof decoded === 'string') {
      // As fetched: an earlier stage's copy never stands for the record outside the decoders.
      const fetchedRecord = originalRecord(record);
      poison.push({ record: fetchedRecord, error: new PoisonRecordError(fetchedRecord, decoded) });
    }
    else out.push(decoded);
  }
  return { records: out, poison };
}
