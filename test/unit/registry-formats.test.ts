import avro from 'avsc';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config/load-config.js';
import { resolveOptions } from '../../src/config/resolve-options.js';
import { ConfigError } from '../../src/index.js';
import type { SourceRecord } from '../../src/record.js';
import { avroReader } from '../../src/formats/avro-json.js';
import { JsonOut } from '../../src/formats/json-out.js';
import { checkedObjectSpan, isDeletion, originalRecord } from '../../src/formats/record-decoder.js';
import { routeDecoder } from '../../src/formats/route-decoder.js';
import { ConnectJsonDecoder } from '../../src/formats/connect-json-decoder.js';
import { dateText, decimalText, floatText, instantText, scaledText, secondsNanosText, timeOfDayText } from '../../src/formats/json-text.js';
import { protobufReader, withoutCustomOptions } from '../../src/formats/protobuf-json.js';
import { readWireHeader } from '../../src/formats/wire-format.js';
import { avroEncoder, protobufEncoder, unscaledBytes } from '../helpers/schema-registry.js';

/** A decoded record's JSON object: where a decoder found it in the value, or the whole value. */
function jsonOf(record: SourceRecord): string {
  const span = checkedObjectSpan(record);
  return span ? record.value!.toString('utf8', span[0], span[1]) : record.value!.toString();
}

describe('exact text for PostgreSQL', () => {
  it('decimals from two\'s complement bytes, to the last digit, at any scale and sign', () => {
    expect(decimalText(unscaledBytes(-123456789012345678900123456789n), 10)).toBe('-12345678901234567890.0123456789');
    expect(decimalText(unscaledBytes(1n), 10)).toBe('0.0000000001');
    expect(decimalText(unscaledBytes(-1n), 2)).toBe('-0.01');
    expect(decimalText(unscaledBytes(255n), 0)).toBe('255');
    expect(decimalText(Buffer.alloc(0), 3)).toBe('0');
    expect(scaledText(12n, -2)).toBe('1200');
  });

  it('instants to the microsecond (and nanosecond), before and after 1970; dates and times of day', () => {
    expect(instantText(1717171717123456n, 'us')).toBe('"2024-05-31T16:08:37.123456Z"');
    expect(instantText(-1n, 'us')).toBe('"1969-12-31T23:59:59.999999Z"');
    expect(instantText(1717171717123n, 'ms')).toBe('"2024-05-31T16:08:37.123Z"');
    expect(instantText(-1n, 'ns', false)).toBe('"1969-12-31T23:59:59.999999999"');
    expect(instantText(10n ** 30n, 'us')).toBeUndefined();
    expect(secondsNanosText(-1n, 500_000_000)).toBe('"1969-12-31T23:59:59.500000000Z"');
    expect(dateText(-1)).toBe('"1969-12-31"');
    expect(dateText(19875)).toBe('"2024-06-01"');
    expect(timeOfDayText(45296789012n, 'us')).toBe('"12:34:56.789012"');
    expect(timeOfDayText(-1, 'ms')).toBeUndefined();
    // Outside the years 1 to 9999 ISO text gains a sign and more digits, which PostgreSQL does not read: refused here.
    expect(dateText(-719163)).toBeUndefined();
    expect(dateText(-719162)).toBe('"0001-01-01"');
    expect(instantText(253402300799999n, 'ms')).toBe('"9999-12-31T23:59:59.999Z"');
    expect(instantText(253402300800000n, 'ms')).toBeUndefined();
  });

  it('a float as the shortest text that reads back as the same float', () => {
    for (const n of [0.1, 1.5, -3.4028234663852886e38, 1e-45, 16777217, 123.456]) {
      const f = Math.fround(n);
      const text = floatText(f);
      expect(Math.fround(Number(text)), text).toBe(f);
      expect(text.length, text).toBeLessThanOrEqual(String(n).length + 2);
    }
    expect(floatText(Math.fround(0.1))).toBe('0.1');
    expect(floatText(Number.NaN)).toBe('"NaN"');
  });
});

describe('wire format', () => {
  it('reads the schema id, and says why bytes are not in the format', () => {
    expect(readWireHeader(Buffer.from([0, 0, 0, 1, 2, 9]))).toEqual({ schemaId: 258, offset: 5 });
    expect(readWireHeader(Buffer.from([0, 0, 1]))).toMatch(/^3 bytes are too few/);
    expect(readWireHeader(Buffer.from('{"a":1}'))).toBe('not in the schema registry wire format: the first byte is 123, not the magic byte 0 (it looks like plain JSON)');
  });
});

describe('Avro binary to JSON text', () => {
  const read = (schema: object, value: unknown) => {
    const bytes = avroEncoder(schema)(value);
    return avroReader(JSON.stringify(schema))(bytes, 0, new JsonOut()).toString();
  };

  it('64-bit longs at both ends of the range, and ints, exactly', () => {
    const schema = { type: 'record', name: 'R', fields: [{ name: 'a', type: 'long' }, { name: 'b', type: 'long' }, { name: 'c', type: 'long' }, { name: 'i', type: 'int' }] };
    expect(read(schema, { a: -9223372036854775808n, b: 9223372036854775807n, c: 9007199254740993n, i: -2147483648 })).toBe(
      '{"a":-9223372036854775808,"b":9223372036854775807,"c":9007199254740993,"i":-2147483648}',
    );
    for (const n of [0n, -1n, 1n, 2n ** 48n, -(2n ** 49n), 2n ** 53n, -(2n ** 53n) - 1n]) {
      expect(read(schema, { a: n, b: 0n, c: 0n, i: 0 })).toBe(`{"a":${n},"b":0,"c":0,"i":0}`);
    }
  });

  it('unions are their branch, recursive records nest, maps and arrays of several blocks read whole', () => {
    const schema = {
      type: 'record',
      name: 'Node',
      fields: [
        { name: 'v', type: ['null', 'string', 'double'] },
        { name: 'next', type: ['null', 'Node'] },
      ],
    };
    expect(read(schema, { v: { double: Number.NaN }, next: { Node: { v: { string: 'x' }, next: null } } })).toBe('{"v":"NaN","next":{"v":"x","next":null}}');
    // avsc writes arrays as one block; a writer may use several, with negative counts and sizes.
    const arrays = { type: 'array', items: 'int' };
    const blocks = Buffer.from([0x03, 0x02, 0x02, 0x04, 0x02, 0x06, 0x00]); // count -2 (size 1): 1, 2; then count 1: 3; end
    expect(avroReader(JSON.stringify(arrays))(blocks, 0, new JsonOut()).toString()).toBe('[1,2,3]');
  });

  it('refuses truncated bytes, bytes left over, a union branch out of range and invalid UTF-8', () => {
    const schema = { type: 'record', name: 'R', fields: [{ name: 's', type: 'string' }, { name: 'u', type: ['null', 'int'] }] };
    const avro = avroReader(JSON.stringify(schema));
    const reader = (bytes: Buffer, offset: number) => avro(bytes, offset, new JsonOut());
    const good = avroEncoder(schema)({ s: 'abc', u: { int: 5 } });
    expect(() => reader(good.subarray(0, good.length - 1), 0)).toThrow('the Avro value is truncated');
    expect(() => reader(Buffer.concat([good, Buffer.from([0])]), 0)).toThrow('1 bytes are left after the Avro value');
    expect(() => reader(Buffer.from([0x02, 0x61, 0x08]), 0)).toThrow('union branch 4 is out of range (2 branches)');
    expect(() => reader(Buffer.from([0x02, 0xff, 0x00]), 0)).toThrow('an Avro string is not valid UTF-8');
    expect(() => reader(Buffer.from([0x01]), 0)).toThrow('a length of -1 bytes is not valid');
  });

  it('arrays of items that take no bytes, uuid on fixed(16)', () => {
    const empty = { type: 'record', name: 'E', fields: [] };
    const schema = { type: 'record', name: 'R', fields: [{ name: 'es', type: { type: 'array', items: empty } }, { name: 'u', type: { type: 'fixed', name: 'U', size: 16, logicalType: 'uuid' } }] };
    const u = Buffer.from('3b241101e2bb42558caf4136c566a962', 'hex');
    expect(read(schema, { es: [{}, {}, {}], u })).toBe('{"es":[{},{},{}],"u":"3b241101-e2bb-4255-8caf-4136c566a962"}');
  });

  it('knows how deeply a record schema nests, so that its values need no scan within the depth limit', () => {
    const depth = (schema: object) => avroReader(JSON.stringify(schema)).objectDepth;
    expect(depth({ type: 'record', name: 'A', fields: [{ name: 'n', type: 'long' }] })).toBe(1);
    expect(depth({ type: 'record', name: 'B', fields: [{ name: 'xs', type: { type: 'array', items: { type: 'record', name: 'C', fields: [{ name: 'm', type: { type: 'map', values: 'int' } }] } } }] })).toBe(4);
    expect(depth({ type: 'record', name: 'Node', fields: [{ name: 'next', type: ['null', 'Node'] }] })).toBe(Infinity);
    expect(depth({ type: 'array', items: 'int' })).toBeUndefined(); // not an object: the route refuses it
    // A logical type that does not apply is read as its underlying type, and nests as it does.
    const annotated = { type: 'array', items: { type: 'array', items: 'int' }, logicalType: 'date' };
    expect(depth({ type: 'record', name: 'D', fields: [{ name: 'a', type: annotated }] })).toBe(3);
    expect(depth({ type: 'record', name: 'T', fields: [{ name: 'at', type: { type: 'long', logicalType: 'timestamp-micros' } }] })).toBe(1);
  });

  it('a value whose JSON would grow past the bound is refused, not written (a few bytes of Avro can hold millions of nulls)', () => {
    const schema = { type: 'record', name: 'N', fields: [{ name: 'xs', type: { type: 'array', items: 'null' } }] };
    const bytes = Buffer.from([0xfe, 0xff, 0x7f, 0x00]); // one block of 1,048,575 nulls, then the end
    expect(() => avroReader(JSON.stringify(schema))(bytes, 0, new JsonOut(1_000_000))).toThrow('its JSON would be larger than 1000000 bytes');
    expect(avroReader(JSON.stringify(schema))(bytes, 0, new JsonOut()).length).toBe(1_048_575 * 5 + 8); // {"xs":[ null,… ]}
  });

  it('a logical type on the wrong underlying type is ignored, as the spec says', () => {
    const schema = { type: 'record', name: 'R', fields: [{ name: 'd', type: { type: 'string', logicalType: 'decimal', precision: 4, scale: 2 } }] };
    expect(read(schema, { d: '12.5' })).toBe('{"d":"12.5"}');
    expect(avro.Type.forSchema(schema as avro.Schema)).toBeDefined();
  });
});

describe('JSON written as bytes', () => {
  it('escapes strings as JSON requires, whatever their characters', () => {
    const out = new JsonOut();
    const text = 'a"b\\c\n\u0000\u001f é ☃ 𝄞 \u2028';
    out.begin();
    const src = Buffer.from(text);
    out.stringFromUtf8(src, 0, src.length);
    expect(JSON.parse(out.end().toString())).toBe(text);
  });

  it('records written one after another stay intact as chunks fill, a record larger than a chunk too', () => {
    const out = new JsonOut();
    const written: Array<[Buffer, string]> = [];
    for (let i = 0; i < 3000; i++) {
      const text = i === 1500 ? 'x'.repeat(600_000) : `record ${i} ${'y'.repeat(i % 300)}`;
      out.begin();
      out.ascii('{"v":');
      const src = Buffer.from(text);
      out.stringFromUtf8(src, 0, src.length);
      out.byte(0x7d);
      written.push([out.end(), text]);
    }
    for (const [bytes, text] of written) expect((JSON.parse(bytes.toString()) as { v: string }).v).toBe(text);
  });
});

describe('Protobuf to JSON text', () => {
  const proto = `syntax = "proto3";
package p;
import "google/protobuf/struct.proto";
import "google/protobuf/duration.proto";
message A { int32 x = 1; }
message B {
  message C { sint64 big = 1; map<int64, string> names = 2; google.protobuf.Struct doc = 3; google.protobuf.Duration took = 4; oneof choice { string s = 5; int32 n = 6; } }
}`;

  it('finds the message by its indexes, nested ones too; 64-bit map keys, Struct and Duration read as they stand', () => {
    const encode = protobufEncoder(proto, 'B.C');
    const bytes = encode({ big: '-9223372036854775808', names: { '12345678901234': 'x' }, doc: { fields: { a: { numberValue: 1.5 }, b: { listValue: { values: [{ boolValue: true }, { nullValue: 0 }] } } } }, took: { seconds: -1, nanos: -500_000_000 }, n: 0 });
    expect(protobufReader({ text: proto, imports: [] })(bytes, 0)).toBe(
      '{"big":-9223372036854775808,"names":{"12345678901234":"x"},"doc":{"a":1.5,"b":[true,null]},"took":"-1.500000000 seconds","n":0}',
    );
    expect(protobufReader({ text: proto, imports: [] })(protobufEncoder(proto, 'A')({ x: 7 }), 0)).toBe('{"x":7}');
  });

  it('Confluent\'s Decimal and Google\'s Date and TimeOfDay, imported without references, read as the values they stand for', () => {
    const schema = `syntax = "proto3";
package shop;
import "confluent/meta.proto";
import "confluent/type/decimal.proto";
import "google/type/date.proto";
import "google/type/timeofday.proto";
message Payment {
  confluent.type.Decimal amount = 1 [(confluent.field_meta) = { params: [ { key: "precision", value: "20" }, { key: "scale", value: "4" } ] }, deprecated = false];
  google.type.Date due = 2;
  google.type.TimeOfDay cutoff = 3;
  google.type.Date partial = 4;
}`;
    const bytes = protobufEncoder(schema, 'Payment')({
      amount: { value: unscaledBytes(-123456789012345678n), precision: 20, scale: 4 },
      due: { year: 2024, month: 6, day: 1 },
      cutoff: { hours: 17, minutes: 5, seconds: 9, nanos: 120000000 },
      partial: { year: 0, month: 12, day: 25 },
    });
    expect(protobufReader({ text: schema, imports: [] })(bytes, 0)).toBe(
      '{"amount":-12345678901234.5678,"due":"2024-06-01","cutoff":"17:05:09.120000000","partial":{"year":0,"month":12,"day":25}}',
    );
  });

  it('custom options are dropped for parsing, and nothing else: not strings, comments or standard options', () => {
    const text = `syntax = "proto3";
option (confluent.file_meta) = { doc: "a; b" };
// [(not.an.option) = 1]
message M {
  option (confluent.message_meta).doc = "m";
  string s = 1 [(x.y) = { list: [ { k: "]" } ] }, json_name = "sss"];
  repeated int32 r = 2 [packed = false, (z) = 1];
  string t = 3 [(only.custom) = true];
  string u = 4; /* [(kept) = 1] */
}`;
    expect(withoutCustomOptions(text)).toBe(`syntax = "proto3";

// [(not.an.option) = 1]
message M {
  
  string s = 1 [json_name = "sss"];
  repeated int32 r = 2 [packed = false];
  string t = 3 ;
  string u = 4; /* [(kept) = 1] */
}`);
  });

  it('message indexes that name no message, and bytes that do not decode, are refused', () => {
    const read = protobufReader({ text: proto, imports: [] });
    expect(() => read(Buffer.from([0x02, 0x0a]), 0)).toThrow('message index 5 names no message type of the schema');
    expect(() => read(Buffer.from([0x00, 0x08]), 0)).toThrow(/does not decode as p.A/);
    expect(protobuf.common.get('google/protobuf/struct.proto')).toBeTruthy();
  });
});

describe('schemaRegistry settings', () => {
  const route = (format: string, topic = 't') => ({ topic, table: 'x', key: ['id'], format, columns: { id: 'id' } });
  const failure = (env: Record<string, string>): ConfigError => {
    try {
      const { options, sources } = readConfig({ DATABASE_URL: 'postgres://127.0.0.1/test', ...env });
      resolveOptions(options, sources);
    } catch (error) {
      if (error instanceof ConfigError) return error;
      throw error;
    }
    throw new Error('expected a ConfigError');
  };

  it('a registry format needs the registry; every route of a topic reads one format', () => {
    expect(failure({ SLUICE_ROUTES: JSON.stringify([route('avro')]) }).message).toMatch(/format=avro reads its schemas from a schema registry; set .*SLUICE_SCHEMA_REGISTRY_URL/);
    expect(failure({ SLUICE_ROUTES: JSON.stringify([route('avro'), route('json')]), SLUICE_SCHEMA_REGISTRY_URL: 'http://r:8081' }).message).toMatch(
      /every route of a topic reads its values one way/,
    );
    const { options, sources } = readConfig({
      DATABASE_URL: 'postgres://127.0.0.1/test',
      SLUICE_ROUTES: JSON.stringify([route('protobuf')]),
      SLUICE_SCHEMA_REGISTRY_URL: 'https://r:8081',
      SLUICE_SCHEMA_REGISTRY_USERNAME: 'u',
      SLUICE_SCHEMA_REGISTRY_PASSWORD_FILE: '/run/secret',
    });
    expect(resolveOptions(options, sources).schemaRegistry).toEqual({ url: 'https://r:8081', username: 'u', passwordFile: '/run/secret', requestTimeoutMs: 10_000 });
  });

  it('a Debezium route upserts by a key a delete carries: not append, not versioned, no key from the offset', () => {
    const base = { SLUICE_SCHEMA_REGISTRY_URL: 'http://r:8081' };
    const dbz = (over: object) => JSON.stringify([{ ...route('avro'), envelope: 'debezium', ...over }]);
    expect(failure({ ...base, SLUICE_ROUTES: dbz({ mode: 'append', key: undefined }) }).message).toMatch(/envelope=debezium mirrors a table, and deletes need a key/);
    expect(failure({ ...base, SLUICE_ROUTES: dbz({ version: 'v', columns: { id: 'id', v: 'v' }, tombstones: 'ignore' }) }).message).toMatch(/envelope=debezium cannot be combined with version/);
    expect(failure({ ...base, SLUICE_ROUTES: dbz({ columns: { id: { from: 'offset' } } }) }).message).toMatch(/needs key column id to come from the row .* not offset/);
  });

  it('basic auth or a token, not both; a secret or its file, not both', () => {
    const base = { SLUICE_ROUTES: JSON.stringify([route('avro')]), SLUICE_SCHEMA_REGISTRY_URL: 'http://r:8081' };
    expect(failure({ ...base, SLUICE_SCHEMA_REGISTRY_USERNAME: 'u', SLUICE_SCHEMA_REGISTRY_TOKEN: 't' }).message).toMatch(/basic auth .* or a bearer token, not both/);
    expect(failure({ ...base, SLUICE_SCHEMA_REGISTRY_TOKEN: 't', SLUICE_SCHEMA_REGISTRY_TOKEN_FILE: '/f' }).message).toMatch(/a token or a token file, not both/);
    expect(failure({ ...base, SLUICE_SCHEMA_REGISTRY_PASSWORD: 'p' }).message).toMatch(/a user name to go with the password/);
    expect(failure({ ...base, SLUICE_SCHEMA_REGISTRY_URL: 'ftp://r' }).message).toMatch(/an http:\/\/ or https:\/\/ URL/);
  });
});

describe('Kafka Connect JSON envelopes', () => {
  const rec = (offset: number, value: unknown): SourceRecord => ({
    topic: 'orders',
    partition: 2,
    offset: String(offset),
    key: null,
    value: value === null ? null : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
    timestamp: '1700000000000',
    headers: {},
    sizeBytes: 1,
  });
  const text = (decoded: SourceRecord | string) => (typeof decoded === 'string' ? decoded : jsonOf(decoded));
  /** A Connect Decimal field's schema. */
  const decimal = (scale: number) => ({ type: 'bytes', name: 'org.apache.kafka.connect.data.Decimal', parameters: { scale: String(scale) } });

  it('answers the payload, as it is when its schema has no logical type; rejects a value that is not an envelope', () => {
    const decoder = new ConnectJsonDecoder();
    const schema = { type: 'struct', fields: [{ field: 'name', type: 'string', optional: false }] };
    expect(text(decoder.decodeOne(rec(0, { schema, payload: { name: 'x' } })))).toBe('{"name":"x"}');
    expect(text(decoder.decodeOne(rec(1, { schema, payload: { name: 'y"}' } })))).toBe('{"name":"y\\"}"}'); // the remembered prefix
    expect(text(decoder.decodeOne(rec(2, ` { "payload" : {"name": "z"}, "schema": null } `)))).toBe('{"name": "z"}'); // any order and spacing
    expect(decoder.decodeOne(rec(3, { name: 'x' }))).toMatch(/^value is not a Kafka Connect JSON envelope/);
    expect(decoder.decodeOne(rec(4, { schema: null, payload: null }))).toMatch(/payload is not a JSON object/);
    expect(decoder.decodeOne(rec(5, `{"schema":${JSON.stringify(schema)},"payload":{"name":"x"},{"name":"y"}}`))).toBe('value is not valid JSON');
    expect(decoder.decodeOne(rec(6, `{"schema":${JSON.stringify(schema)},"payload":{"name":"x"}`))).toBe('value is not valid JSON');
  });

  it('writes Decimal, Timestamp, Date, Time and Debezium temporal values as PostgreSQL reads them, nested structs too, other members untouched', () => {
    const decoder = new ConnectJsonDecoder();
    const schema = {
      type: 'struct',
      fields: [
        { field: 'id', type: 'int64' },
        { field: 'amount', ...decimal(2) },
        { field: 'at', type: 'int64', name: 'org.apache.kafka.connect.data.Timestamp' },
        { field: 'day', type: 'int32', name: 'org.apache.kafka.connect.data.Date' },
        { field: 'tod', type: 'int32', name: 'org.apache.kafka.connect.data.Time' },
        { field: 'micro', type: 'int64', name: 'io.debezium.time.MicroTimestamp' },
        { field: 'vsd', type: 'struct', name: 'io.debezium.data.VariableScaleDecimal', fields: [] },
        { field: 'inner', type: 'struct', fields: [{ field: 'price', ...decimal(3) }] },
      ],
    };
    const payload = `{"id":9007199254740993,"amount":"/zk=","at":1717171717123,"day":19875,"tod":45296789,"micro":1717171717123456,"vsd":{"scale":1,"value":"AQ=="},"inner":{"price":"AeI="},"note":null}`;
    const out = text(decoder.decodeOne(rec(0, `{"schema":${JSON.stringify(schema)},"payload":${payload}}`)));
    expect(out).toBe(
      '{"id":9007199254740993,"amount":-1.99,"at":"2024-05-31T16:08:37.123Z","day":"2024-06-01","tod":"12:34:56.789000","micro":"2024-05-31T16:08:37.123456","vsd":0.1,"inner":{"price":0.482},"note":null}',
    );
    // A Decimal already written as a number (decimal.format=NUMERIC) and null values are left as they are.
    expect(text(decoder.decodeOne(rec(1, `{"schema":${JSON.stringify(schema)},"payload":{"id":1,"amount":12.5,"at":null,"inner":null}}`)))).toBe(
      '{"id":1,"amount":12.5,"at":null,"inner":null}',
    );
    // The payload before the schema: the bytes in front of it say nothing about the schema, which is read each time.
    const scaled = (scale: number) => JSON.stringify({ type: 'struct', fields: [{ field: 'amount', ...decimal(scale) }] });
    expect(text(decoder.decodeOne(rec(3, `{"payload":{"amount":"AQ=="},"schema":${scaled(2)}}`)))).toBe('{"amount":0.01}');
    expect(text(decoder.decodeOne(rec(4, `{"payload":{"amount":"AQ=="},"schema":${scaled(4)}}`)))).toBe('{"amount":0.0001}');
    expect(decoder.decodeOne(rec(2, `{"schema":${JSON.stringify(schema)},"payload":{"id":1,"at":"soon"}}`))).toBe(
      'field at does not hold its logical type\'s value: "soon" is not an integer',
    );
  });

  it('logical values in arrays too: each element converted, arrays of structs and of arrays, null elements and empty arrays kept', () => {
    const decoder = new ConnectJsonDecoder();
    const schema = {
      type: 'struct',
      fields: [
        { field: 'prices', type: 'array', items: decimal(2) },
        { field: 'seen', type: 'array', items: { type: 'int64', name: 'io.debezium.time.MicroTimestamp' } },
        { field: 'lines', type: 'array', items: { type: 'struct', fields: [{ field: 'day', type: 'int32', name: 'org.apache.kafka.connect.data.Date' }, { field: 'sku', type: 'string' }] } },
        { field: 'grid', type: 'array', items: { type: 'array', items: decimal(1) } },
        { field: 'tags', type: 'array', items: { type: 'string' } },
      ],
    };
    const envelope = (payload: string) => rec(0, `{"schema":${JSON.stringify(schema)},"payload":${payload}}`);
    const payload = `{"prices":["/zk=", null, "AQ=="],"seen":[1717171717123456],"lines":[{"day":19875,"sku":"a"},{"sku":"b","day":null}],"grid":[["AQ=="],[],["Ag==", "Aw=="]],"tags":["AQ=="]}`;
    expect(text(decoder.decodeOne(envelope(payload)))).toBe(
      '{"prices":[-1.99, null, 0.01],"seen":["2024-05-31T16:08:37.123456"],"lines":[{"day":"2024-06-01","sku":"a"},{"sku":"b","day":null}],"grid":[[0.1],[],[0.2, 0.3]],"tags":["AQ=="]}',
    );
    expect(text(decoder.decodeOne(envelope('{"prices":[],"seen":null,"lines":[{}]}')))).toBe('{"prices":[],"seen":null,"lines":[{}]}');
    expect(decoder.decodeOne(envelope('{"lines":[{"day":19875},{"day":"soon"}]}'))).toBe(
      'field lines[].day does not hold its logical type\'s value: "soon" is not an integer',
    );
    // A value that is not the array its schema says is left to PostgreSQL, as a member that is not an object is.
    expect(text(decoder.decodeOne(envelope('{"prices":"AQ==","lines":{"day":1}}')))).toBe('{"prices":"AQ==","lines":{"day":1}}');
    // Debezium's numeric[] without a scale: an array of VariableScaleDecimal structs, each converted whole.
    const vsd = { type: 'struct', fields: [{ field: 'values', type: 'array', items: { type: 'struct', name: 'io.debezium.data.VariableScaleDecimal', fields: [] } }] };
    expect(text(decoder.decodeOne(rec(1, `{"schema":${JSON.stringify(vsd)},"payload":{"values":[{"scale":1,"value":"AQ=="},{"scale":0,"value":"/w=="}]}}`)))).toBe(
      '{"values":[0.1,-1]}',
    );
    // Connect never names a field twice; a schema that does cannot lead two conversions to one value.
    const twice = { type: 'struct', fields: [{ field: 'a', type: 'array', items: decimal(2) }, { field: 'a', ...decimal(2) }] };
    expect(decoder.decodeOne(rec(2, `{"schema":${JSON.stringify(twice)},"payload":{"a":["AQ=="]}}`))).toBe("the envelope's schema names a field twice");
  });
});

describe('Debezium change events', () => {
  const rec = (offset: number, value: string | null): SourceRecord => ({
    topic: 'customers',
    partition: 0,
    offset: String(offset),
    key: Buffer.from('{"id":1}'),
    value: value === null ? null : Buffer.from(value),
    timestamp: '1700000000000',
    headers: {},
    sizeBytes: 1,
  });

  it('from Connect JSON: after for c, u, r; before, as a deletion, for d; the logical values inside them converted; the original kept for the DLQ', async () => {
    const row = { type: 'struct', optional: true, fields: [{ field: 'id', type: 'int32' }, { field: 'at', type: 'int64', optional: true, name: 'io.debezium.time.MicroTimestamp' }] };
    const schema = JSON.stringify({ type: 'struct', fields: [{ field: 'before', ...row }, { field: 'after', ...row }, { field: 'op', type: 'string' }] });
    const event = (op: string, before: string, after: string) => `{"schema":${schema},"payload":{"before":${before},"after":${after},"op":"${op}"}}`;
    const records = [
      rec(0, event('c', 'null', '{"id":1,"at":1717171717123456}')),
      rec(1, event('u', '{"id":1,"at":null}', '{"id":1,"at":0}')),
      rec(2, event('r', 'null', '{"id":2,"at":null}')),
      rec(3, event('d', '{"id":1,"at":1}', 'null')),
      rec(4, null), // the tombstone after the delete: left to the route's tombstones setting
      rec(5, event('t', 'null', 'null')),
      rec(6, event('c', 'null', 'null')),
      rec(7, '{"schema":null,"payload":{"before":null,"after":{"id":3}}}'),
      { ...rec(8, event('c', 'null', '{"id":9,"at":null}')), sizeBytes: 1001 }, // too large: passed on undecoded, for the route to refuse
    ];
    const decoder = routeDecoder(
      { topic: 'customers', table: 'customers', key: ['id'], mode: 'upsert', tombstones: 'ignore', format: 'connect-json', envelope: 'debezium' },
      undefined,
      { maxJsonDepth: 100, maxRecordBytes: 1000 },
    )!;
    const { records: out, poison } = await decoder.decode(records);
    expect(out.map((r) => [r.offset, r.value === null ? null : jsonOf(r), isDeletion(r)])).toEqual([
      ['0', '{"id":1,"at":"2024-05-31T16:08:37.123456"}', false],
      ['1', '{"id":1,"at":"1970-01-01T00:00:00.000000"}', false],
      ['2', '{"id":2,"at":null}', false],
      ['3', '{"id":1,"at":"1970-01-01T00:00:00.000001"}', true],
      ['4', null, false],
      ['8', event('c', 'null', '{"id":9,"at":null}'), false],
    ]);
    expect(out.map((r) => originalRecord(r))).toEqual([...records.slice(0, 5), records[8]]);
    expect(poison.map((p) => [p.record.offset, p.error.message.replace(/^.*cannot be written: /, '')])).toEqual([
      ['5', expect.stringMatching(/^a Debezium truncate event names no row/)],
      ['6', 'a Debezium "c" event without an "after" row'],
      ['7', 'value is not a Debezium change event: it has no "op"'],
    ]);
    expect(poison.every((p) => records.includes(p.record))).toBe(true);
  });
});
