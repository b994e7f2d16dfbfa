/**
 * TLS and SASL to the brokers, as every kafkajs client of sluice's gets them (kafka-client.ts), and the checks and
 * warnings about them.
 *
 * Files (the CA, the client certificate and key, the key's passphrase, the SASL password) are read again for every
 * new connection: kafkajs hands the same `ssl` and `sasl` objects to each connection, and these read their files
 * through getters, so a rotated Secret is used without a restart. A file that cannot be read at that moment (a
 * Secret being swapped) leaves the last good content in use.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type ConnectionOptions } from 'node:tls';
import type { Mechanism, SASLOptions } from 'kafkajs';
import { secretText } from '../config/load-config.js';
import type { ResolvedOptions } from '../config/options.js';
import { ConfigError, errorMessage } from '../errors.js';
import { oauthBearerMechanism } from './oauth-bearer.js';

/** A file read at each use, falling back on its last good content. */
function liveFile(setting: string, path: string): () => Buffer {
  let last: Buffer | undefined;
  return () => {
    try {
      last = readFileSync(path);
    } catch (error) {
      if (last === undefined) throw new ConfigError(setting, `cannot read ${setting}=${path}: ${errorMessage(error)}`);
    }
    return last!;
  };
}


/** TLS options for Node's tls.connect, whose files are read when a connection is made. */
export function tlsOptions(options: ResolvedOptions): ConnectionOptions | undefined {
  const tls = options.kafka.tls;
  if (!tls) return undefined;
  const ssl: ConnectionOptions = {};
  const live = (name: 'ca' | 'cert' | 'key' | 'passphrase', setting: string, path: string | undefined, read: (b: Buffer) => Buffer | string = (b) => b) => {
    if (path === undefined) return;
    const file = liveFile(setting, path);
    Object.defineProperty(ssl, name, { enumerable: true, get: () => read(file()) });
  };
  live('ca', 'KAFKA_SSL_CA_FILE', tls.caFile);
  live('cert', 'KAFKA_SSL_CERT_FILE', tls.certFile);
  live('key', 'KAFKA_SSL_KEY_FILE', tls.keyFile);
  live('passphrase', 'KAFKA_SSL_KEY_PASSWORD_FILE', tls.keyPasswordFile, secretText);
  if (tls.keyPassword !== undefined) ssl.passphrase = tls.keyPassword;
  if (tls.insecureSkipVerify) ssl.rejectUnauthorized = false;
  return ssl;
}

/** SASL options for kafkajs; a password file is read at each authentication. */
export function saslOptions(options: ResolvedOptions): SASLOptions | Mechanism | undefined {
  const sasl = options.kafka.sasl;
  if (!sasl) return undefined;
  if (sasl.mechanism === 'oauthbearer') return oauthBearerMechanism(sasl.oauthBearerProvider);
  const { mechanism, username, password, passwordFile } = sasl;
  const file = passwordFile === undefined ? undefined : liveFile('KAFKA_SASL_PASSWORD_FILE', passwordFile);
  const credentials = { mechanism, username } as { mechanism: typeof mechanism; username: string; password: string };
  Object.defineProperty(credentials, 'password', { enumerable: true, get: () => (file ? secretText(file()) : password) });
  return credentials as SASLOptions;
}

/**
 * Reads and parses every TLS and SASL file now: a missing file, a key that does not match its certificate, or a
 * wrong passphrase is a configuration error naming the setting, before anything connects (and not, later, a broker
 * that seems unreachable).
 */
export function checkKafkaSecurity(options: ResolvedOptions): void {
  const ssl = tlsOptions(options);
  if (ssl) {
    // Node ignores a CA file without a certificate in it: then nothing would verify against it.
    if (ssl.ca !== undefined) {
      const blocks = String(ssl.ca).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
      try {
        if (blocks.length === 0) throw new Error('no PEM certificate in it');
        for (const block of blocks) new X509Certificate(block);
      } catch (error) {
        throw new ConfigError('KAFKA_SSL_CA_FILE', `KAFKA_SSL_CA_FILE=${options.kafka.tls?.caFile} is not a PEM CA certificate: ${errorMessage(error)}`);
      }
    }
    try {
      createSecureContext(ssl);
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      const setting = options.kafka.tls?.keyFile !== undefined ? 'KAFKA_SSL_KEY_FILE' : 'KAFKA_SSL_CA_FILE';
      throw new ConfigError(
        setting,
        `the Kafka TLS files cannot be used (KAFKA_SSL_CA_FILE, KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE, KAFKA_SSL_KEY_PASSWORD): ${errorMessage(error)}`,
      );
    }
  }
  const sasl = saslOptions(options);
  if (sasl && 'password' in sasl && !sasl.password) {
    throw new ConfigError('KAFKA_SASL_PASSWORD_FILE', `the SASL password file ${options.kafka.sasl && 'passwordFile' in options.kafka.sasl ? options.kafka.sasl.passwordFile : ''} is empty`);
  }
}

/** What an operator must hear at every start about how sluice reaches Kafka; empty when all is well. */
export function kafkaSecurityWarnings(options: ResolvedOptions): string[] {
  const warnings: string[] = [];
  if (options.kafka.tls?.insecureSkipVerify) {
    warnings.push(
      "TLS verification of the Kafka brokers' certificates is OFF (kafka.ssl.insecureSkipVerify, KAFKA_SSL_INSECURE_SKIP_VERIFY): " +
        'anyone between sluice and the brokers can read and change every record. For a throwaway test cluster only',
    );
  }
  if (!options.kafka.tls && options.kafka.sasl?.mechanism === 'plain') {
    warnings.push('SASL PLAIN without TLS sends the Kafka password in the clear: set KAFKA_SSL=true (kafka.ssl)');
  }
  return warnings;
}
