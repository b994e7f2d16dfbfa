import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { defaults, type KafkaTlsOptions, type ResolvedOptions, type SluiceOptions } from './options.js';
import { isRegistryFormat, tombstoneKeySources, type ColumnSource } from './route-options.js';
import { optionsSchema } from './schema.js';

/** Where a Debezium route's key columns may come from: what a delete event carries. */
const debeziumKeySources: readonly ColumnSource[] = ['field', ...tombstoneKeySources];

/** Where a setting's value came from, by dotted path (`batching.lingerMs` → `SLUICE_LINGER_MS`). */
export type SettingSources = Map<string, string>;

/**
 * Names of settings that may hold a secret (a URL with its password, SASL, TLS keys, tokens): never printed, at any
 * path, nor anything below them. `key` alone (a route's key columns) is not one; `privateKey`, `apiKey` are.
 */
function isSecretName(name: string): boolean {
  return /url|uri|pass(word|wd|phrase)?|secret|token|sasl|credential|ssl|tls|cert/i.test(name) || /[a-z0-9]Key$|_key$/.test(name);
}

/**
 * A password inside a URL (`scheme://user:password@host`, up to the last @ of the URL, since a password may hold
 * `/` or `@`), and libpq's `password=…`, wherever they turn up in a value.
 */
const urlPassword = /(\/\/[^:/@\s"]*):[^\s"]*@/g;
const keywordPassword = /(password\s*=\s*)('[^']*'|[^\s"]+)/gi;

/** Whether a setting path may hold a secret: a segment named like one, except names of a route's columns. */
function isSecretPath(path: string): boolean {
  const segments = path.split('.');
  const columns = segments.indexOf('columns');
  return segments.some((segment, i) => (columns < 0 || i <= columns) && isSecretName(segment));
}

function describeValue(path: string, value: unknown): string {
  if (value === undefined) return '(not set)';
  if (isSecretPath(path)) return '(value hidden)';
  const underColumns = path.split('.').includes('columns');
  const text =
    JSON.stringify(value, function (this: unknown, name, v: unknown) {
      // A route's column names (url, api_key) are names, not secrets.
      if (name === 'columns' && typeof v === 'object' && v !== null) columnMaps.add(v);
      return name !== '' && !underColumns && !isColumnMap(this) && isSecretName(name) ? '(hidden)' : v;
    }) ?? String(value);
  const shown = text.replace(urlPassword, '$1:(hidden)@').replace(keywordPassword, '$1(hidden)');
  return shown.length > 80 ? `${shown.slice(0, 77)}...` : shown;
}

/** Routes' `columns` maps met while describing a value: their keys are column names. */
const columnMaps = new WeakSet<object>();
function isColumnMap(holder: unknown): boolean {
  return typeof holder === 'object' && holder !== null && columnMaps.has(holder);
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let node: unknown = input;
  for (const part of path) {
    if (node == null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[part];
  }
  return node;
}

function settingName(path: PropertyKey[], sources: SettingSources): string {
  const dotted = path.map(String).join('.');
  for (let n = path.length; n > 0; n--) {
    const source = sources.get(path.slice(0, n).map(String).join('.'));
    if (source) return n === path.length ? source : `${source} (${dotted})`;
  }
  return dotted || '(options)';
}

/** Every problem zod found, each naming the setting (as the user wrote it), its value and what is allowed. */
function configError(error: z.ZodError, input: unknown, sources: SettingSources): ConfigError {
  const problems = new Map<string, { setting: string; text: string }>();
  for (const issue of error.issues) {
    const dotted = issue.path.map(String).join('.');
    if (problems.has(dotted)) continue; // one line per setting: the first thing wrong with it
    const setting = settingName(issue.path, sources);
    const allowed = issue.code === 'unrecognized_keys' ? `unknown setting(s) ${issue.keys.join(', ')}` : `expected ${issue.message}`;
    problems.set(dotted, { setting, text: `${setting}=${describeValue(dotted, valueAt(input, issue.path))}: ${allowed}` });
  }
  const all = [...problems.values()];
  const message = all.length === 1 ? `invalid setting ${all[0]!.text}` : `invalid settings: ${all.map((p) => p.text).join('; ')}`;
  return new ConfigError(all[0]!.setting, message);
}

/** Every topic a route reads (routes and landing mode), each once. */
export function routedTopics(options: ResolvedOptions): string[] {
  return [...new Set([...options.routes.map((r) => r.topic), ...(options.landing?.topics ?? [])])];
}

/** The DLQ topic of a source topic, from the `dlq.topic` template. */
export function dlqTopicFor(template: string, topic: string): string {
  return template.replaceAll('{topic}', topic);
}

/** TLS as given (true, or the details), or undefined for plaintext. */
function resolveTls(ssl: boolean | KafkaTlsOptions | undefined): Omit<KafkaTlsOptions, 'enabled'> | undefined {
  if (ssl === undefined || ssl === false) return undefined;
  if (ssl === true) return {};
  const { enabled, ...tls } = ssl;
  return enabled === false ? undefined : tls;
}

/** Validates once, applies defaults, and checks the settings that only make sense together. */
export function resolveOptions(input: SluiceOptions, sources: SettingSources = new Map()): ResolvedOptions {
  const parsed = optionsSchema.safeParse(input);
  if (!parsed.success) throw configError(parsed.error, input, sources);
  const o = parsed.data;
  const resolved: ResolvedOptions = {
    kafka: {
      brokers: o.kafka.brokers,
      clientId: o.kafka.clientId ?? defaults.clientId,
      groupId: o.kafka.groupId ?? defaults.groupId,
      startFrom: o.kafka.startFrom ?? defaults.startFrom,
      sessionTimeoutMs: o.kafka.sessionTimeoutMs ?? defaults.sessionTimeoutMs,
      heartbeatIntervalMs: o.kafka.heartbeatIntervalMs ?? defaults.heartbeatIntervalMs,
      metadataMaxAgeMs: o.kafka.metadataMaxAgeMs ?? defaults.metadataMaxAgeMs,
      retryBackoffMaxMs: o.kafka.retryBackoffMaxMs ?? defaults.retryBackoffMaxMs,
      assignor: o.kafka.assignor ?? defaults.assignor,
      tls: resolveTls(o.kafka.ssl),
      // The caller's own object: an oauthbearer provider stays the function it gave (the schema's copy wraps it).
      sasl: input.kafka.sasl,
    },
    database: {
      url: o.database.url,
      poolSize: o.database.poolSize ?? defaults.poolSize,
      statementTimeoutMs: o.database.statementTimeoutMs ?? defaults.statementTimeoutMs,
      idleInTransactionTimeoutMs: o.database.idleInTransactionTimeoutMs ?? defaults.idleInTransactionTimeoutMs,
    },
    batching: {
      lingerMs: o.batching?.lingerMs ?? defaults.lingerMs,
      maxBatchRecords: o.batching?.maxBatchRecords ?? defaults.maxBatchRecords,
      maxBatchBytes: o.batching?.maxBatchBytes ?? defaults.maxBatchBytes,
      maxBufferedBytes: o.batching?.maxBufferedBytes ?? defaults.maxBufferedBytes,
    },
    delivery: o.delivery ?? defaults.delivery,
    offsetsTable: o.offsetsTable ?? defaults.offsetsTable,
    validation: {
      maxRecordBytes: o.validation?.maxRecordBytes ?? defaults.maxRecordBytes,
      maxJsonDepth: o.validation?.maxJsonDepth ?? defaults.maxJsonDepth,
    },
    dlq: { topic: o.dlq?.topic ?? defaults.dlqTopic, createTopics: o.dlq?.createTopics ?? true, maxAttempts: o.dlq?.maxAttempts ?? defaults.dlqMaxAttempts },
    readiness: { maxRetryingMs: o.readiness?.maxRetryingMs ?? defaults.maxRetryingMs },
    breaker: {
      maxDlqRatio: o.breaker?.maxDlqRatio ?? defaults.maxDlqRatio,
      windowMs: o.breaker?.windowMs ?? defaults.breakerWindowMs,
      minRecords: o.breaker?.minRecords ?? defaults.breakerMinRecords,
    },
    http: { enabled: o.http?.enabled ?? true, port: o.http?.port ?? defaults.httpPort, host: o.http?.host ?? defaults.httpHost, status: o.http?.status ?? 'full' },
    // The schema checked `transform` is a function; keep the caller's own reference and types.
    routes: (o.routes ?? []).map((route, i) => {
      const mode = route.mode ?? 'upsert';
      const key = route.key ?? [];
      const keyFromKafka =
        mode === 'upsert' && !route.version && !route.transform && key.length > 0 &&
        key.every((k) => tombstoneKeySources.includes(route.columns?.[k]?.from ?? 'field'));
      return {
        ...route,
        mode,
        key,
        transform: input.routes?.[i]?.transform,
        // Deleting is the default where a tombstone can name its row; elsewhere a tombstone has nothing to delete.
        tombstones: route.tombstones ?? o.tombstones ?? (keyFromKafka ? 'delete' : 'ignore'),
        format: route.format ?? 'json',
      };
    }),
    schemaRegistry: o.schemaRegistry
      ? { ...o.schemaRegistry, requestTimeoutMs: o.schemaRegistry.requestTimeoutMs ?? defaults.schemaRegistryRequestTimeoutMs }
      : undefined,
    landing: o.landing ? { topics: o.landing.topics, table: o.landing.table ?? defaults.landingTable } : undefined,
    tombstones: o.tombstones,
    shutdownGraceMs: o.shutdownGraceMs ?? defaults.shutdownGraceMs,
    statsIntervalMs: o.statsIntervalMs ?? defaults.statsIntervalMs,
    logLevel: o.logLevel ?? defaults.logLevel,
  };
  checkTogether(resolved, sources);
  return resolved;
}

function checkTogether(o: ResolvedOptions, sources: SettingSources): void {
  const name = (path: string) => settingName(path.split('.'), sources);
  if (o.routes.length === 0 && !o.landing) {
    throw new ConfigError(
      'routes',
      `no routes: declare routes in the config file named by SLUICE_CONFIG or in ${name('routes')}, or list topics for landing mode in ${name('landing.topics')}`,
    );
  }
  if (o.batching.maxBatchBytes > o.batching.maxBufferedBytes) {
    throw new ConfigError(
      'batching.maxBatchBytes',
      `invalid setting ${name('batching.maxBatchBytes')}=${o.batching.maxBatchBytes}: expected at most ${name('batching.maxBufferedBytes')} (${o.batching.maxBufferedBytes})`,
    );
  }
  if (o.kafka.heartbeatIntervalMs * 3 > o.kafka.sessionTimeoutMs) {
    throw new ConfigError(
      'kafka.heartbeatIntervalMs',
      `invalid setting ${name('kafka.heartbeatIntervalMs')}=${o.kafka.heartbeatIntervalMs}: expected at most a third of ${name('kafka.sessionTimeoutMs')} (${o.kafka.sessionTimeoutMs})`,
    );
  }
  const topics = [...o.routes.map((r) => r.topic), ...(o.landing?.topics ?? [])];
  for (const topic of topics) {
    if (dlqTopicFor(o.dlq.topic, topic) === topic) {
      throw new ConfigError(
        'dlq.topic',
        `invalid setting ${name('dlq.topic')}=${o.dlq.topic}: the DLQ of topic ${topic} would be the topic itself; include {topic} and a suffix, such as {topic}.dlq`,
      );
    }
  }
  o.routes.forEach((route, i) => {
    const where = `${name(`routes.${i}`)} (topic ${route.topic} → table ${route.table})`;
    // One decoding per record: every route of the topic reads it in the same format and envelope.
    for (const [j, other] of o.routes.entries()) {
      if (other.topic !== route.topic) continue;
      if (other.format !== route.format || other.envelope !== route.envelope || other.keyFormat !== route.keyFormat) {
        const how = (r: typeof route) => `format=${r.format}${r.envelope ? ` envelope=${r.envelope}` : ''}${r.keyFormat ? ` keyFormat=${r.keyFormat}` : ''}`;
        throw new ConfigError(
          `routes.${i}.format`,
          `invalid route ${where}: ${how(route)}, but ${name(`routes.${j}`)} reads topic ${route.topic} as ${how(other)}; every route of a topic reads its values one way`,
        );
      }
    }
    for (const setting of ['envelope', 'keyFormat'] as const) {
      if (route.transform && route[setting]) {
        throw new ConfigError(`routes.${i}.${setting}`, `invalid route ${where}: ${setting}=${route[setting]} applies to mapped columns; a transform reads the raw record`);
      }
    }
    if (route.envelope === 'debezium') {
      // A delete names its row by the route's key, read from the deleted row or the Kafka key.
      const refuse = (setting: string, why: string) => {
        throw new ConfigError(`routes.${i}.${setting}`, `invalid route ${where}: envelope=debezium ${why}`);
      };
      if (route.mode === 'append') refuse('mode', 'mirrors a table, and deletes need a key: use mode upsert');
      if (route.version !== undefined) refuse('version', 'cannot be combined with version (a delete carries no version to compare)');
      for (const k of route.key) {
        const from = route.columns?.[k]?.from;
        if (from !== undefined && !debeziumKeySources.includes(from)) {
          refuse('key', `needs key column ${k} to come from the row (from: field), the Kafka key (key, keyField, keyHash), topic or partition, not ${from}`);
        }
      }
    }
    const keyField = Object.entries(route.columns ?? {}).find(([, c]) => c.from === 'keyField');
    if (keyField && !route.keyFormat) {
      throw new ConfigError(`routes.${i}.keyFormat`, `invalid route ${where}: column ${keyField[0]} reads a field of the Kafka key (from: keyField), which needs keyFormat (json, avro, protobuf or json-schema)`);
    }
    for (const [setting, format] of [['format', route.format], ['keyFormat', route.keyFormat]] as const) {
      if (format && isRegistryFormat(format) && !o.schemaRegistry) {
        throw new ConfigError(
          `routes.${i}.${setting}`,
          `invalid route ${where}: ${setting}=${format} reads its schemas from a schema registry; set schemaRegistry.url (SLUICE_SCHEMA_REGISTRY_URL)`,
        );
      }
    }
  });
  o.routes.forEach((route, i) => {
    const where = `${name(`routes.${i}`)} (topic ${route.topic} → table ${route.table})`;
    if (!route.transform && (!route.columns || Object.keys(route.columns).length === 0)) {
      throw new ConfigError(`routes.${i}.columns`, `invalid route ${where}: expected columns, or a transform (library only)`);
    }
    if (route.transform && route.format !== 'json') {
      throw new ConfigError(
        `routes.${i}.format`,
        `invalid route ${where}: format=${route.format} applies to mapped columns; a transform reads the raw record`,
      );
    }
    const columns = route.columns ?? {};
    if (route.mode === 'append') {
      for (const [setting, set] of [['key', route.key.length > 0], ['version', route.version !== undefined], ['tombstones', route.tombstones === 'delete']] as const) {
        if (set) throw new ConfigError(`routes.${i}.${setting}`, `invalid route ${where}: ${setting} applies to upsert routes; an append route inserts every record as a new row`);
      }
      return;
    }
    if (route.key.length === 0) {
      throw new ConfigError(`routes.${i}.key`, `invalid route ${where}: expected key, the columns of the table's primary key or unique index (or mode: append)`);
    }
    if (route.version !== undefined) {
      if (route.transform || !columns[route.version]) {
        throw new ConfigError(`routes.${i}.version`, `invalid route ${where}: version ${route.version} must be one of the route's mapped columns`);
      }
      if (route.key.includes(route.version)) {
        throw new ConfigError(`routes.${i}.version`, `invalid route ${where}: version ${route.version} cannot also be a key column`);
      }
      if (route.tombstones === 'delete') {
        throw new ConfigError(`routes.${i}.tombstones`, `invalid route ${where}: tombstones=delete cannot be combined with version (a tombstone has no version to compare); use tombstones: ignore`);
      }
    }
    for (const key of route.key) {
      if (!route.transform && !columns[key]) {
        throw new ConfigError(`routes.${i}.key`, `invalid route ${where}: key column ${key} is not among its columns`);
      }
    }
    const keyFromKafka = !route.transform && route.key.every((k) => tombstoneKeySources.includes(columns[k]!.from));
    if (route.tombstones === 'delete' && !keyFromKafka) {
      throw new ConfigError(
        `routes.${i}.tombstones`,
        `invalid route ${where}: tombstones=delete needs every key column to come from what a tombstone carries (from: key, keyField, keyHash, topic or partition); use tombstones: ignore`,
      );
    }
  });
}
