/**
 * JSON text written as bytes, for decoders that turn many small records into JSON (avro-json.ts): each record's
 * JSON is written into a shared chunk and handed on as a slice of it, so that a record costs no string building,
 * no UTF-8 encoding of a whole string and no buffer of its own. A chunk is kept alive by the slices that point into
 * it; a record that outgrows the space left moves to a new chunk.
 */
import { byteaText } from './json-text.js';

const chunkBytes = 256 * 1024;

/**
 * Copies `src[start, end)` to `dst` at `at` and answers the position after it. Short runs byte by byte: Buffer's own
 * copy costs more in its checks than a field name or a short string takes to copy.
 */
function copyInto(src: Buffer, start: number, end: number, dst: Buffer, at: number): number {
  if (end - start > 32) return at + src.copy(dst, at, start, end);
  for (let i = start; i < end; i++) dst[at++] = src[i]!;
  return at;
}

/** A record's JSON grew past the writer's bound. */
export class JsonTooLargeError extends Error {}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const hex = '0123456789abcdef';

export class JsonOut {
  /** A record's JSON may not grow past this (an array of a million nulls takes a few bytes of Avro). */
  readonly #maxRecordBytes: number;
  #buf: Buffer = Buffer.allocUnsafe(chunkBytes);
  #pos = 0;
  /** Where the record being written starts. */
  #start = 0;

  constructor(maxRecordBytes = Infinity) {
    this.#maxRecordBytes = maxRecordBytes;
  }

  /** Starts a record. */
  begin(): void {
    this.#start = this.#pos;
  }

  /** Ends the record: its JSON bytes. */
  end(): Buffer {
    return this.#buf.subarray(this.#start, this.#pos);
  }

  /** Drops what was written of the record (it failed to decode). */
  abandon(): void {
    this.#pos = this.#start;
  }

  #ensure(bytes: number): void {
    if (this.#pos + bytes <= this.#buf.length) return;
    const written = this.#pos - this.#start;
    if (written + bytes > this.#maxRecordBytes) throw new JsonTooLargeError(`its JSON would be larger than ${this.#maxRecordBytes} bytes`);
    const next = Buffer.allocUnsafe(Math.max(chunkBytes, (written + bytes) * 2));
    this.#buf.copy(next, 0, this.#start, this.#pos);
    this.#buf = next;
    this.#start = 0;
    this.#pos = written;
  }

  byte(value: number): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = value;
  }

  /** Text known to be ASCII: numbers, literals, hex. */
  ascii(text: string): void {
    this.#ensure(text.length);
    this.#pos += this.#buf.write(text, this.#pos, 'latin1');
  }

  /** Bytes written before (a field name with its quotes and colon, an enum symbol). */
  bytes(bytes: Buffer): void {
    this.#ensure(bytes.length);
    this.#pos = copyInto(bytes, 0, bytes.length, this.#buf, this.#pos);
  }

  /**
   * A JSON string holding the UTF-8 text `src[start, end)`, escaped as JSON requires. Answers whether the text has
   * bytes beyond ASCII (which the caller may want to check are valid UTF-8).
   */
  stringFromUtf8(src: Buffer, start: number, end: number): boolean {
    // At most 6 bytes per input byte (a control character as \u00XX), and the quotes.
    this.#ensure((end - start) * 6 + 2);
    const buf = this.#buf;
    let pos = this.#pos;
    buf[pos++] = QUOTE;
    let run = start;
    let high = 0;
    for (let i = start; i < end; i++) {
      const b = src[i]!;
      high |= b;
      if (b >= 0x20 && b !== QUOTE && b !== BACKSLASH) continue;
      pos = copyInto(src, run, i, buf, pos);
      buf[pos++] = BACKSLASH;
      if (b === QUOTE || b === BACKSLASH) buf[pos++] = b;
      else {
        buf[pos++] = 0x75; // u
        buf[pos++] = 0x30;
        buf[pos++] = 0x30;
        buf[pos++] = hex.charCodeAt(b >> 4);
        buf[pos++] = hex.charCodeAt(b & 15);
      }
      run = i + 1;
    }
    pos = copyInto(src, run, end, buf, pos);
    buf[pos++] = QUOTE;
    this.#pos = pos;
    return high >= 0x80;
  }

  /** Bytes as the JSON string of PostgreSQL's bytea hex form, `"\\x0a1b"`. */
  bytea(src: Buffer, start: number, end: number): void {
    this.ascii(byteaText(src, start, end));
  }
}
