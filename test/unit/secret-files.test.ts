import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-secrets-'));
const secret = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('secrets from files (<NAME>_FILE)', () => {
  it('reads DATABASE_URL from a mounted file, without its trailing newline, and says where it came from', () => {
    const path = secret('url', 'postgres://sluice:s3cret@db:5432/app\n');
    const { options, sources } = readConfig({ DATABASE_URL_FILE: path, SLUICE_TOPICS: 'orders' });
    expect(options.database.url).toBe('postgres://sluice:s3cret@db:5432/app');
    expect(sources.get('database.url')).toBe('DATABASE_URL_FILE');
  });

  it('refuses both the variable and its file, a file it cannot read, and an empty one, naming the variable', () => {
    const path = secret('url2', 'postgres://a@b/c');
    expect(() => readConfig({ DATABASE_URL: 'postgres://x@y/z', DATABASE_URL_FILE: path })).toThrow(/both DATABASE_URL and DATABASE_URL_FILE are set/);
    expect(() => readConfig({ DATABASE_URL_FILE: join(dir, 'missing') })).toThrow(ConfigError);
    expect(() => readConfig({ DATABASE_URL_FILE: join(dir, 'missing') })).toThrow(/cannot read DATABASE_URL_FILE=.*missing/);
    expect(() => readConfig({ DATABASE_URL_FILE: secret('empty', '\n') })).toThrow(/DATABASE_URL_FILE=.* is empty/);
  });

  it('only secret settings take a file', () => {
    const path = secret('topics', 'orders');
    const { options } = readConfig({ SLUICE_TOPICS_FILE: path });
    expect((options as { landing?: unknown }).landing).toBeUndefined();
  });
});

describe('Kafka TLS and SASL files', () => {
  it('are checked when settings load: a file missing, a CA file without a certificate, a key that cannot be used, an empty password', async () => {
    const { checkKafkaSecurity } = await import('../../src/consumer/kafka-security.js');
    const { resolveOptions } = await import('../../src/config/resolve-options.js');
    const settings = (extra: Record<string, string>) => {
      const { options, sources } = readConfig({ DATABASE_URL: 'postgres://a@b/c', SLUICE_TOPICS: 't', ...extra });
      return resolveOptions(options, sources);
    };
    expect(() => checkKafkaSecurity(settings({ KAFKA_SSL_CA_FILE: join(dir, 'no-such-ca.pem') }))).toThrow(/cannot read KAFKA_SSL_CA_FILE=.*no-such-ca\.pem/);
    const garbage = secret('garbage.pem', 'not a certificate');
    expect(() => checkKafkaSecurity(settings({ KAFKA_SSL_CA_FILE: garbage }))).toThrow(/KAFKA_SSL_CA_FILE=.* is not a PEM CA certificate/);
    expect(() => checkKafkaSecurity(settings({ KAFKA_SSL_CERT_FILE: garbage, KAFKA_SSL_KEY_FILE: garbage }))).toThrow(/the Kafka TLS files cannot be used/);
    expect(() => checkKafkaSecurity(settings({ KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'a', KAFKA_SASL_PASSWORD_FILE: secret('pw-empty', '\n') }))).toThrow(/is empty/);
    expect(() => checkKafkaSecurity(settings({ KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'a', KAFKA_SASL_PASSWORD_FILE: secret('pw', 'x\n') }))).not.toThrow();
    // The key's passphrase and its file are one setting: both is a configuration error that names them.
    expect(() => settings({ KAFKA_SSL_KEY_PASSWORD: 'p', KAFKA_SSL_KEY_PASSWORD_FILE: secret('key-pw', 'p\n') })).toThrow(ConfigError);
    expect(() => settings({ KAFKA_SSL_KEY_PASSWORD: 'p', KAFKA_SSL_KEY_PASSWORD_FILE: secret('key-pw', 'p\n') })).toThrow(
      /KAFKA_SSL_KEY_PASSWORD.*a key password or a key password file, not both/,
    );
  });

  it('a password file is read at every authentication, and its last good content stays if it goes missing', async () => {
    const { saslOptions } = await import('../../src/consumer/kafka-security.js');
    const { resolveOptions } = await import('../../src/config/resolve-options.js');
    const path = secret('rotating', 'first\n');
    const { options, sources } = readConfig({ DATABASE_URL: 'postgres://a@b/c', SLUICE_TOPICS: 't', KAFKA_SASL_MECHANISM: 'PLAIN', KAFKA_SASL_USERNAME: 'a', KAFKA_SASL_PASSWORD_FILE: path });
    const sasl = saslOptions(resolveOptions(options, sources)) as { password: string };
    expect(sasl.password).toBe('first');
    writeFileSync(path, 'second\n');
    expect(sasl.password).toBe('second');
    const { rmSync } = await import('node:fs');
    rmSync(path);
    expect(sasl.password).toBe('second');
  });
});
