/**
 * Finds JSON values inside raw record bytes without parsing them. sluice hands JSON to PostgreSQL as bytes and lets
 * the server parse it once; what JavaScript must still guarantee is the structure: that a value is exactly one JSON
 * object, so that joining values with commas into one array can never turn one record into two rows. The scanner
 * tracks strings (with escapes) and nesting; everything else (numbers, literals, UTF-8) is left to PostgreSQL, which
 * rejects a malformed value with a data error.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

const isSpace = (b: number | undefined) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

function skipSpace(bytes: Uint8Array, i: number, end = bytes.length): number {
  while (i < end && isSpace(bytes[i])) i++;
  return i;
}

/** End (exclusive) of the string that starts at `i` (a quote), or -1 if it is not terminated before `end`. */
function stringEnd(bytes: Uint8Array, i: number, end: number): number {
  for (i++; i < end; i++) {
    const b = bytes[i];
    if (b === QUOTE) return i + 1;
    if (b === BACKSLASH) i++;
  }
  return -1;
}

/** valueEnd's answer for a value nested deeper than allowed. */
const TOO_DEEP = -2;

/**
 * End (exclusive) of the JSON value that starts at `i` (no leading space), -1 if its structure is broken
 * (unbalanced brackets, unterminated string, nothing there), or TOO_DEEP when objects and arrays nest more than
 * `maxDepth` levels. A scalar ends at the next delimiter.
 */
function valueEnd(bytes: Uint8Array, i: number, end = bytes.length, maxDepth = Infinity): number {
  const first = bytes[i];
  if (i >= end) return -1;
  if (first === QUOTE) return stringEnd(bytes, i, end);
  if (first !== OPEN_BRACE && first !== OPEN_BRACKET) {
    let j = i;
    while (j < end) {
      const b = bytes[j]!;
      if (b === COMMA || b === CLOSE_BRACE || b === CLOSE_BRACKET || b === COLON || b === QUOTE || b === OPEN_BRACE || b === OPEN_BRACKET || isSpace(b)) break;
      j++;
    }
    return j > i ? j : -1;
  }
  // Brackets must match by kind: a stack of the open ones, in one array kept between calls (a new one per value
  // was 6 % of what sluice allocated in a drain). One grown by a deeply nested value is not kept.
  if (openStack.length > keptStackLength) openStack = new Uint8Array(keptStackLength);
  let depth = 0;
  for (let j = i; j < end; j++) {
    const b = bytes[j];
    if (b === QUOTE) {
      const e = stringEnd(bytes, j, end);
      if (e < 0) return -1;
      j = e - 1;
    } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      if (++depth > maxDepth) return TOO_DEEP;
      if (depth > openStack.length) openStack = growStack(openStack);
      openStack[depth - 1] = b;
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
      if (depth === 0 || openStack[--depth] !== (b === CLOSE_BRACE ? OPEN_BRACE : OPEN_BRACKET)) return -1;
      if (depth === 0) return j + 1;
    }
  }
  return -1;
}

/** valueEnd's stack of open brackets (it never runs twice at once), and the size it is kept at. */
const keptStackLength = 256;
let openStack: Uint8Array = new Uint8Array(keptStackLength);

function growStack(stack: Uint8Array): Uint8Array {
  const grown = new Uint8Array(stack.length * 2);
  grown.set(stack);
  return grown;
}

/**
 * The span of the single JSON object that `bytes[start, end)` holds (spaces around allowed), or why there is none.
 * `maxDepth` bounds the nesting of objects and arrays, the object itself being level 1. `what` the bytes are names
 * them in the reason.
 */
export function objectSpan(bytes: Uint8Array, start = 0, end = bytes.length, maxDepth = Infinity, what = 'value'): [number, number] | string {
  const s = skipSpace(bytes, start, end);
  if (bytes[s] !== OPEN_BRACE) return `${what} is not a single JSON object`;
  const e = valueEnd(bytes, s, end, maxDepth);
  if (e === TOO_DEEP) return `${what} nests objects and arrays deeper than maxJsonDepth=${maxDepth}`;
  if (e < 0 || skipSpace(bytes, e, end) !== end) return `${what} is not a single JSON object`;
  return [s, e];
}

const payloadKey = Buffer.from('"payload"');
const schemaKey = Buffer.from('"schema"');

/**
 * Reads Kafka Connect JsonConverter envelopes (`{"schema": …, "payload": {…}}`). Records of one topic nearly always
 * share one schema, so the bytes before the payload are remembered: a record that starts with the same bytes only
 * needs its payload checked. Any other record is scanned member by member.
 */
export class ConnectEnvelopeReader {
  #prefix: Buffer | undefined;
  readonly #maxDepth: number;
  /**
   * How the last `payload` call found the envelope: `same-prefix`, it starts with the remembered bytes, so its schema
   * is that of the record that set them; `new-prefix`, it was scanned and its bytes before the payload are now the
   * remembered ones; `scanned`, it was scanned and nothing was remembered (the payload is not the last member).
   */
  lastRead: 'same-prefix' | 'new-prefix' | 'scanned' = 'scanned';
  /** Where the last scanned envelope's `schema` member is (not set by a `same-prefix` read). */
  schemaSpan: [number, number] | undefined;

  /** `maxDepth` bounds the payload's nesting, the payload object being level 1. */
  constructor(maxDepth = Infinity) {
    this.#maxDepth = maxDepth;
  }

  /** The span of the payload object, or a reason why there is none. */
  payload(bytes: Buffer): [number, number] | string {
    const prefix = this.#prefix;
    if (prefix && bytes.length > prefix.length && bytes.compare(prefix, 0, prefix.length, 0, prefix.length) === 0) {
      let close = bytes.length - 1;
      while (close > prefix.length && isSpace(bytes[close])) close--;
      if (bytes[close] === CLOSE_BRACE) {
        const span = objectSpan(bytes, prefix.length, close, this.#maxDepth);
        if (typeof span !== 'string') {
          this.lastRead = 'same-prefix';
          return span;
        }
      }
    }
    return this.#scan(bytes);
  }

  #scan(bytes: Buffer): [number, number] | string {
    this.lastRead = 'scanned';
    this.schemaSpan = undefined;
    const end = bytes.length;
    let i = skipSpace(bytes, 0);
    if (bytes[i] !== OPEN_BRACE) return 'value is not a JSON object';
    i = skipSpace(bytes, i + 1);
    let payload: [number, number] | undefined;
    let payloadIsLast = false;
    let payloadValueStart = 0;
    let first = true;
    while (i < end && bytes[i] !== CLOSE_BRACE) {
      if (!first) {
        if (bytes[i] !== COMMA) return 'value is not valid JSON';
        i = skipSpace(bytes, i + 1);
      }
      first = false;
      if (bytes[i] !== QUOTE) return 'value is not valid JSON';
      const keyEnd = stringEnd(bytes, i, end);
      if (keyEnd < 0) return 'value is not valid JSON';
      const isPayload = keyEnd - i === payloadKey.length && bytes.compare(payloadKey, 0, payloadKey.length, i, keyEnd) === 0;
      const isSchema = keyEnd - i === schemaKey.length && bytes.compare(schemaKey, 0, schemaKey.length, i, keyEnd) === 0;
      i = skipSpace(bytes, keyEnd);
      if (bytes[i] !== COLON) return 'value is not valid JSON';
      i = skipSpace(bytes, i + 1);
      const e = valueEnd(bytes, i, end, isPayload ? this.#maxDepth : Infinity);
      if (e === TOO_DEEP) return `the envelope's payload nests objects and arrays deeper than maxJsonDepth=${this.#maxDepth}`;
      if (e < 0) return 'value is not valid JSON';
      if (isPayload) {
        if (bytes[i] !== OPEN_BRACE) return 'the envelope\'s payload is not a JSON object';
        payload = [i, e];
        payloadValueStart = i;
      } else if (isSchema) {
        this.schemaSpan = [i, e];
      }
      payloadIsLast = isPayload;
      i = skipSpace(bytes, e);
    }
    if (bytes[i] !== CLOSE_BRACE || skipSpace(bytes, i + 1) !== end) return 'value is not valid JSON';
    if (!payload) return 'value is not a Kafka Connect JSON envelope ({"schema": …, "payload": {…}})';
    if (payloadIsLast) {
      this.#prefix = Buffer.from(bytes.subarray(0, payloadValueStart));
      this.lastRead = 'new-prefix';
    }
    return payload;
  }
}

/**
 * The span of the value of member `name` in the JSON object at `span` (whose structure objectSpan has checked), or
 * undefined when the object has no such member. As PostgreSQL's json_to_recordset reads it: the last of duplicate
 * members wins, and a name written with escapes (`"\u0069d"`) is the name it decodes to. The value's bytes are
 * returned as they are, so two values are the same here only if their JSON text is.
 */
export function memberSpan(bytes: Buffer, span: readonly [number, number], name: MemberName): [number, number] | undefined {
  let i = skipSpace(bytes, span[0] + 1, span[1]);
  let found: [number, number] | undefined;
  while (i < span[1] && bytes[i] === QUOTE) {
    const keyEnd = stringEnd(bytes, i, span[1]);
    if (keyEnd < 0) return found;
    const matches = name.matches(bytes, i, keyEnd);
    i = skipSpace(bytes, keyEnd, span[1]);
    if (bytes[i] !== COLON) return found;
    i = skipSpace(bytes, i + 1, span[1]);
    const valueStart = i;
    const e = valueEnd(bytes, i, span[1]);
    if (e < 0) return found;
    if (matches) found = [valueStart, e];
    i = skipSpace(bytes, e, span[1]);
    if (bytes[i] === COMMA) i = skipSpace(bytes, i + 1, span[1]);
  }
  return found;
}

/** The spans of the elements of the JSON array at `span` (whose structure objectSpan has checked), in order. */
export function elementSpans(bytes: Buffer, span: readonly [number, number]): Array<[number, number]> {
  const elements: Array<[number, number]> = [];
  let i = skipSpace(bytes, span[0] + 1, span[1]);
  while (i < span[1] && bytes[i] !== CLOSE_BRACKET) {
    const e = valueEnd(bytes, i, span[1]);
    if (e < 0) return elements;
    elements.push([i, e]);
    i = skipSpace(bytes, e, span[1]);
    if (bytes[i] === COMMA) i = skipSpace(bytes, i + 1, span[1]);
  }
  return elements;
}

/** A member name, compared against raw JSON strings: byte for byte, or decoded when the raw one has escapes. */
export class MemberName {
  readonly #name: string;
  readonly #quoted: Buffer;

  constructor(name: string) {
    this.#name = name;
    this.#quoted = Buffer.from(JSON.stringify(name));
  }

  get name(): string {
    return this.#name;
  }

  /** Whether the JSON string in bytes[start, end) (quotes included) is this name. */
  matches(bytes: Buffer, start: number, end: number): boolean {
    if (end - start === this.#quoted.length && bytes.compare(this.#quoted, 0, this.#quoted.length, start, end) === 0) return true;
    let escaped = false;
    for (let i = start; i < end && !escaped; i++) escaped = bytes[i] === BACKSLASH;
    if (!escaped) return false;
    try {
      return JSON.parse(bytes.toString('utf8', start, end)) === this.#name;
    } catch {
      // Not a valid JSON string: not this name (PostgreSQL rejects the value itself, and the record with it).
      return false;
    }
  }
}
