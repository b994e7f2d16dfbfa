/**
 * Headers across the kafkajs boundary, both ways, so that every other reader or writer of headers takes them as
 * they are.
 *
 * In: kafkajs gathers a fetched record's headers into a plain object by testing `headers[name] === undefined`, so a
 * header named like a member of Object.prototype (`constructor`, `toString`) comes out as `[that member, value]`:
 * recordHeaders gives it its own values back (kafkajs decodes every value as a Buffer, or null for a header with no
 * value).
 *
 * Out: kafkajs cannot write a header with no value (it measures every value as a string or Buffer): kafkaMessages
 * sends such a header with an empty value, so that its name at least reaches the DLQ or the replay.
 */
import type { IHeaders, Message } from 'kafkajs';
import type { OutgoingRecord } from '../dlq/record-producer.js';
import type { RecordHeaders } from '../record.js';

/** A fetched record's headers as sluice keeps them. */

export function recordHeaders(headers: IHeaders | undefined): RecordHeaders {
  if (!headers) return {};
  let fixed: RecordHeaders | undefined;
  // for…in rather than Object.entries: this runs for every record, and most have no headers (no array built).
  for (const name in headers) {
    if (!(name in Object.prototype)) continue;
    const values = ([] as unknown[]).concat(headers[name]).filter((v): v is Buffer | null => v === null || Buffer.isBuffer(v));
    fixed ??= { ...(headers as RecordHeaders) };
    fixed[name] = values.length === 1 ? values[0]! : values;
  }
  return fixed ?? (headers as RecordHeaders);
}

/** Records as kafkajs sends them: a header with no value goes with an empty one. */
export function kafkaMessages(records: OutgoingRecord[]): Message[] {
  return records.map((record) => {
    let headers: Message['headers'] | undefined;
    for (const [name, value] of Object.entries(record.headers)) {
      if (value !== null && !(Array.isArray(value) && value.includes(null))) continue;
      headers ??= { ...(record.headers as Message['headers']) };
      headers![name] = Array.isArray(value) ? value.map((v) => v ?? emptyHeaderValue) : emptyHeaderValue;
    }
    return headers ? { ...record, headers } : (record as Message);
  });
}

const emptyHeaderValue = Buffer.alloc(0);
