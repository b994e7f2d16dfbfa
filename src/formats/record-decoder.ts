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

/**
 * What a decoded copy carries beside its fields: the record as fetched, and whether it deletes. Symbol-keyed
 * properties of the copy itself rather than weak maps: millions of records a second would otherwise each add an
 * entry the garbage collector must trace as an ephemeron.
 */
const fetched = Symbol('sluice.fetchedRecord');
const deletes = Symbol('sluice.deletes');
type DecodedCopy = SourceRecord & { [fetched]?: SourceRecord; [deletes]?: boolean };

/** The record as it was fetched from Kafka: itself, unless it is a decoded copy. */
export function originalRecord(record: SourceRecord): SourceRecord {
  return (record as DecodedCopy)[fetched] ?? record;
}

/** Whether the record deletes a row (a change event's delete): its value is the row, for the key. */
export function isDeletion(record: SourceRecord): boolean {
  return (record as DecodedCopy)[deletes] === true;
}

/** Which part of a record a decoder reads: the value, or the Kafka key (a route's `keyFormat`). */
export type RecordPart = 'key' | 'value';

/** A decoded copy of `record` with `part` replaced, remembered as coming from the record as fetched. */
export function decodedRecord(record: SourceRecord, part: RecordPart, bytes: Buffer | null, options: { deletes?: boolean } = {}): SourceRecord {
  const decoded: DecodedCopy = { ...record, [part]: bytes, [fetched]: originalRecord(record), [deletes]: options.deletes === true };
  return decoded;
}

/** Decoders applied one after the other (the key's, the value's, the envelope's); poison from any of them. */
export function decoderChain(stages: RecordDecoder[]): RecordDecoder | undefined {
  if (stages.length <= 1) return stages[0];
  return {
    async decode(records) {
      let batch: DecodedBatch = { records: [...records], poison: [] };
      for (const stage of stages) {
        const next = await stage.decode(batch.records);
        batch = { records: next.records, poison: [...batch.poison, ...next.poison] };
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
    if (typeof decoded === 'string') poison.push({ record, error: new PoisonRecordError(record, decoded) });
    else out.push(decoded);
  }
  return { records: out, poison };
}
