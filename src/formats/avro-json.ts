/**
 * Avro binary → the JSON text of json-text.ts, in one pass over the bytes, compiled once per writer schema.
 *
 * avsc parses and checks the schema (named types, namespaces, references); the reading itself is compiled here from
 * its type tree, because what sluice needs is not avsc's JavaScript values but PostgreSQL-ready text: a `long` never
 * becomes a `number` that could lose digits, a `decimal` never a float, a `timestamp-micros` keeps its microseconds.
 * Each record is read with the schema it was written with (the id in its wire header): fields map to columns by
 * name, so a field added by a later schema version simply starts filling its column.
 *
 * Logical types (Avro 1.11 spec, "Logical Types"): decimal (bytes or fixed) → number text; timestamp-millis,
 * -micros, -nanos → ISO instant; local-timestamp-* → ISO without zone; date → `YYYY-MM-DD`; time-millis,
 * -micros → `HH:MM:SS.ffffff`; uuid → its string. A logical type on the wrong underlying type is ignored, as the
 * spec says. Nested records, maps and arrays become JSON objects and arrays (for `jsonb` columns); a union is its
 * branch's value (a `null` branch is JSON null, so the column is NULL).
 *
 * Schemas written by Kafka Connect's AvroConverter (Debezium's among them) mark temporal types with `connect.name`
 * rather than a logical type (`io.debezium.time.MicroTimestamp` on a long): those are read as the logical type they
 * stand for (connect-types.ts).
 */
import avro from 'avsc';
import { isUtf8 } from 'node:buffer';
import { connectLogicalTypes } from './connect-types.js';
import { dateText, decimalText, doubleText, floatText, instantText, jsonString, timeOfDayText } from './json-text.js';
import type { JsonOut } from './json-out.js';

/** The bytes being read and the position in them. */
interface Tap {
  buf: Buffer;
  pos: number;
}

/** Reads one value at the tap's position and writes its JSON text. Throws AvroDecodeError. */
type Reader = (tap: Tap, out: JsonOut) => void;

/** The bytes do not hold a value of the schema (truncated, a union index out of range, invalid UTF-8…). */
export class AvroDecodeError extends Error {}

const truncated = () => new AvroDecodeError('the Avro value is truncated');

const logicalNames = [
  'decimal',
  'uuid',
  'date',
  'time-millis',
  'time-micros',
  'timestamp-millis',
  'timestamp-micros',
  'timestamp-nanos',
  'local-timestamp-millis',
  'local-timestamp-micros',
  'local-timestamp-nanos',
] as const;
type LogicalName = (typeof logicalNames)[number];

/**
 * Marks where a schema has a logical type, keeping its attributes; the reading is compiled below. (avsc only
 * keeps a logical type's annotation on the type tree when a class is registered for it.)
 */
class LogicalMark extends avro.types.LogicalType {
  readonly logical: LogicalName;
  readonly scale: number;
  readonly precision: number;
  constructor(schema: avro.Schema, opts?: unknown) {
    super(schema, opts);
    const attrs = schema as { logicalType: LogicalName; scale?: unknown; precision?: unknown };
    this.logical = attrs.logicalType;
    this.scale = typeof attrs.scale === 'number' ? attrs.scale : 0;
    this.precision = typeof attrs.precision === 'number' ? attrs.precision : 0;
  }
  protected override _fromValue(value: unknown): unknown {
    return value;
  }
  protected override _toValue(value: unknown): unknown {
    return value;
  }
  protected override _resolve(type: avro.Type): unknown {
    return type.typeName === this.underlyingType.typeName ? (value: unknown) => value : undefined;
  }
}

const logicalTypes = Object.fromEntries(logicalNames.map((name) => [name, LogicalMark]));

/** Named types already parsed (a schema's references), by full name, for the schemas that refer to them. */
export type AvroNamedTypes = Record<string, avro.Type>;

/**
 * Parses a writer schema (JSON text) into a reader of its binary values. `named` holds the types of the schemas it
 * references, and receives its own. Throws avsc's error for a schema that is not valid Avro.
 */
export function avroReader(schemaText: string, named: AvroNamedTypes = {}): AvroReader {
  const schema = withConnectLogicalTypes(JSON.parse(schemaText)) as avro.Schema;
  const type = avro.Type.forSchema(schema, { logicalTypes, registry: named, wrapUnions: true });
  const read = compile(type, new Map());
  const isRecord = type.typeName === 'record' || type.typeName === 'error';
  const reader = (bytes: Buffer, offset: number, out: JsonOut): Buffer => {
    const tap: Tap = { buf: bytes, pos: offset };
    out.begin();
    try {
      read(tap, out);
      if (tap.pos !== bytes.length) {
        throw new AvroDecodeError(`${bytes.length - tap.pos} bytes are left after the Avro value (was it written with another schema?)`);
      }
    } catch (error) {
      out.abandon();
      throw error;
    }
    return out.end();
  };
  return Object.assign(reader, { objectDepth: isRecord ? jsonDepth(type, new Set()) : undefined });
}

/**
 * Reads a value into `out` and answers its JSON bytes. `objectDepth`: for a record schema, how deeply its JSON
 * nests objects and arrays (the record itself being 1; Infinity for a recursive schema), so that a caller can
 * know the JSON is one object within a depth limit without scanning it; undefined for any other schema.
 */
export type AvroReader = ((bytes: Buffer, offset: number, out: JsonOut) => Buffer) & { objectDepth: number | undefined };

/** How deeply a value of the type nests JSON objects and arrays (0 for a scalar, Infinity when recursive). */
function jsonDepth(type: avro.Type, inside: Set<avro.Type>): number {
  if (inside.has(type)) return Infinity;
  // A logical type is a scalar, unless it does not apply to its underlying type and is read as that type.
  if (type instanceof LogicalMark) return compileLogical(type) ? 0 : jsonDepth(type.underlyingType, inside);
  inside.add(type);
  try {
    switch (type.typeName) {
      case 'record':
      case 'error':
        return 1 + Math.max(0, ...(type as avro.types.RecordType).fields.map((f) => jsonDepth(f.type, inside)));
      case 'array':
        return 1 + jsonDepth((type as avro.types.ArrayType).itemsType, inside);
      case 'map':
        return 1 + jsonDepth((type as avro.types.MapType).valuesType as avro.Type, inside);
      default:
        return type.typeName.startsWith('union') ? Math.max(0, ...(type as avro.types.WrappedUnionType).types.map((t) => jsonDepth(t, inside))) : 0;
    }
  } finally {
    inside.delete(type);
  }
}

/** Connect's temporal types that Avro has a logical type for. */
const avroLogicalOf: Partial<Record<string, LogicalName>> = {
  'timestamp-millis': 'timestamp-millis',
  'local-timestamp-millis': 'local-timestamp-millis',
  'local-timestamp-micros': 'local-timestamp-micros',
  'local-timestamp-nanos': 'local-timestamp-nanos',
  date: 'date',
  'time-millis': 'time-millis',
  'time-micros': 'time-micros',
};

/** The schema with `connect.name` temporal types given the Avro logical type they stand for. */
function withConnectLogicalTypes(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withConnectLogicalTypes);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) out[key] = withConnectLogicalTypes(value);
  const name = out['connect.name'];
  if (typeof name === 'string' && out.logicalType === undefined && typeof out.type === 'string') {
    const kind = connectLogicalTypes.get(name);
    const logical = kind === undefined ? undefined : avroLogicalOf[kind];
    if (logical) out.logicalType = logical;
  }
  return out;
}

const utf8 = (text: string) => Buffer.from(text, 'utf8');
const literal = (text: string): Reader => {
  const bytes = utf8(text);
  return (_tap, out) => out.bytes(bytes);
};

function compile(type: avro.Type, compiled: Map<avro.Type, Reader>): Reader {
  const done = compiled.get(type);
  if (done) return done;
  if (type instanceof LogicalMark) {
    const read = compileLogical(type);
    if (read) return read;
    return compile(type.underlyingType, compiled);
  }
  switch (type.typeName) {
    case 'null':
      return literal('null');
    case 'boolean':
      return (tap, out) => {
        if (tap.pos >= tap.buf.length) throw truncated();
        out.ascii(tap.buf[tap.pos++] ? 'true' : 'false');
      };
    case 'int':
      return (tap, out) => out.ascii(String(readInt(tap)));
    case 'long':
      return (tap, out) => out.ascii(String(readLong(tap)));
    case 'float':
      return (tap, out) => out.ascii(floatText(readFixedNumber(tap, 4)));
    case 'double':
      return (tap, out) => out.ascii(doubleText(readFixedNumber(tap, 8)));
    case 'bytes':
      return (tap, out) => {
        const [start, end] = readLength(tap);
        out.bytea(tap.buf, start, end);
      };
    case 'string':
      return readString;
    case 'fixed': {
      const size = (type as avro.types.FixedType).size;
      return (tap, out) => {
        const start = take(tap, size);
        out.bytea(tap.buf, start, start + size);
      };
    }
    case 'enum': {
      const symbols = (type as avro.types.EnumType).symbols.map((symbol) => utf8(jsonString(symbol)));
      return (tap, out) => {
        const i = readInt(tap);
        const symbol = symbols[i];
        if (symbol === undefined) throw new AvroDecodeError(`enum index ${i} is out of range (${symbols.length} symbols)`);
        out.bytes(symbol);
      };
    }
    case 'array': {
      const itemsType = (type as avro.types.ArrayType).itemsType;
      const item = lazy(() => compile(itemsType, compiled));
      const minItemBytes = canBeEmpty(itemsType, new Set()) ? 0 : 1;
      return (tap, out) => {
        out.byte(0x5b);
        let first = true;
        readBlocks(tap, minItemBytes, () => {
          if (!first) out.byte(0x2c);
          first = false;
          item()(tap, out);
        });
        out.byte(0x5d);
      };
    }
    case 'map': {
      const value = lazy(() => compile((type as avro.types.MapType).valuesType as avro.Type, compiled));
      return (tap, out) => {
        out.byte(0x7b);
        let first = true;
        readBlocks(tap, 1, () => {
          if (!first) out.byte(0x2c);
          first = false;
          readString(tap, out);
          out.byte(0x3a);
          value()(tap, out);
        });
        out.byte(0x7d);
      };
    }
    case 'record':
    case 'error': {
      const fields = (type as avro.types.RecordType).fields;
      const readers: Reader[] = [];
      // Each field's name with what goes before it: `{"id":`, then `,"name":`.
      const names = fields.map((f, i) => utf8(`${i === 0 ? '{' : ','}${jsonString(f.name)}:`));
      const read: Reader = (tap, out) => {
        if (readers.length === 0) return out.ascii('{}');
        for (let i = 0; i < readers.length; i++) {
          out.bytes(names[i]!);
          readers[i]!(tap, out);
        }
        out.byte(0x7d);
      };
      // Registered before the fields are compiled: a recursive record refers to itself.
      compiled.set(type, read);
      for (const f of fields) readers.push(compile(f.type, compiled));
      return read;
    }
    default:
      if (type.typeName.startsWith('union')) {
        const branches = (type as avro.types.WrappedUnionType).types;
        const readers = branches.map((branch) => lazy(() => compile(branch, compiled)));
        return (tap, out) => {
          const i = readLong(tap);
          const branch = typeof i === 'number' ? readers[i] : undefined;
          if (!branch) throw new AvroDecodeError(`union branch ${i} is out of range (${readers.length} branches)`);
          branch()(tap, out);
        };
      }
      throw new AvroDecodeError(`Avro type ${type.typeName} is not supported`);
  }
}

/** The reader of a logical type, or undefined when it does not apply to its underlying type (then it is ignored). */
function compileLogical(type: LogicalMark): Reader | undefined {
  const under = type.underlyingType.typeName;
  const text = (what: string, written: string | undefined, value: bigint | number): string => {
    if (written === undefined) throw new AvroDecodeError(`${what} ${value} is out of range`);
    return written;
  };
  switch (type.logical) {
    case 'decimal': {
      const { scale, precision } = type;
      if (!Number.isInteger(scale) || scale < 0 || !Number.isInteger(precision) || precision < 1 || scale > precision) return undefined;
      if (under === 'bytes') {
        return (tap, out) => {
          const [start, end] = readLength(tap);
          out.ascii(decimalText(tap.buf, scale, start, end));
        };
      }
      if (under === 'fixed') {
        const size = (type.underlyingType as avro.types.FixedType).size;
        return (tap, out) => {
          const start = take(tap, size);
          out.ascii(decimalText(tap.buf, scale, start, start + size));
        };
      }
      return undefined;
    }
    case 'uuid':
      if (under === 'string') return readString;
      if (under === 'fixed' && (type.underlyingType as avro.types.FixedType).size === 16) {
        return (tap, out) => {
          const hex = tap.buf.toString('hex', take(tap, 16), tap.pos);
          out.ascii(`"${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}"`);
        };
      }
      return undefined;
    case 'date':
      return under === 'int' ? (tap, out) => { const days = readInt(tap); out.ascii(text('date', dateText(days), days)); } : undefined;
    case 'time-millis':
      return under === 'int' ? (tap, out) => { const ms = readInt(tap); out.ascii(text('time-millis', timeOfDayText(ms, 'ms'), ms)); } : undefined;
    case 'time-micros':
      return under === 'long' ? (tap, out) => { const us = readLong(tap); out.ascii(text('time-micros', timeOfDayText(us, 'us'), us)); } : undefined;
    default: {
      if (under !== 'long') return undefined;
      const utc = !type.logical.startsWith('local-');
      const unit = type.logical.endsWith('millis') ? 'ms' : type.logical.endsWith('micros') ? 'us' : 'ns';
      return (tap, out) => {
        const value = readLong(tap);
        out.ascii(text(type.logical, instantText(value, unit, utc), value));
      };
    }
  }
}

/** A reader compiled on first use: a recursive type's reader may not exist yet when its parent is compiled. */
function lazy(make: () => Reader): () => Reader {
  let reader: Reader | undefined;
  return () => (reader ??= make());
}

/** Advances over `size` bytes and answers where they start. */
function take(tap: Tap, size: number): number {
  const start = tap.pos;
  if (start + size > tap.buf.length) throw truncated();
  tap.pos = start + size;
  return start;
}

/** A length-prefixed byte run (bytes, string): its start and end. */
function readLength(tap: Tap): [number, number] {
  const length = readLong(tap);
  if (typeof length !== 'number' || length < 0) throw new AvroDecodeError(`a length of ${length} bytes is not valid`);
  const start = take(tap, length);
  return [start, start + length];
}

function readString(tap: Tap, out: JsonOut): void {
  const [start, end] = readLength(tap);
  // ASCII needs no check; anything beyond it must be valid UTF-8 (never replaced characters).
  if (out.stringFromUtf8(tap.buf, start, end) && !isUtf8(tap.buf.subarray(start, end))) throw new AvroDecodeError('an Avro string is not valid UTF-8');
}

function readFixedNumber(tap: Tap, size: 4 | 8): number {
  const start = take(tap, size);
  return size === 4 ? tap.buf.readFloatLE(start) : tap.buf.readDoubleLE(start);
}

/** Whether a value of the type can take no bytes at all (null, an empty record, a fixed of size 0). */
function canBeEmpty(type: avro.Type, seen: Set<avro.Type>): boolean {
  if (seen.has(type)) return false;
  seen.add(type);
  if (type instanceof LogicalMark) return canBeEmpty(type.underlyingType, seen);
  switch (type.typeName) {
    case 'null':
      return true;
    case 'fixed':
      return (type as avro.types.FixedType).size === 0;
    case 'record':
    case 'error':
      return (type as avro.types.RecordType).fields.every((f) => canBeEmpty(f.type, seen));
    default:
      return false;
  }
}

/**
 * Array and map blocks: a count (negative: followed by the block's size in bytes), items, until a count of 0. A
 * count that the remaining bytes cannot hold is refused before any item is read, and so is an array or map of
 * items that take no bytes past maxBlockItems in all.
 */
function readBlocks(tap: Tap, minItemBytes: number, readItem: () => void): void {
  let total = 0;
  for (;;) {
    let count = readLong(tap);
    if (typeof count !== 'number') throw new AvroDecodeError(`a block of ${count} items is not valid`);
    if (count === 0) return;
    if (count < 0) {
      count = -count;
      readLong(tap); // the block's size in bytes, for skipping; not needed to read it
    }
    if (count * minItemBytes > tap.buf.length - tap.pos) throw truncated();
    total += count;
    if (total > maxBlockItems) throw new AvroDecodeError(`an array or map of more than ${maxBlockItems} items`);
    for (let i = 0; i < count; i++) readItem();
  }
}

/** Items of one array or map: a bound for items that take no bytes (null), which no length check can bound. */
const maxBlockItems = 10_000_000;

function readInt(tap: Tap): number {
  const value = readLong(tap);
  if (typeof value !== 'number' || value > 2147483647 || value < -2147483648) throw new AvroDecodeError(`int ${value} is out of range`);
  return value;
}

/**
 * A zig-zag varint: a number while it is exact (below 2^53 in magnitude), a bigint beyond. At most 10 bytes.
 */
function readLong(tap: Tap): number | bigint {
  const buf = tap.buf;
  let pos = tap.pos;
  let n = 0;
  let scale = 1;
  let byte: number;
  // Up to 7 bytes (49 bits) fit a double exactly.
  do {
    if (pos >= buf.length) throw truncated();
    byte = buf[pos++]!;
    n += (byte & 0x7f) * scale;
    scale *= 128;
  } while (byte & 0x80 && scale < 2 ** 49);
  if (!(byte & 0x80)) {
    tap.pos = pos;
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }
  let big = BigInt(n);
  let shift = 49n;
  do {
    if (pos >= buf.length) throw truncated();
    if (shift > 63n) throw new AvroDecodeError('a varint is longer than 10 bytes');
    byte = buf[pos++]!;
    big |= BigInt(byte & 0x7f) << shift;
    shift += 7n;
  } while (byte & 0x80);
  tap.pos = pos;
  big = BigInt.asUintN(64, big);
  const value = (big >> 1n) ^ -(big & 1n);
  const signed = BigInt.asIntN(64, value);
  return signed >= -(2n ** 53n) && signed <= 2n ** 53n ? Number(signed) : signed;
}
