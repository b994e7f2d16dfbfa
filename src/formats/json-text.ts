/**
 * Values decoded from Avro or Protobuf, written as the JSON text PostgreSQL's `json_to_recordset` turns into the
 * right column values: exact numbers as JSON number text (never through a JavaScript `number` when they may not fit
 * one), instants as ISO 8601 text to the microsecond, `bytea` in its hex form. The rest of the pipeline then reads
 * these records exactly as it reads JSON ones.
 */


/** A JSON string, escaped as JSON.stringify escapes it. */
export const jsonString = (text: string): string => JSON.stringify(text);

/** Bytes as the JSON string of PostgreSQL's bytea hex form, `"\\x0a1b"`, which a bytea column reads back exactly. */
export function byteaText(bytes: Buffer, start = 0, end = bytes.length): string {
  return `"\\\\x${bytes.toString('hex', start, end)}"`;
}

/** A double as JSON: the shortest text that reads back as the same double; NaN and ±Infinity as strings PostgreSQL reads. */
export function doubleText(value: number): string {
  if (Number.isFinite(value)) return String(value);
  return Number.isNaN(value) ? '"NaN"' : value > 0 ? '"Infinity"' : '"-Infinity"';
}

/**
 * A 32-bit float as JSON: the shortest text that reads back as the same float (`0.1`, not the double it widens to,
 * `0.10000000149011612`).
 */
export function floatText(value: number): string {
  if (!Number.isFinite(value)) return doubleText(value);
  for (let digits = 1; digits <= 9; digits++) {
    const text = value.toPrecision(digits);
    if (Math.fround(Number(text)) === value) return String(Number(text));
  }
  return String(value);
}

/** An unscaled big-endian two's complement integer (Avro `decimal`, Connect `Decimal`) as exact decimal text. */
export function decimalText(bytes: Buffer, scale: number, start = 0, end = bytes.length): string {
  if (end <= start) return '0';
  let unscaled = BigInt(`0x${bytes.toString('hex', start, end)}`);
  if (bytes[start]! & 0x80) unscaled -= 1n << BigInt(8 * (end - start));
  return scaledText(unscaled, scale);
}

/** `unscaled × 10^-scale` as exact decimal text. */
export function scaledText(unscaled: bigint, scale: number): string {
  if (scale <= 0) return (unscaled * 10n ** BigInt(-scale)).toString();
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  return `${negative ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

const microsPerMs = 1000n;

/** Floor division and its non-negative remainder, for instants before 1970. */
function floorDivMod(value: bigint, by: bigint): [bigint, bigint] {
  let q = value / by;
  let r = value % by;
  if (r < 0n) {
    q -= 1n;
    r += by;
  }
  return [q, r];
}

/** Years PostgreSQL reads in ISO 8601 text as JavaScript writes it (outside them the year gains a sign and digits). */
const firstYearMs = -62_135_596_800_001; // just before 0001-01-01T00:00:00Z
const lastYearEndMs = 253_402_300_800_000; // 10000-01-01T00:00:00Z

/**
 * An instant in ms since the epoch as ISO text with `extraFraction` more fraction digits, or undefined outside the
 * years 1 to 9999.
 */
function isoText(ms: number, extraFraction: string, utc: boolean): string | undefined {
  if (!(ms > firstYearMs && ms < lastYearEndMs)) return undefined;
  const date = new Date(ms);
  const iso = date.toISOString();
  return `"${iso.slice(0, -1)}${extraFraction}${utc ? 'Z' : ''}"`;
}

/**
 * An instant given in `unit`s since the epoch as ISO 8601 text (`"2024-05-01T12:00:00.123456Z"`), or without the
 * zone for a local timestamp (`utc` false). Undefined when JavaScript's dates cannot hold it (beyond ±275,000 years).
 */
export function instantText(value: bigint | number, unit: 'ms' | 'us' | 'ns', utc = true): string | undefined {
  if (unit === 'ms') return isoText(Number(value), '', utc);
  const per = unit === 'us' ? microsPerMs : 1_000_000n;
  const [ms, rest] = floorDivMod(BigInt(value), per);
  return isoText(Number(ms), rest.toString().padStart(unit === 'us' ? 3 : 6, '0'), utc);
}

/** Seconds and nanoseconds since the epoch (Protobuf's Timestamp) as ISO text to the nanosecond, which PostgreSQL rounds to µs. */
export function secondsNanosText(seconds: bigint, nanos: number): string | undefined {
  const ms = seconds * 1000n + BigInt(Math.floor(nanos / 1_000_000));
  return isoText(Number(ms), String(nanos % 1_000_000).padStart(6, '0'), true);
}

/** Days since 1970-01-01 as `"YYYY-MM-DD"`, or undefined out of range. */
export function dateText(days: number): string | undefined {
  const text = isoText(days * 86_400_000, '', true);
  return text === undefined ? undefined : `${text.slice(0, text.indexOf('T'))}"`;
}

/** A time of day in `unit`s since midnight as `"HH:MM:SS.ffffff"`, or undefined outside one day. */
export function timeOfDayText(value: bigint | number, unit: 'ms' | 'us'): string | undefined {
  const micros = BigInt(value) * (unit === 'ms' ? 1000n : 1n);
  if (micros < 0n || micros > 86_400_000_000n) return undefined;
  const [seconds, fraction] = floorDivMod(micros, 1_000_000n);
  const s = Number(seconds);
  const two = (n: number) => String(n).padStart(2, '0');
  return `"${two(Math.floor(s / 3600))}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}.${fraction.toString().padStart(6, '0')}"`;
}

