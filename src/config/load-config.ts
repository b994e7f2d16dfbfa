import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError, errorMessage } from '../errors.js';
import type { SluiceOptions } from './options.js';
import type { SettingSources } from './resolve-options.js';

/** Environment variable → option path. Environment values override the config file's. */
export const environmentSettings = {
  KAFKA_BROKERS: 'kafka.brokers',
  SLUICE_CLIENT_ID: 'kafka.clientId',
  SLUICE_GROUP_ID: 'kafka.groupId',
  SLUICE_START_FROM: 'kafka.startFrom',
  SLUICE_SESSION_TIMEOUT_MS: 'kafka.sessionTimeoutMs',
  SLUICE_HEARTBEAT_INTERVAL_MS: 'kafka.heartbeatIntervalMs',
  SLUICE_METADATA_MAX_AGE_MS: 'kafka.metadataMaxAgeMs',
  SLUICE_KAFKA_RETRY_BACKOFF_MAX_MS: 'kafka.retryBackoffMaxMs',
  SLUICE_ASSIGNOR: 'kafka.assignor',
  KAFKA_SSL: 'kafka.ssl.enabled',
  KAFKA_SSL_CA_FILE: 'kafka.ssl.caFile',
  KAFKA_SSL_CERT_FILE: 'kafka.ssl.certFile',
  KAFKA_SSL_KEY_FILE: 'kafka.ssl.keyFile',
  KAFKA_SSL_KEY_PASSWORD: 'kafka.ssl.keyPassword',
  KAFKA_SSL_KEY_PASSWORD_FILE: 'kafka.ssl.keyPasswordFile',
  KAFKA_SSL_INSECURE_SKIP_VERIFY: 'kafka.ssl.insecureSkipVerify',
  KAFKA_SASL_MECHANISM: 'kafka.sasl.mechanism',
  KAFKA_SASL_USERNAME: 'kafka.sasl.username',
  KAFKA_SASL_PASSWORD: 'kafka.sasl.password',
  // A path, read again for every new connection: a rotated password is used without a restart.
  KAFKA_SASL_PASSWORD_FILE: 'kafka.sasl.passwordFile',
  DATABASE_URL: 'database.url',
  SLUICE_PG_POOL_SIZE: 'database.poolSize',
  SLUICE_STATEMENT_TIMEOUT_MS: 'database.statementTimeoutMs',
  SLUICE_IDLE_IN_TRANSACTION_TIMEOUT_MS: 'database.idleInTransactionTimeoutMs',
  SLUICE_LINGER_MS: 'batching.lingerMs',
  SLUICE_MAX_BATCH_RECORDS: 'batching.maxBatchRecords',
  SLUICE_MAX_BATCH_BYTES: 'batching.maxBatchBytes',
  SLUICE_MAX_BUFFERED_BYTES: 'batching.maxBufferedBytes',
  SLUICE_DELIVERY: 'delivery',
  SLUICE_OFFSETS_TABLE: 'offsetsTable',
  SLUICE_MAX_RECORD_BYTES: 'validation.maxRecordBytes',
  SLUICE_MAX_JSON_DEPTH: 'validation.maxJsonDepth',
  SLUICE_DLQ_TOPIC: 'dlq.topic',
  SLUICE_DLQ_CREATE_TOPICS: 'dlq.createTopics',
  SLUICE_DLQ_MAX_ATTEMPTS: 'dlq.maxAttempts',
  SLUICE_READINESS_MAX_RETRYING_MS: 'readiness.maxRetryingMs',
  SLUICE_BREAKER_MAX_DLQ_RATIO: 'breaker.maxDlqRatio',
  SLUICE_BREAKER_WINDOW_MS: 'breaker.windowMs',
  SLUICE_BREAKER_MIN_RECORDS: 'breaker.minRecords',
  SLUICE_HTTP_ENABLED: 'http.enabled',
  SLUICE_HTTP_PORT: 'http.port',
  SLUICE_HTTP_HOST: 'http.host',
  SLUICE_HTTP_STATUS: 'http.status',
  SLUICE_ROUTES: 'routes',
  SLUICE_SCHEMA_REGISTRY_URL: 'schemaRegistry.url',
  SLUICE_SCHEMA_REGISTRY_USERNAME: 'schemaRegistry.username',
  SLUICE_SCHEMA_REGISTRY_PASSWORD: 'schemaRegistry.password',
  // Paths, read at each request to the registry: a rotated secret is used without a restart.
  SLUICE_SCHEMA_REGISTRY_PASSWORD_FILE: 'schemaRegistry.passwordFile',
  SLUICE_SCHEMA_REGISTRY_TOKEN: 'schemaRegistry.token',
  SLUICE_SCHEMA_REGISTRY_TOKEN_FILE: 'schemaRegistry.tokenFile',
  SLUICE_SCHEMA_REGISTRY_REQUEST_TIMEOUT_MS: 'schemaRegistry.requestTimeoutMs',
  SLUICE_TOPICS: 'landing.topics',
  SLUICE_LANDING_TABLE: 'landing.table',
  SLUICE_TOMBSTONES: 'tombstones',
  SLUICE_SHUTDOWN_GRACE_MS: 'shutdownGraceMs',
  SLUICE_STATS_INTERVAL_MS: 'statsIntervalMs',
  SLUICE_LOG_LEVEL: 'logLevel',
} as const;

/**
 * Settings that hold secrets and are read once: each may come from a file instead, `<NAME>_FILE` (a Kubernetes Secret
 * mounted as a volume), but not from both. (Kafka's secret files are settings of their own, read at every
 * connection: KAFKA_SASL_PASSWORD_FILE, KAFKA_SSL_KEY_PASSWORD_FILE.)
 */
export const secretSettings: ReadonlySet<keyof typeof environmentSettings> = new Set(['DATABASE_URL']);

/** Settings written in any case in the environment (SCRAM-SHA-512), as the options spell them (scram-sha-512). */
const lowerCaseSettings = new Set(['kafka.sasl.mechanism']);

const listSettings = new Set(['kafka.brokers', 'landing.topics']);

/** A secret file's text: without the trailing newline editors and `kubectl create secret --from-file` leave. */
export const secretText = (bytes: Buffer) => bytes.toString('utf8').replace(/\r?\n$/, '');

/** A secret's value from `<NAME>_FILE`. */
function readSecretFile(variable: string, path: string): string {
  try {
    return secretText(readFileSync(path));
  } catch (error) {
    throw new ConfigError(variable, `cannot read ${variable}_FILE=${path}: ${errorMessage(error)}`);
  }
}
const jsonSettings = new Set(['routes']);

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    node = (next && typeof next === 'object' ? next : (node[part] = {})) as Record<string, unknown>;
  }
  node[parts.at(-1)!] = value;
}

function readFileOptions(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError('SLUICE_CONFIG', `cannot read SLUICE_CONFIG=${path}: ${errorMessage(error)}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw new ConfigError('SLUICE_CONFIG', `SLUICE_CONFIG=${path} is not valid YAML or JSON: ${errorMessage(error)}`);
  }
  if (parsed == null) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError('SLUICE_CONFIG', `SLUICE_CONFIG=${path} must hold a mapping of settings at its top level`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * Reads the optional config file (SLUICE_CONFIG) and the environment into options, with the source of each
 * setting so that validation errors name the variable or file key the user wrote. `createSluice` validates them.
 */
export function readConfig(env: NodeJS.ProcessEnv = process.env): { options: SluiceOptions; sources: SettingSources } {
  const sources: SettingSources = new Map();
  const file = env.SLUICE_CONFIG?.trim();
  const options: Record<string, unknown> = file ? readFileOptions(file) : {};
  if (file) {
    for (const key of Object.keys(options)) sources.set(key, `${file}: ${key}`);
  }
  for (const [variable, path] of Object.entries(environmentSettings)) {
    let raw = env[variable];
    const file = secretSettings.has(variable as keyof typeof environmentSettings) ? env[`${variable}_FILE`]?.trim() : undefined;
    if (file) {
      if (raw !== undefined && raw.trim() !== '') {
        throw new ConfigError(variable, `both ${variable} and ${variable}_FILE are set: set one (the file, for a mounted secret)`);
      }
      raw = readSecretFile(variable, file);
      if (raw.trim() === '') throw new ConfigError(variable, `${variable}_FILE=${file} is empty`);
    }
    if (raw === undefined || raw.trim() === '') continue;
    let value: unknown = raw.trim();
    if (lowerCaseSettings.has(path)) {
      value = raw.trim().toLowerCase();
    } else if (listSettings.has(path)) {
      value = raw.split(',').map((s) => s.trim()).filter(Boolean);
    } else if (jsonSettings.has(path)) {
      try {
        value = JSON.parse(raw);
      } catch (error) {
        throw new ConfigError(variable, `invalid setting ${variable}: expected JSON (${errorMessage(error)})`);
      }
    }
    setPath(options, path, value);
    sources.set(path, file ? `${variable}_FILE` : variable);
  }
  // A setting missing from an object that is there (kafka.sasl without its username): name the variable that sets it.
  for (const [variable, path] of Object.entries(environmentSettings)) {
    const parts = path.split('.');
    const parent = parts.slice(0, -1).join('.');
    // Not when the setting's object (or one above it) came from the file: the file's key is the name then.
    const prefixes = parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('.'));
    if (!parent || sources.has(path) || prefixes.some((p) => sources.has(p))) continue;
    if ([...sources.keys()].some((p) => p.startsWith(`${parent}.`))) sources.set(path, variable);
  }
  // Nested objects may be missing entirely; say which variable would fill them.
  options.kafka ??= {};
  options.database ??= {};
  const kafka = options.kafka as Record<string, unknown>;
  kafka.brokers ??= ['127.0.0.1:9092'];
  if (!sources.has('kafka.brokers') && !sources.has('kafka')) sources.set('kafka.brokers', 'KAFKA_BROKERS');
  if (!sources.has('database.url') && !sources.has('database')) sources.set('database.url', 'DATABASE_URL');
  if (!sources.has('landing.topics') && !sources.has('landing')) sources.set('landing.topics', 'SLUICE_TOPICS');
  if (!sources.has('routes')) sources.set('routes', 'SLUICE_ROUTES');
  return { options: options as unknown as SluiceOptions, sources };
}
