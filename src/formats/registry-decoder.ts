/**
 * Decodes a batch's values (or keys, for a route's `keyFormat`) from the schema registry's wire format into JSON
 * objects, before the routes read them:
 * JSON text from avro-json.ts and protobuf-json.ts; a JSON Schema payload is already JSON and is only unwrapped.
 *
 * Failures: a value that is not in the wire format, whose schema id the registry does not know, whose schema is of
 * another type or does not parse, or that does not decode with it is poison, with that reason. A registry that
 * cannot be reached throws a retriable SchemaRegistryError out of {@link RecordDecoder.decode}: the batch waits,
 * nothing is dead-lettered.
 */
import type { RegistryFormat } from '../config/route-options.js';
import { errorMessage } from '../errors.js';
import type { SourceRecord } from '../record.js';
import { avroReader, type AvroNamedTypes } from './avro-json.js';
import { JsonOut } from './json-out.js';
import { decodeEach, decodedRecord, type DecodedBatch, type RecordDecoder, type RecordPart } from './record-decoder.js';
import { protobufReader, type ProtoFiles } from './protobuf-json.js';
import type { RegisteredSchema, SchemaRegistryClient, SchemaType } from './schema-registry.js';
import { RegistryRequests } from './registry-requests.js';
import { readWireHeader } from './wire-format.js';

/**
 * Reads a payload (from `offset`) into the bytes of a JSON value, written to `out`. Throws with the reason it cannot.
 * `checked`: every value it reads is one JSON object within maxJsonDepth (no later step need scan it).
 */
type PayloadReader = ((bytes: Buffer, offset: number, out: JsonOut) => Buffer) & { checked?: boolean };

/** How many times larger than the record its decoded JSON may be. */
const decodedGrowth = 16;
/** Requests a batch has open to the schema registry at once, at most. */
const maxRequestsAtOnce = 8;

const schemaTypeOf: Record<RegistryFormat, SchemaType> = { avro: 'AVRO', protobuf: 'PROTOBUF', 'json-schema': 'JSON' };

export class RegistryDecoder implements RecordDecoder {
  readonly format: RegistryFormat;
  readonly #part: RecordPart;
  readonly #registry: SchemaRegistryClient;
  /** Schema id → its reader, or why records written with it cannot be read. Only ids the registry answered. */
  readonly #readers = new Map<number, PayloadReader | string>();

  readonly #maxJsonDepth: number;
  readonly #maxDecodedBytes: number;

  /**
   * `maxJsonDepth`: values nesting no deeper need no scan later. `maxRecordBytes`: a decoded value may be up to
   * {@link decodedGrowth} times larger (bytes become hex, names are spelled out), and no larger.
   */
  constructor(format: RegistryFormat, registry: SchemaRegistryClient, part: RecordPart = 'value', limits: { maxJsonDepth?: number; maxRecordBytes?: number } = {}) {
    this.format = format;
    this.#part = part;
    this.#maxJsonDepth = limits.maxJsonDepth ?? Infinity;
    this.#maxDecodedBytes = Math.max((limits.maxRecordBytes ?? Infinity) * decodedGrowth, 1024 * 1024);
    this.#registry = registry;
  }

  /** Decodes every record's value (or key). Throws a retriable SchemaRegistryError while the registry cannot be reached. */
  async decode(records: readonly SourceRecord[]): Promise<DecodedBatch> {
    const unknownIds = new Set<number>();
    for (const record of records) {
      const bytes = record[this.#part];
      if (bytes === null) continue;
      const header = readWireHeader(bytes);
      if (typeof header !== 'string' && !this.#readers.has(header.schemaId)) unknownIds.add(header.schemaId);
    }
    // Schemas the batch needs, asked for together, at most maxRequestsAtOnce requests at a time (see
    // RegistryRequests); an unreachable registry fails the whole batch (retried), and what it had not sent yet is
    // not sent. Why a schema cannot be read holds for this batch only: the registry may have it by the next one.
    const unreadable = new Map<number, string>();
    const requests = new RegistryRequests(maxRequestsAtOnce);
    try {
      await Promise.all(
        [...unknownIds].map(async (id) => {
          const schema = await this.#registry.schemaById(id, requests);
          if (typeof schema === 'string') unreadable.set(id, schema);
          else this.#readers.set(id, this.#readerFor(id, schema));
        }),
      );
    } finally {
      requests.close();
    }
    // The batch's decoded values share chunks of one writer.
    const out = new JsonOut(this.#maxDecodedBytes);
    return decodeEach(records, (record) => this.#decodeOne(record, out, unreadable));
  }

  /** The decoded record, or why the record cannot be decoded. */
  #decodeOne(record: SourceRecord, out: JsonOut, unreadable: ReadonlyMap<number, string>): SourceRecord | string {
    const part = this.#part;
    const bytes = record[part];
    if (bytes === null) return record;
    const header = readWireHeader(bytes);
    if (typeof header === 'string') return `${part}: ${header}`;
    const reader = this.#readers.get(header.schemaId) ?? unreadable.get(header.schemaId);
    if (reader === undefined) return `${part}: schema id ${header.schemaId} is not in the schema registry`;
    if (typeof reader === 'string') return `${part}: ${reader}`;
    let json: Buffer;
    try {
      json = reader(bytes, header.offset, out);
    } catch (error) {
      return `${part} does not decode as ${this.format} with schema id ${header.schemaId}: ${errorMessage(error)}`;
    }
    return decodedRecord(record, part, json, reader.checked ? { span: [0, json.length] } : {});
  }

  #readerFor(id: number, schema: RegisteredSchema): PayloadReader | string {
    const expected = schemaTypeOf[this.format];
    if (schema.type !== expected) return `schema id ${id} is a ${schema.type} schema, and the route reads format=${this.format} (${expected})`;
    try {
      switch (this.format) {
        case 'avro': {
          const named: AvroNamedTypes = {};
          // Referenced schemas first: their named types are what the schema refers to.
          for (const ref of flattenReferences(schema)) avroReader(ref.text, named);
          const read = avroReader(schema.text, named);
          // A record schema that cannot nest past the limit: its values need no scan for their structure.
          return Object.assign(read, { checked: read.objectDepth !== undefined && read.objectDepth <= this.#maxJsonDepth });
        }
        case 'protobuf': {
          const files: ProtoFiles = { text: schema.text, imports: flattenReferences(schema).map((ref) => ({ name: ref.name, text: ref.text })) };
          const read = protobufReader(files);
          return (bytes, offset) => Buffer.from(read(bytes, offset));
        }
        case 'json-schema':
          // The payload is the JSON value itself: no copy.
          return (bytes, offset) => bytes.subarray(offset);
      }
    } catch (error) {
      return `schema id ${id} cannot be read as ${this.format}: ${errorMessage(error)}`;
    }
  }
}

/** A schema's references and theirs, depth first (a referenced schema before the one that refers to it), each once. */
function flattenReferences(schema: RegisteredSchema): Array<{ name: string; text: string }> {
  const out: Array<{ name: string; text: string }> = [];
  const seen = new Set<string>();
  const visit = (s: RegisteredSchema) => {
    for (const ref of s.references) {
      if (seen.has(ref.name)) continue;
      seen.add(ref.name);
      visit(ref.schema);
      out.push({ name: ref.name, text: ref.schema.text });
    }
  };
  visit(schema);
  return out;
}
