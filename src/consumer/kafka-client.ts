/**
 * The one place that builds sluice's kafkajs clients (the consumer's, the DLQ producer's, the admin, scan and replay
 * clients of the commands), so that every client reaches the brokers the same way: the same TLS and SASL, and the
 * same retry schedule.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import kafkajs, { type Kafka as KafkaClient, type RetryOptions, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import type { ResolvedOptions } from '../config/options.js';
import { ConfigError, errorMessage } from '../errors.js';
import { kafkajsLogCreator } from './kafkajs-log.js';

const { Kafka, logLevel: KafkaLogLevel } = kafkajs;

/**
 * kafkajs' retries (connections, metadata, requests, the consumer's fetch loop): waits grow from 300 ms to
 * kafka.retryBackoffMaxMs, then the operation fails to sluice, which decides what follows. Enough retries that they
 * span at least kafkajs' default window (about 9 s: five from 300 ms), so that a short blip (a broker restarting, a
 * leader moving) does not take the consumer out of its group; but no single wait is longer than the cap, so a
 * client looks at the brokers again within that long once they are back.
 */
export function kafkaRetry(options: ResolvedOptions): RetryOptions {
  const maxRetryTime = options.kafka.retryBackoffMaxMs;
  const initialRetryTime = Math.min(300, maxRetryTime);
  let retries = 0;
  for (let waited = 0; waited < 9_000 && retries < 30; retries++) waited += Math.min(maxRetryTime, initialRetryTime * 2 ** retries);
  return { initialRetryTime, maxRetryTime, retries: Math.max(5, retries) };
}

/** A file's content for a setting, read now (each new connection asks again). */
function fileOf(setting: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError(setting, `cannot read ${setting}=${path}: ${errorMessage(error)}`);
  }
}

/**
 * TLS options for Node's tls.connect, whose files are read when a connection is made (kafkajs copies the options
 * for every connection): a rotated certificate, key or CA is used from the next connection on.
 */
export function tlsOptions(options: ResolvedOptions): ConnectionOptions | undefined {
  const tls = options.kafka.tls;
  if (!tls) return undefined;
  const ssl: ConnectionOptions = {};
  const fromFile = (name: 'ca' | 'cert' | 'key', setting: string, path: string | undefined) => {
    if (path !== undefined) Object.defineProperty(ssl, name, { enumerable: true, get: () => fileOf(setting, path) });
  };
  fromFile('ca', 'kafka.ssl.caFile (KAFKA_SSL_CA_FILE)', tls.caFile);
  fromFile('cert', 'kafka.ssl.certFile (KAFKA_SSL_CERT_FILE)', tls.certFile);
  fromFile('key', 'kafka.ssl.keyFile (KAFKA_SSL_KEY_FILE)', tls.keyFile);
  if (tls.keyPassword !== undefined) ssl.passphrase = tls.keyPassword;
  if (tls.insecureSkipVerify) ssl.rejectUnauthorized = false;
  return ssl;
}

/** SASL options for kafkajs; a password file is read at each authentication (each new connection). */
export function saslOptions(options: ResolvedOptions): SASLOptions | undefined {
  const sasl = options.kafka.sasl;
  if (!sasl) return undefined;
  if (sasl.mechanism === 'oauthbearer') return { mechanism: 'oauthbearer', oauthBearerProvider: sasl.oauthBearerProvider };
  const { mechanism, username, password, passwordFile } = sasl;
  const credentials = { mechanism, username } as { mechanism: typeof mechanism; username: string; password: string };
  Object.defineProperty(credentials, 'password', {
    enumerable: true,
    get: () => (passwordFile !== undefined ? fileOf('kafka.sasl.passwordFile (KAFKA_SASL_PASSWORD_FILE)', passwordFile).toString('utf8').replace(/\r?\n$/, '') : password!),
  });
  return credentials as SASLOptions;
}

/** Verification turned off is said loudly, once per process, whichever client is built first. */
let insecureWarned = false;

/** A kafkajs client named `clientId`, logging into `log` from `level` up ('warn' or 'error'). */
export function createKafkaClient(options: ResolvedOptions, clientId: string, log: Logger, level: 'warn' | 'error'): KafkaClient {
  const ssl = tlsOptions(options);
  const sasl = saslOptions(options);
  // Read once now: a missing or unreadable file is a configuration error that names its setting, at start.
  if (ssl) void [ssl.ca, ssl.cert, ssl.key];
  if (sasl && 'password' in sasl) void sasl.password;
  if (options.kafka.tls?.insecureSkipVerify && !insecureWarned) {
    insecureWarned = true;
    log.warn(
      { setting: 'kafka.ssl.insecureSkipVerify' },
      "TLS verification of the Kafka brokers' certificates is OFF (kafka.ssl.insecureSkipVerify, KAFKA_SSL_INSECURE_SKIP_VERIFY): " +
        'anyone between sluice and the brokers can read and change every record. For a throwaway test cluster only',
    );
  }
  return new Kafka({
    clientId,
    brokers: options.kafka.brokers,
    ...(ssl ? { ssl } : {}),
    ...(sasl ? { sasl } : {}),
    logLevel: level === 'warn' ? KafkaLogLevel.WARN : KafkaLogLevel.ERROR,
    logCreator: kafkajsLogCreator(log),
    retry: kafkaRetry(options),
  });
}
