/**
 * A client of the Confluent-compatible schema registry API (Confluent Schema Registry, Apicurio Registry's
 * `/apis/ccompat/v7`, Redpanda, Karapace): schemas by id, with the schemas they reference, cached for the life of the
 * process (a schema id never changes meaning). Concurrent requests for one id share one HTTP request.
 *
 * Failures are told apart, because they decide a record's fate. A schema that cannot be read is answered as the
 * reason why (the records written with it are poison): an id the registry says it does not know (HTTP 404 with an
 * error code 404xx, asked twice half a second apart, as a registry replica may lag the one the producer registered
 * with), a reference it does not have, a schema type sluice does not read. Such an answer is not remembered: the
 * next batch asks again. Everything else (unreachable, a timeout, a 5xx, refused credentials, a 404 that is not the
 * registry's own, as from a wrong base URL) is a retriable SchemaRegistryError, so that a registry outage or a
 * wrong setting never sends records to the DLQ.
 */
import { readFileSync } from 'node:fs';
import { secretText } from '../config/load-config.js';
import type { ResolvedOptions } from '../config/options.js';
import { ConfigError, SchemaRegistryError, errorMessage } from '../errors.js';
import type { RegistryRequests } from './registry-requests.js';

export const SchemaTypes = ['AVRO', 'PROTOBUF', 'JSON'] as const;
export type SchemaType = (typeof SchemaTypes)[number];

/** A schema as the registry holds it, with the schemas it references (each under the name it is imported by). */
export interface RegisteredSchema {
  type: SchemaType;
  text: string;
  references: Array<{ name: string; schema: RegisteredSchema }>;
}

/** The resolved `schemaRegistry` settings (config/options.ts): secret files are read at each request. */
export type SchemaRegistrySettings = NonNullable<ResolvedOptions['schemaRegistry']>;

/** References nested deeper than this are refused (a cycle of references would otherwise never end). */
const maxReferenceDepth = 16;
/** How long to wait before asking again for an id the registry said it does not know. */
const notFoundRetryMs = 500;

interface WireSchema {
  schema?: unknown;
  schemaType?: unknown;
  references?: Array<{ name?: unknown; subject?: unknown; version?: unknown }>;
}

export class SchemaRegistryClient {
  readonly #base: string;
  readonly #settings: SchemaRegistrySettings;
  readonly #userInfo: { username: string; password: string } | undefined;
  readonly #byId = new Map<number, Promise<RegisteredSchema | string>>();

  constructor(settings: SchemaRegistrySettings) {
    this.#settings = settings;
    let url: URL;
    try {
      url = new URL(settings.url);
    } catch {
      throw new ConfigError('schemaRegistry.url', 'invalid setting schemaRegistry.url: expected an http:// or https:// URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ConfigError('schemaRegistry.url', `invalid setting schemaRegistry.url: expected an http:// or https:// URL, not ${url.protocol}`);
    }
    // fetch refuses URLs with credentials: user:password@ in the URL is basic auth.
    if (url.username || url.password) {
      this.#userInfo = { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
      url.username = '';
      url.password = '';
    }
    // Without credentials: also what messages show.
    this.#base = url.toString().replace(/\/+$/, '');
  }

  /**
   * The schema types the registry supports: that it answers, with these credentials (`sluice check`). Asks what
   * any client may ask (listing subjects needs a permission that reading schemas does not). Throws a
   * SchemaRegistryError when it does not answer.
   */
  async schemaTypes(): Promise<string[]> {
    const types = await this.#getJson('/schemas/types');
    if (!Array.isArray(types)) throw new SchemaRegistryError(`the schema registry at ${this.#base} did not answer /schemas/types with a list`);
    return types.map(String);
  }

  /** The base URL, without credentials. */
  get url(): string {
    return this.#base;
  }

  /**
   * The schema registered under `id`, or why records written with it cannot be read (see above). Throws a
   * retriable SchemaRegistryError when the registry does not answer. The requests go through `requests` (the
   * asking batch's turns), when given.
   */
  schemaById(id: number, requests?: RegistryRequests): Promise<RegisteredSchema | string> {
    let pending = this.#byId.get(id);
    if (!pending) {
      pending = this.#lookUp(id, requests);
      this.#byId.set(id, pending);
      // Only a schema is remembered; a reason or a failure is asked again by the next batch.
      pending.then(
        (found) => typeof found === 'string' && this.#byId.delete(id),
        () => this.#byId.delete(id),
      );
    }
    return pending;
  }

  async #lookUp(id: number, requests: RegistryRequests | undefined): Promise<RegisteredSchema | string> {
    const path = `/schemas/ids/${id}`;
    let body = await this.#get(path, requests);
    if (body === undefined) {
      await new Promise((resolve) => setTimeout(resolve, notFoundRetryMs));
      body = await this.#get(path, requests);
    }
    if (body === undefined) return `schema id ${id} is not in the schema registry`;
    return this.#withReferences(body, `schema id ${id}`, 0, requests);
  }

  async #withReferences(body: WireSchema, what: string, depth: number, requests: RegistryRequests | undefined): Promise<RegisteredSchema | string> {
    if (typeof body.schema !== 'string') throw new SchemaRegistryError(`the schema registry at ${this.#base} answered ${what} without a schema`);
    const type = body.schemaType === undefined ? 'AVRO' : String(body.schemaType);
    if (!(SchemaTypes as readonly string[]).includes(type)) return `${what} is a ${type.slice(0, 40)} schema, which sluice does not read`;
    const references: RegisteredSchema['references'] = [];
    for (const ref of body.references ?? []) {
      if (depth >= maxReferenceDepth) return `${what} references schemas more than ${maxReferenceDepth} deep`;
      const name = String(ref.name);
      const path = `/subjects/${encodeURIComponent(String(ref.subject))}/versions/${encodeURIComponent(String(ref.version))}`;
      const referenced = await this.#get(path, requests);
      if (referenced === undefined) {
        return `${what} references ${name} (subject ${String(ref.subject)} version ${String(ref.version)}), which the schema registry does not have`;
      }
      const schema = await this.#withReferences(referenced, `reference ${name}`, depth + 1, requests);
      if (typeof schema === 'string') return schema;
      references.push({ name, schema });
    }
    return { type: type as SchemaType, text: body.schema, references };
  }

  /** GETs a registry path: its JSON body, or undefined for the registry's own "not found" (error code 404xx). */
  async #get(path: string, requests: RegistryRequests | undefined): Promise<WireSchema | undefined> {
    const body = await (requests ? requests.send(`the schema registry's ${path}`, () => this.#getJson(path)) : this.#getJson(path));
    return body as WireSchema | undefined;
  }

  async #getJson(path: string): Promise<unknown> {
    const url = `${this.#base}${path}`;
    const headers = { Accept: 'application/vnd.schemaregistry.v1+json, application/json', ...this.#authorization() };
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, { headers, signal: AbortSignal.timeout(this.#settings.requestTimeoutMs) });
      text = await response.text();
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause ?? error;
      const timedOut = (error as { name?: unknown }).name === 'TimeoutError';
      throw new SchemaRegistryError(
        timedOut
          ? `the schema registry at ${this.#base} did not answer ${path} within schemaRegistry.requestTimeoutMs=${this.#settings.requestTimeoutMs}`
          : `the schema registry at ${this.#base} cannot be reached: ${errorMessage(cause)}`,
        { cause: error },
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const code = (body as { error_code?: unknown } | undefined)?.error_code;
    if (response.status === 404 && typeof code === 'number' && code >= 40400 && code < 40500) return undefined;
    if (response.ok && body && typeof body === 'object') return body;
    const said = typeof (body as { message?: unknown } | undefined)?.message === 'string' ? (body as { message: string }).message : text.slice(0, 200);
    const status = response.status;
    const message = `the schema registry at ${this.#base} answered ${path} with HTTP ${status}: ${said}`;
    if (status === 401 || status === 403) {
      throw new SchemaRegistryError(message, { status, operatorFix: 'check schemaRegistry.username and password (or token) and what they may read' });
    }
    if (status === 404 || (response.ok && !body)) {
      throw new SchemaRegistryError(message, {
        status,
        operatorFix: 'check schemaRegistry.url: the base of the Confluent-compatible API (for Apicurio Registry, ending in /apis/ccompat/v7)',
      });
    }
    throw new SchemaRegistryError(message, { status });
  }

  #authorization(): Record<string, string> {
    const s = this.#settings;
    const token = s.tokenFile !== undefined ? readSecret('schemaRegistry.tokenFile', s.tokenFile) : s.token;
    if (token !== undefined) return { Authorization: `Bearer ${token}` };
    const username = s.username ?? this.#userInfo?.username;
    if (username === undefined) return {};
    const password = s.passwordFile !== undefined ? readSecret('schemaRegistry.passwordFile', s.passwordFile) : (s.password ?? this.#userInfo?.password ?? '');
    return { Authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` };
  }
}

function readSecret(setting: string, path: string): string {
  try {
    return secretText(readFileSync(path));
  } catch (error) {
    throw new SchemaRegistryError(`cannot read ${setting}=${path}: ${errorMessage(error)}`, {
      cause: error,
      operatorFix: `make ${path} readable (a mounted Secret)`,
    });
  }
}
