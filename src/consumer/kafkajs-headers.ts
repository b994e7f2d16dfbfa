/**
 * A fetched record's headers as sluice keeps them. kafkajs gathers them into a plain object by testing
 * `headers[name] === undefined`, so a header named like a member of Object.prototype (`constructor`, `toString`)
 * comes out as `[that member, value]`: here it gets its own values back (kafkajs decodes every value as a Buffer,
 * or null for a header with no value). Every other reader of headers can then take them as they are.
 */
import type { IHeaders } from 'kafkajs';
import type { RecordHeaders } from '../record.js';

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
