/**
 * Protobuf → the JSON text of json-text.ts, per message type of a registered `.proto` schema.
 *
 * protobufjs parses the schema and decodes the bytes; the walk below writes PostgreSQL-ready text from the decoded
 * message by reflection: 64-bit integers from their exact Long (never a JavaScript `number`), `bytes` as bytea hex,
 * enums by name, `google.protobuf.Timestamp` as an ISO instant (to the nanosecond, which PostgreSQL rounds to the
 * microsecond), `Duration` as an interval, the wrapper types (`Int64Value`…) as their value (NULL when absent),
 * `Struct`, `Value` and `ListValue` as the JSON they stand for, other messages as JSON objects (for `jsonb`).
 *
 * Presence follows proto3: a field with presence (a message, a `oneof` member, a proto3 `optional` field) that is
 * absent is left out, so its column is NULL; a plain scalar that is absent is its default (0, "", false), which is
 * what the writer meant, as Kafka Connect's ProtobufConverter reads it too.
 *
 * The wire format's message indexes (after the schema id) name the message type within the file: the first index
 * counts the file's top-level messages in declaration order, each further one a nested message within the previous.
 * A single 0 byte stands for [0], the first message (Confluent's Protobuf serializer, "Wire format").
 */
import protobuf from 'protobufjs';
import { byteaText, decimalText, doubleText, floatText, jsonString, secondsNanosText } from './json-text.js';

export class ProtobufDecodeError extends Error {}

/** A schema file and those it imports, by the names it imports them with. */
export interface ProtoFiles {
  text: string;
  imports: Array<{ name: string; text: string }>;
}

type Message = Record<string, unknown>;

const hasOwn = (message: Message, name: string) => Object.prototype.hasOwnProperty.call(message, name);

/**
 * Parses a registered Protobuf schema into a reader of wire-format payloads (from just after the schema id).
 * Throws protobufjs's error for a schema that does not parse or resolve.
 */
export function protobufReader(files: ProtoFiles): (bytes: Buffer, offset: number) => string {
  const { root, parsed } = parseProto(files.text);
  // The file's own top-level messages, before any import adds types to the same package.
  const scope = parsed.package ? root.lookup(parsed.package) : root;
  const topLevel = scope && 'nestedArray' in scope ? (scope as protobuf.Namespace).nestedArray.filter((o): o is protobuf.Type => o instanceof protobuf.Type) : [];
  addImports(root, parsed.imports ?? [], files.imports, new Set());
  root.resolveAll();
  const writers = new Map<protobuf.Type, (m: Message) => string>();
  const byPath = new Map<string, { type: protobuf.Type; write: (m: Message) => string }>();
  return (bytes, offset) => {
    const reader = protobuf.Reader.create(bytes);
    reader.pos = offset;
    const path = readIndexes(reader);
    const key = path.join('.');
    let entry = byPath.get(key);
    if (!entry) {
      const type = typeAt(topLevel, path);
      entry = { type, write: messageWriter(type, writers) };
      byPath.set(key, entry);
    }
    let message: Message;
    try {
      message = entry.type.decode(reader, bytes.length - reader.pos) as unknown as Message;
    } catch (error) {
      throw new ProtobufDecodeError(`it does not decode as ${entry.type.fullName.slice(1)}: ${(error as Error).message}`);
    }
    return entry.write(message);
  };
}

/**
 * Parses a `.proto` text into a new root. protobufjs does not read lists inside aggregate option values
 * (`[(confluent.field_meta) = { params: [ {…}, {…} ] }]`, as Confluent writes a Decimal's precision and scale), and
 * custom options play no part in decoding (a parser reads packed and unpacked fields alike): a text it refuses is
 * parsed again without its custom options.
 */
function parseProto(text: string): { root: protobuf.Root; parsed: protobuf.IParserResult } {
  const root = new protobuf.Root();
  return { root, parsed: parseInto(text, root) };
}

/** Parses a `.proto` text into `root`: as it is if protobufjs reads it, else without its custom options. */
function parseInto(text: string, root: protobuf.Root): protobuf.IParserResult {
  let usable = text;
  try {
    protobuf.parse(text, new protobuf.Root(), { keepCase: true });
  } catch (error) {
    usable = withoutCustomOptions(text);
    if (usable === text) throw error;
  }
  return protobuf.parse(usable, root, { keepCase: true });
}

/**
 * The text without custom options: `option (name)… = value;` statements and `(name)… = value` entries of field
 * option lists (an emptied list goes too). Strings and comments are skipped over; values may nest braces and brackets.
 */
export function withoutCustomOptions(text: string): string {
  let out = '';
  let i = 0;
  const n = text.length;
  /** The end of a string or comment starting at `at`, or -1 when none starts there. */
  const skip = (at: number): number => {
    const c = text[at];
    if (c === '"' || c === "'") {
      let j = at + 1;
      while (j < n && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      return j + 1;
    }
    if (c === '/' && text[at + 1] === '/') {
      const e = text.indexOf('\n', at);
      return e < 0 ? n : e;
    }
    if (c === '/' && text[at + 1] === '*') {
      const e = text.indexOf('*/', at + 2);
      return e < 0 ? n : e + 2;
    }
    return -1;
  };
  /** From `at`, the end of one option's `name = value` (before `,` `]` or `;` at depth 0). */
  const optionEnd = (at: number): number => {
    let depth = 0;
    let j = at;
    while (j < n) {
      const s = skip(j);
      if (s >= 0) {
        j = s;
        continue;
      }
      const c = text[j]!;
      if (c === '{' || c === '[' || c === '(') depth++;
      else if (c === '}' || c === ']' || c === ')') {
        if (depth === 0) return j;
        depth--;
      } else if ((c === ',' || c === ';') && depth === 0) return j;
      j++;
    }
    return j;
  };
  while (i < n) {
    const s = skip(i);
    if (s >= 0) {
      out += text.slice(i, s);
      i = s;
      continue;
    }
    // `option (custom)… = …;`
    const statement = /^option\s*\(/.exec(text.slice(i, i + 16));
    if (statement && (i === 0 || /[\s;{}]/.test(text[i - 1]!))) {
      const e = optionEnd(i);
      i = text[e] === ';' ? e + 1 : e;
      continue;
    }
    // A field's option list: keep the entries that are not custom.
    if (text[i] === '[') {
      const kept: string[] = [];
      let j = i + 1;
      for (;;) {
        while (j < n && /\s/.test(text[j]!)) j++;
        const e = optionEnd(j);
        const entry = text.slice(j, e).trim();
        if (entry && !entry.startsWith('(')) kept.push(entry);
        if (e >= n || text[e] === ']' || text[e] === ';') {
          i = text[e] === ']' ? e + 1 : e;
          break;
        }
        j = e + 1;
      }
      if (kept.length > 0) out += `[${kept.join(', ')}]`;
      continue;
    }
    out += text[i];
    i++;
  }
  return out;
}

/** Adds the imported files: the registry's references by name, protobufjs's well-known types for google/protobuf/*. */
function addImports(root: protobuf.Root, names: string[], files: ProtoFiles['imports'], added: Set<string>): void {
  for (const name of names) {
    if (added.has(name)) continue;
    added.add(name);
    const file = files.find((f) => f.name === name);
    if (file) {
      const parsed = parseInto(file.text, root);
      addImports(root, parsed.imports ?? [], files, added);
      continue;
    }
    const bundled = bundledImports[name];
    if (bundled !== undefined) {
      protobuf.parse(bundled, root, { keepCase: true });
      continue;
    }
    const common = protobuf.common.get(name) as { nested?: protobuf.INamespace['nested'] } | null;
    if (!common?.nested) throw new ProtobufDecodeError(`the schema imports ${name}, which is neither a reference in the registry nor a well-known type`);
    root.addJSON(common.nested);
  }
}

/**
 * Imports that serializers leave out of a schema's references, as they do google/protobuf/*: Confluent's own
 * (`confluent/meta.proto`, whose options annotate fields; `confluent/type/decimal.proto`, how Kafka Connect's
 * ProtobufConverter writes a Decimal) and Google's common types (`google/type/date.proto`, `timeofday.proto`).
 * Only the messages are given: custom options are kept as text by the parser and need no extension definitions.
 */
export const bundledImports: Readonly<Record<string, string>> = {
  'confluent/meta.proto': 'syntax = "proto3"; package confluent; message Meta { string doc = 1; map<string, string> params = 2; repeated string tags = 3; }',
  'confluent/type/decimal.proto': 'syntax = "proto3"; package confluent.type; message Decimal { bytes value = 1; uint32 precision = 2; int32 scale = 3; }',
  'google/type/date.proto': 'syntax = "proto3"; package google.type; message Date { int32 year = 1; int32 month = 2; int32 day = 3; }',
  'google/type/timeofday.proto': 'syntax = "proto3"; package google.type; message TimeOfDay { int32 hours = 1; int32 minutes = 2; int32 seconds = 3; int32 nanos = 4; }',
};

/** The message indexes: a zig-zag count, then that many zig-zag indexes; a count of 0 means [0]. */
function readIndexes(reader: protobuf.Reader): number[] {
  const count = readZigZag(reader);
  if (count === 0) return [0];
  if (count < 0 || count > 100) throw new ProtobufDecodeError(`the message index count ${count} is not valid`);
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(readZigZag(reader));
  return out;
}

function readZigZag(reader: protobuf.Reader): number {
  try {
    return reader.sint32();
  } catch (error) {
    throw new ProtobufDecodeError(`the message indexes are truncated: ${(error as Error).message}`);
  }
}

function typeAt(topLevel: protobuf.Type[], path: number[]): protobuf.Type {
  let candidates = topLevel;
  let type: protobuf.Type | undefined;
  for (const index of path) {
    type = candidates[index];
    if (!type) throw new ProtobufDecodeError(`message index ${path.join('.')} names no message type of the schema`);
    candidates = type.nestedArray.filter((o): o is protobuf.Type => o instanceof protobuf.Type);
  }
  return type!;
}

const wrapperTypes = new Set(
  ['DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value', 'UInt32Value', 'BoolValue', 'StringValue', 'BytesValue'].map((n) => `.google.protobuf.${n}`),
);

/** The writer of one message type; compiled once per type (recursive types refer to their own writer). */
function messageWriter(type: protobuf.Type, writers: Map<protobuf.Type, (m: Message) => string>): (m: Message) => string {
  const known = writers.get(type);
  if (known) return known;
  const name = type.fullName;
  const special = specialWriters[name];
  if (special) {
    writers.set(type, special);
    return special;
  }
  if (name === '.google.protobuf.Timestamp') {
    const write = (m: Message) => {
      const text = secondsNanosText(BigInt(String(m.seconds ?? 0)), Number(m.nanos ?? 0));
      if (text === undefined) throw new ProtobufDecodeError(`Timestamp ${String(m.seconds)}s is out of range`);
      return text;
    };
    writers.set(type, write);
    return write;
  }
  if (name === '.google.protobuf.Duration') {
    const write = (m: Message) => {
      const seconds = BigInt(String(m.seconds ?? 0));
      const nanos = Number(m.nanos ?? 0);
      const total = seconds * 1_000_000_000n + BigInt(nanos);
      const negative = total < 0n;
      const abs = negative ? -total : total;
      return `"${negative ? '-' : ''}${abs / 1_000_000_000n}.${(abs % 1_000_000_000n).toString().padStart(9, '0')} seconds"`;
    };
    writers.set(type, write);
    return write;
  }
  if (name === '.google.protobuf.Struct' || name === '.google.protobuf.Value' || name === '.google.protobuf.ListValue') {
    const write = (m: Message) => structText(name, m);
    writers.set(type, write);
    return write;
  }
  if (wrapperTypes.has(name)) {
    const field = type.fields.value!;
    const value = fieldValueWriter(field, writers);
    const write = (m: Message) => value(m.value ?? field.typeDefault);
    writers.set(type, write);
    return write;
  }
  const fields: Array<{ field: protobuf.Field; prefix: string; write: (v: unknown) => string; presence: boolean }> = [];
  const write = (m: Message) => {
    let out = '';
    for (const f of fields) {
      const present = hasOwn(m, f.field.name);
      if (!present && f.presence) continue;
      const value = present ? m[f.field.name] : f.field.repeated ? [] : f.field.map ? {} : f.field.typeDefault;
      out += (out ? ',' : '{') + f.prefix + f.write(value);
    }
    return out ? `${out}}` : '{}';
  };
  writers.set(type, write);
  for (const field of type.fieldsArray) {
    field.resolve();
    fields.push({
      field,
      prefix: `${jsonString(field.name)}:`,
      write: field.repeated ? listWriter(field, writers) : field.map ? mapWriter(field, writers) : fieldValueWriter(field, writers),
      presence: !field.repeated && !field.map && (field.resolvedType instanceof protobuf.Type || field.partOf !== null || field.options?.proto3_optional === true),
    });
  }
  return write;
}

function listWriter(field: protobuf.Field, writers: Map<protobuf.Type, (m: Message) => string>): (v: unknown) => string {
  const item = fieldValueWriter(field, writers);
  return (v) => `[${(v as unknown[]).map(item).join(',')}]`;
}

function mapWriter(field: protobuf.Field, writers: Map<protobuf.Type, (m: Message) => string>): (v: unknown) => string {
  const value = fieldValueWriter(field, writers);
  const keyType = (field as unknown as protobuf.MapField).keyType;
  const longKey = /64$/.test(keyType);
  const unsigned = keyType.startsWith('u') || keyType.startsWith('fixed');
  return (v) => {
    const parts: string[] = [];
    for (const [key, item] of Object.entries(v as Record<string, unknown>)) {
      // protobufjs keys 64-bit map entries by an 8-character hash of the Long.
      const name = longKey ? protobuf.util.LongBits.fromHash(key).toLong(unsigned).toString() : key;
      parts.push(`${jsonString(name)}:${value(item)}`);
    }
    return `{${parts.join(',')}}`;
  };
}

/** The writer of one value of the field's type (an element, for repeated fields and maps). */
function fieldValueWriter(field: protobuf.Field, writers: Map<protobuf.Type, (m: Message) => string>): (v: unknown) => string {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) {
    let write: ((m: Message) => string) | undefined;
    return (v) => (write ??= messageWriter(resolved, writers))(v as Message);
  }
  if (resolved instanceof protobuf.Enum) {
    const names = resolved.valuesById;
    return (v) => {
      const n = v as number;
      return names[n] !== undefined ? jsonString(names[n]!) : String(n);
    };
  }
  switch (field.type) {
    case 'double':
      return (v) => doubleText(v as number);
    case 'float':
      return (v) => floatText(v as number);
    case 'int64':
    case 'sint64':
    case 'sfixed64':
    case 'uint64':
    case 'fixed64':
      // protobufjs decodes 64-bit integers as Long (signed or not by the field's type): exact text.
      return (v) => String(v);
    case 'bool':
      return (v) => (v ? 'true' : 'false');
    case 'string':
      return (v) => jsonString(v as string);
    case 'bytes':
      return (v) => {
        // A Buffer as decoded; an absent field's default is an empty array.
        if (Buffer.isBuffer(v)) return byteaText(v);
        if (v instanceof Uint8Array) return byteaText(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
        return byteaText(Buffer.from(v as number[]));
      };
    default:
      return (v) => String(v);
  }
}

const two = (n: number) => String(n).padStart(2, '0');

/** Messages that stand for one value: written as that value. */
const specialWriters: Record<string, (m: Message) => string> = {
  // Big-endian two's complement unscaled value and its scale, as Kafka Connect's ProtobufConverter writes a Decimal.
  '.confluent.type.Decimal': (m) => {
    const value = m.value as Uint8Array | undefined;
    const bytes = value === undefined ? Buffer.alloc(0) : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return decimalText(bytes, Number(m.scale ?? 0));
  },
  // A whole date; a partial one (a year of 0, a month of 0: "any") has no PostgreSQL date and stays an object.
  '.google.type.Date': (m) => {
    const [year, month, day] = [Number(m.year ?? 0), Number(m.month ?? 0), Number(m.day ?? 0)];
    if (year < 1 || year > 9999 || month < 1 || day < 1) return `{"year":${year},"month":${month},"day":${day}}`;
    return `"${String(year).padStart(4, '0')}-${two(month)}-${two(day)}"`;
  },
  '.google.type.TimeOfDay': (m) =>
    `"${two(Number(m.hours ?? 0))}:${two(Number(m.minutes ?? 0))}:${two(Number(m.seconds ?? 0))}.${String(Number(m.nanos ?? 0)).padStart(9, '0')}"`,
};

/** google.protobuf.Struct, Value and ListValue as the JSON they stand for. */
function structText(type: string, m: Message): string {
  if (type === '.google.protobuf.Struct') {
    const fields = (m.fields ?? {}) as Record<string, Message>;
    return `{${Object.entries(fields).map(([k, v]) => `${jsonString(k)}:${structText('.google.protobuf.Value', v)}`).join(',')}}`;
  }
  if (type === '.google.protobuf.ListValue') {
    return `[${((m.values ?? []) as Message[]).map((v) => structText('.google.protobuf.Value', v)).join(',')}]`;
  }
  if (hasOwn(m, 'numberValue')) return doubleText(m.numberValue as number);
  if (hasOwn(m, 'stringValue')) return jsonString(m.stringValue as string);
  if (hasOwn(m, 'boolValue')) return m.boolValue ? 'true' : 'false';
  if (hasOwn(m, 'structValue')) return structText('.google.protobuf.Struct', m.structValue as Message);
  if (hasOwn(m, 'listValue')) return structText('.google.protobuf.ListValue', m.listValue as Message);
  return 'null';
}
