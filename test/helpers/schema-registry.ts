import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import avro from 'avsc';
import protobuf from 'protobufjs';
import { bundledImports, withoutCustomOptions } from '../../src/formats/protobuf-json.js';

const script = fileURLToPath(new URL('../../scripts/registry/registry.sh', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));

/** Whether this machine can run a schema registry of a test's own (scripts/registry/registry.sh needs Java and Maven). */
export function canRunOwnRegistry(): boolean {
  return ['java', 'mvn', 'curl'].every((tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0);
}

/**
 * A schema registry (Apicurio Registry, Confluent-compatible API) that belongs to one test file, on its own port and
 * storage, so that the test can stop it and start it again; its schemas and ids survive that.
 */
export class OwnRegistry {
  readonly port: number;
  readonly #env: NodeJS.ProcessEnv;
  #started = false;

  constructor(name: string, port: number) {
    this.port = port;
    this.#env = { ...process.env, SLUICE_REGISTRY_PORT: String(port), SLUICE_REGISTRY_HOME: `${root}.local/registry-${name}` };
  }

  /** The base URL of the Confluent-compatible API. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/apis/ccompat/v7`;
  }

  /** Starts the registry (fresh storage the first time, the same storage after) and waits until it answers. */
  async start(): Promise<void> {
    await this.#run(this.#started ? ['start', '--keep-data'] : ['start']);
    this.#started = true;
  }

  async stop(): Promise<void> {
    await this.#run(['stop']);
  }

  /** Registers a schema under `subject` as a producer's serializer would, and answers its id. */
  async register(subject: string, schemaType: 'AVRO' | 'PROTOBUF' | 'JSON', schema: string): Promise<number> {
    const response = await fetch(`${this.url}/subjects/${encodeURIComponent(subject)}/versions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ schemaType, schema }),
    });
    const body = (await response.json()) as { id?: number; message?: string };
    if (!response.ok || typeof body.id !== 'number') throw new Error(`registering ${subject} failed: HTTP ${response.status} ${body.message ?? ''}`);
    return body.id;
  }

  async #run(args: string[]): Promise<void> {
    try {
      await promisify(execFile)('bash', [script, ...args], { env: this.#env, encoding: 'utf8', timeout: 180_000 });
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? '';
      throw new Error(`registry.sh ${args.join(' ')} failed: ${String(error)} ${stderr}`, { cause: error });
    }
  }
}

/** The wire format: magic byte 0, the schema id (4 bytes, big-endian), then the payload. */
export function wire(schemaId: number, payload: Buffer | Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(schemaId, 1);
  return Buffer.concat([header, payload]);
}

/** avsc with 64-bit longs as bigint, so that test input can hold values a double cannot. */
const bigintLong = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(n));
    return buf;
  },
  fromJSON: BigInt,
  toJSON: Number,
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
});

/**
 * An Avro encoder for a schema, as a producer's serializer writes values: avsc, with no logical types registered, so
 * that the test gives each value in its underlying type (a decimal as its two's complement bytes, a timestamp as a
 * bigint count) and the expected column text is computed independently of sluice's reading.
 */
export function avroEncoder(schema: object): (value: unknown) => Buffer {
  // Annotations dropped, so that every long is the registry's bigint long (avsc builds an annotated long anew).
  const plain = JSON.parse(JSON.stringify(schema), (_key, value: unknown) => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const { logicalType: _dropped, ...rest } = value as Record<string, unknown>;
      return rest.type === 'long' && !('name' in rest) ? 'long' : rest; // a long type, not a field of type long
    }
    return value;
  }) as avro.Schema;
  const type = avro.Type.forSchema(plain, { registry: { long: bigintLong }, wrapUnions: true });
  return (value) => type.toBuffer(value);
}

/** A decimal's unscaled value as big-endian two's complement bytes, as Avro's `decimal` holds it. */
export function unscaledBytes(unscaled: bigint): Buffer {
  let bytes = 1;
  while (unscaled >= 1n << BigInt(8 * bytes - 1) || unscaled < -(1n << BigInt(8 * bytes - 1))) bytes++;
  const hex = BigInt.asUintN(8 * bytes, unscaled).toString(16).padStart(bytes * 2, '0');
  return Buffer.from(hex, 'hex');
}

/**
 * A Protobuf encoder for one message type of a `.proto` schema, writing the message indexes the wire format puts
 * before the payload (the type's path among the file's messages; [0] is written as the single byte 0).
 */
export function protobufEncoder(schema: string, messageName: string): (value: Record<string, unknown>) => Buffer {
  // Without custom options, which protobufjs cannot always parse (as sluice reads such schemas).
  const parsed = protobuf.parse(withoutCustomOptions(schema), new protobuf.Root(), { keepCase: true });
  for (const name of parsed.imports ?? []) {
    const bundled = bundledImports[name];
    if (bundled !== undefined) protobuf.parse(bundled, parsed.root, { keepCase: true });
    const common = protobuf.common.get(name) as { nested?: protobuf.INamespace['nested'] } | null;
    if (common?.nested) parsed.root.addJSON(common.nested);
  }
  parsed.root.resolveAll();
  const scope = (parsed.package ? parsed.root.lookup(parsed.package) : parsed.root) as protobuf.Namespace;
  const path: number[] = [];
  let candidates = scope.nestedArray.filter((o): o is protobuf.Type => o instanceof protobuf.Type);
  let type: protobuf.Type | undefined;
  for (const part of messageName.split('.')) {
    const index = candidates.findIndex((t) => t.name === part);
    if (index < 0) throw new Error(`no message ${messageName} in the schema`);
    path.push(index);
    type = candidates[index]!;
    candidates = type.nestedArray.filter((o): o is protobuf.Type => o instanceof protobuf.Type);
  }
  const writer = protobuf.Writer.create();
  if (path.length === 1 && path[0] === 0) writer.sint32(0);
  else {
    writer.sint32(path.length);
    for (const i of path) writer.sint32(i);
  }
  const indexes = Buffer.from(writer.finish());
  return (value) => {
    return Buffer.concat([indexes, type!.encode(type!.fromObject(value)).finish()]);
  };
}
