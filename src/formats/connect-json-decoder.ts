/**
 * Kafka Connect JsonConverter envelopes (`schemas.enable=true`): `{"schema": …, "payload": {…}}` → the payload, with
 * Connect's logical types (and Debezium's temporal types) written as the values they stand for, so that a `Decimal`
 * lands in a `numeric` column and a `Timestamp` in a `timestamptz` one.
 *
 * The payload is never parsed in JavaScript (a 64-bit integer in it stays exact): a payload whose schema has no
 * logical type is passed on as it is, without a copy; in one that has, only the members holding logical values
 * are rewritten, in place in the text. The schema part is parsed once per distinct schema (and records of a topic
 * nearly always share one: the bytes before the payload are compared with the last record's first).
 *
 * Logical values are found in the payload's fields, in fields of nested structs (Debezium's `before` and `after`)
 * and in arrays (a `numeric[]` column's Decimals, arrays of structs), not inside maps. A Decimal already written as a
 * number (`decimal.format=NUMERIC`) is kept.
 */
import { errorMessage } from '../errors.js';
import type { SourceRecord } from '../record.js';
import { ConnectEnvelopeReader, MemberName, elementSpans, memberSpan } from '../sinks/json-span.js';
import { connectLogicalTypes, type LogicalKind } from './connect-types.js';
import { dateText, decimalText, instantText, timeOfDayText } from './json-text.js';
import { decodeEach, decodedRecord, type DecodedBatch, type RecordDecoder } from './record-decoder.js';

/** Rewrites a member's JSON text, or answers why it cannot. */
type Convert = (text: string) => string;

/** A step from a value into a part of it: a member of an object, or every element of an array. */
type PathStep = MemberName | 'element';

interface LogicalMember {
  /** The steps from the payload object down to the logical values. */
  path: PathStep[];
  /** The path as messages name it: `amount`, `lines[].price`. */
  name: string;
  convert: Convert;
}

/** Distinct schemas remembered per topic; past this, the memory is cleared (a topic whose every record has its own). */
const maxSchemas = 256;

export class ConnectJsonDecoder implements RecordDecoder {
  readonly #envelope: ConnectEnvelopeReader;
  /** Schema text → its logical members (empty: none, the payload passes as it is). */
  readonly #plans = new Map<string, LogicalMember[]>();
  /** The plan of the schema in the bytes the envelope reader remembers (see ConnectEnvelopeReader.lastRead). */
  #prefixPlan: LogicalMember[] | undefined;

  constructor(maxJsonDepth = Infinity) {
    this.#envelope = new ConnectEnvelopeReader(maxJsonDepth);
  }

  decode(records: readonly SourceRecord[]): Promise<DecodedBatch> {
    return Promise.resolve(decodeEach(records, (record) => this.decodeOne(record)));
  }

  /** The record with its value replaced by the payload, logical values converted; or why it cannot be. */
  decodeOne(record: SourceRecord): SourceRecord | string {
    const value = record.value;
    if (value === null) return record;
    const span = this.#envelope.payload(value);
    if (typeof span === 'string') return span;
    let plan: LogicalMember[];
    try {
      plan = this.#planFor(value);
    } catch (error) {
      return `the envelope's schema cannot be read: ${errorMessage(error)}`;
    }
    // No logical values: the payload, where it is in the value (checked by the envelope reader), without a copy.
    if (plan.length === 0) return decodedRecord(record, 'value', value, { span });
    try {
      return decodedRecord(record, 'value', rewrite(value, span, plan));
    } catch (error) {
      return errorMessage(error);
    }
  }

  /**
   * The logical members of the record's schema. The envelope reader knows whether the record starts with the same
   * bytes as the one that set its remembered prefix (then it has that record's schema, and its plan); otherwise the
   * schema it found while scanning is looked up, or parsed once.
   */
  #planFor(value: Buffer): LogicalMember[] {
    const envelope = this.#envelope;
    if (envelope.lastRead === 'same-prefix' && this.#prefixPlan) return this.#prefixPlan;
    const at = envelope.schemaSpan;
    const text = at ? value.toString('utf8', at[0], at[1]) : 'null';
    let plan = this.#plans.get(text);
    if (!plan) {
      plan = [];
      collectLogical(JSON.parse(text) as unknown, [], plan, false);
      if (this.#plans.size >= maxSchemas) this.#plans.clear();
      this.#plans.set(text, plan);
    }
    if (envelope.lastRead === 'new-prefix') this.#prefixPlan = plan;
    return plan;
  }
}

interface ConnectSchema {
  type?: unknown;
  name?: unknown;
  field?: unknown;
  fields?: unknown;
  items?: unknown;
  parameters?: Record<string, unknown>;
}

/**
 * Where `schema` holds logical values, at `path`: the value itself, when it is of a logical type (not for the payload,
 * `inner` false, which is the envelope's object), the fields of a struct, the elements of an array, and theirs.
 */
function collectLogical(schema: unknown, path: PathStep[], into: LogicalMember[], inner = true): void {
  const s = schema as ConnectSchema | null;
  if (!s || typeof s !== 'object') return;
  const kind = inner && typeof s.name === 'string' ? connectLogicalTypes.get(s.name) : undefined;
  if (kind) {
    into.push({ path, name: pathName(path), convert: converter(kind, s) });
  } else if (s.type === 'struct' && Array.isArray(s.fields)) {
    for (const field of s.fields as ConnectSchema[]) {
      if (typeof field?.field === 'string') collectLogical(field, [...path, new MemberName(field.field)], into);
    }
  } else if (s.type === 'array') {
    collectLogical(s.items, [...path, 'element'], into);
  }
}

function pathName(path: readonly PathStep[]): string {
  let name = '';
  for (const step of path) name += step === 'element' ? '[]' : `${name ? '.' : ''}${step.name}`;
  return name;
}

function converter(kind: LogicalKind, field: ConnectSchema): Convert {
  const fail = (what: string): never => {
    throw new Error(what);
  };
  const integer = (text: string): bigint => (/^-?\d+$/.test(text) ? BigInt(text) : fail(`${text.slice(0, 40)} is not an integer`));
  switch (kind) {
    case 'decimal': {
      const scale = Number(field.parameters?.scale ?? 0);
      return (text) => (text.startsWith('"') ? decimalText(base64(text), scale) : text);
    }
    case 'variable-scale-decimal':
      return (text) => {
        const { scale, value } = JSON.parse(text) as { scale?: unknown; value?: unknown };
        if (typeof scale !== 'number' || typeof value !== 'string') fail('a VariableScaleDecimal needs a scale and a value');
        return decimalText(Buffer.from(value as string, 'base64'), scale as number);
      };
    case 'date':
      return (text) => dateText(Number(integer(text))) ?? fail(`date ${text} is out of range`);
    case 'time-millis':
    case 'time-micros':
      return (text) => timeOfDayText(integer(text), kind === 'time-millis' ? 'ms' : 'us') ?? fail(`time ${text} is out of range`);
    default: {
      const unit = kind.endsWith('millis') ? 'ms' : kind.endsWith('micros') ? 'us' : 'ns';
      const utc = !kind.startsWith('local-');
      return (text) => instantText(integer(text), unit, utc) ?? fail(`timestamp ${text} is out of range`);
    }
  }
}

/** The bytes of a JSON string holding base64. */
function base64(text: string): Buffer {
  return Buffer.from(JSON.parse(text) as string, 'base64');
}

/** The payload's text with each logical member's value converted (members that are absent or null are left). */
function rewrite(value: Buffer, payload: [number, number], plan: LogicalMember[]): Buffer {
  const edits: Array<{ at: [number, number]; text: string }> = [];
  for (const member of plan) {
    for (const span of spansAt(value, payload, member.path)) {
      const text = value.toString('utf8', span[0], span[1]);
      if (text === 'null') continue;
      let converted: string;
      try {
        converted = member.convert(text);
      } catch (error) {
        throw new Error(`field ${member.name} does not hold its logical type's value: ${errorMessage(error)}`, { cause: error });
      }
      edits.push({ at: span, text: converted });
    }
  }
  edits.sort((a, b) => a.at[0] - b.at[0]);
  const parts: Buffer[] = [];
  let from = payload[0];
  for (const { at, text } of edits) {
    // Only a schema naming one field twice (which Connect never writes) can lead two paths to one value.
    if (at[0] < from) throw new Error('the envelope\'s schema names a field twice');
    parts.push(value.subarray(from, at[0]), Buffer.from(text));
    from = at[1];
  }
  parts.push(value.subarray(from, payload[1]));
  return Buffer.concat(parts);
}

/**
 * The spans `path` leads to from the value at `span`: none where a member is absent or a value is not the object or
 * array the step needs (null, say), one per element for an array step.
 */
function spansAt(value: Buffer, span: [number, number], path: readonly PathStep[], from = 0, out: Array<[number, number]> = []): Array<[number, number]> {
  if (from === path.length) {
    out.push(span);
    return out;
  }
  const step = path[from]!;
  if (step === 'element') {
    if (value[span[0]] === 0x5b) for (const element of elementSpans(value, span)) spansAt(value, element, path, from + 1, out);
  } else if (value[span[0]] === 0x7b) {
    const member = memberSpan(value, span, step);
    if (member) spansAt(value, member, path, from + 1, out);
  }
  return out;
}
