import { describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config/load-config.js';
import { resolveOptions } from '../../src/config/resolve-options.js';
import { ConfigError, defaults } from '../../src/index.js';

const env = (extra: Record<string, string>) => ({ DATABASE_URL: 'postgres://127.0.0.1/test', SLUICE_TOPICS: 'a,b', ...extra });
const resolve = (e: Record<string, string>) => {
  const { options, sources } = readConfig(e);
  return resolveOptions(options, sources);
};
const failure = (e: Record<string, string>): ConfigError => {
  try {
    resolve(e);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
};

describe('configuration', () => {
  it('works with defaults: landing mode from SLUICE_TOPICS alone, local broker', () => {
    const o = resolve(env({}));
    expect(o.kafka.brokers).toEqual(['127.0.0.1:9092']);
    expect(o.landing).toEqual({ topics: ['a', 'b'], table: defaults.landingTable });
    expect(o.batching.lingerMs).toBe(200);
  });

  it('a choice setting lists the values it takes; several bad settings are all named', () => {
    expect(failure(env({ SLUICE_LOG_LEVEL: 'verbose' })).message).toBe(
      'invalid setting SLUICE_LOG_LEVEL="verbose": expected one of fatal, error, warn, info, debug, trace, silent',
    );
    const e = failure(env({ SLUICE_LINGER_MS: '20', SLUICE_DELIVERY: 'twice', SLUICE_PG_POOL_SIZE: 'many' }));
    expect(e.message).toBe(
      'invalid settings: SLUICE_PG_POOL_SIZE="many": expected an integer from 1 to 64; SLUICE_LINGER_MS="20": expected an integer from 50 to 500; ' +
        'SLUICE_DELIVERY="twice": expected one of exactly-once, at-least-once',
    );
  });

  it('names the variable, the value and the allowed range', () => {
    const e = failure(env({ SLUICE_LINGER_MS: '20' }));
    expect(e.setting).toBe('SLUICE_LINGER_MS');
    expect(e.message).toBe('invalid setting SLUICE_LINGER_MS="20": expected an integer from 50 to 500');
    expect(e.retriable).toBe(false);
  });

  it('never prints the database URL, which may hold a password', () => {
    const e = failure(env({ DATABASE_URL: 'mysql://root:secret@db/x' }));
    expect(e.message).toContain('DATABASE_URL=(value hidden)');
    expect(e.message).not.toContain('secret');
  });

  it('never prints a secret at any path: a setting named like one, or a password inside a URL', () => {
    const messages = [
      { kafka: { brokers: ['b:9092'] }, database: { url: 'postgres://sluice:hunter2@127.0.0.1:5432/test', poolSzie: 3 } },
      { database: 'postgres://sluice:hunter2@127.0.0.1:5432/test' },
      { database: { url: 12345, password: 'hunter2' } },
      { kafka: { brokers: ['b:9092'], sasl: { mechanism: 'plain', username: 'u', password: 'hunter2' } } },
      { kafka: { brokers: ['b:9092'], ssl: { privateKey: 'hunter2' } }, database: { url: 'postgres://x' } },
      { database: { url: 'postgres://x' }, landing: { topics: ['t'], table: 'postgres://u:hunter2@h/x' } },
    ].map((options) => {
      try {
        resolveOptions(options as never);
      } catch (error) {
        if (error instanceof ConfigError) return error.message;
        throw error;
      }
      throw new Error('expected a ConfigError');
    });
    messages.push(
      ...[{ database: 'postgres://u:hun/ter2@h/db' }, { database: { url: 'postgres://x', conn: 'postgres://u:hunter2/x@h/db' } }, { database: 'host=h password=hunter2' }].map(
        (options) => {
          try {
            resolveOptions({ kafka: { brokers: ['b:9092'] }, ...options } as never);
          } catch (error) {
            if (error instanceof ConfigError) return error.message;
            throw error;
          }
          throw new Error('expected a ConfigError');
        },
      ),
    );
    for (const message of messages) expect(message).not.toMatch(/hunter2|hun\/ter2/);
    expect(messages[0]).toContain('unknown setting(s) poolSzie');
  });

  it('rejects identifiers that are not plain names before they get near SQL', () => {
    const routes = JSON.stringify([{ topic: 't', table: 'a"; drop table b; --', key: ['id'], columns: { id: 'id' } }]);
    expect(failure(env({ SLUICE_ROUTES: routes })).setting).toBe('SLUICE_ROUTES (routes.0.table)');
    const badType = JSON.stringify([{ topic: 't', table: 't', key: ['id'], columns: { id: { type: 'int); drop' } } }]);
    expect(failure(env({ SLUICE_ROUTES: badType })).message).toContain('a PostgreSQL type name');
  });

  it('refuses tombstone deletes for a key that a tombstone cannot carry', () => {
    const routes = JSON.stringify([{ topic: 't', table: 't', key: ['id'], columns: { id: 'id' }, tombstones: 'delete' }]);
    expect(failure(env({ SLUICE_ROUTES: routes })).message).toContain('tombstones=delete needs every key column to come from what a tombstone carries');
  });

  it('checks settings that only make sense together', () => {
    expect(failure(env({ SLUICE_MAX_BATCH_BYTES: String(64 * 1024 * 1024), SLUICE_MAX_BUFFERED_BYTES: String(8 * 1024 * 1024) })).message).toContain(
      'expected at most SLUICE_MAX_BUFFERED_BYTES',
    );
    expect(failure({ DATABASE_URL: 'postgres://h/db' }).message).toContain('no routes');
  });
});

describe('library options', () => {
  it('keeps a route transform, and expands column shorthands', () => {
    const transform = () => ({ id: 1 });
    const o = resolveOptions({
      kafka: { brokers: ['127.0.0.1:9092'] },
      database: { url: 'postgres://127.0.0.1/test' },
      routes: [
        { topic: 't', table: 't', key: ['id'], transform },
        { topic: 'u', table: 'u', key: ['id'], columns: { id: { from: 'key' }, name: 'fullName' } },
      ],
    });
    expect(o.routes[0]!.transform).toBe(transform);
    expect(o.routes[1]!.columns).toEqual({ id: { from: 'key' }, name: { from: 'field', field: 'fullName' } });
  });

  it('names the option path when a library caller passes a bad value', () => {
    expect(() =>
      resolveOptions({ kafka: { brokers: ['127.0.0.1:9092'] }, database: { url: 'postgres://x' }, landing: { topics: ['a'] }, batching: { lingerMs: 1_000 } }),
    ).toThrow('invalid setting batching.lingerMs=1000: expected an integer from 50 to 500');
  });

  it('reads the failure settings from the environment, with defaults that work', () => {
    const o = resolve(env({}));
    expect(o.dlq).toEqual({ topic: '{topic}.dlq', createTopics: true, maxAttempts: 10 });
    expect(o.readiness).toEqual({ maxRetryingMs: 60_000 });
    expect(o.breaker).toEqual({ maxDlqRatio: 0.05, windowMs: 60_000, minRecords: 500 });
    expect(o.http).toEqual({ enabled: true, port: 8080, host: '0.0.0.0', status: 'full' });
    const set = resolve(
      env({
        SLUICE_DLQ_TOPIC: 'dead.{topic}',
        SLUICE_DLQ_CREATE_TOPICS: 'false',
        SLUICE_DLQ_MAX_ATTEMPTS: '3',
        SLUICE_READINESS_MAX_RETRYING_MS: '5000',
        SLUICE_BREAKER_MAX_DLQ_RATIO: '0.2',
        SLUICE_HTTP_ENABLED: 'false',
      }),
    );
    expect(set.dlq).toEqual({ topic: 'dead.{topic}', createTopics: false, maxAttempts: 3 });
    expect(set.readiness).toEqual({ maxRetryingMs: 5_000 });
    expect(set.breaker.maxDlqRatio).toBe(0.2);
    expect(set.http.enabled).toBe(false);
  });

  it('refuses a breaker ratio outside 0–1 and a DLQ topic that would be the source topic', () => {
    expect(failure(env({ SLUICE_BREAKER_MAX_DLQ_RATIO: '5' })).message).toBe(
      'invalid setting SLUICE_BREAKER_MAX_DLQ_RATIO="5": expected a number from 0 to 1, such as 0.05 for 5 %',
    );
    expect(failure(env({ SLUICE_DLQ_TOPIC: '{topic}' })).message).toContain('the DLQ of topic a would be the topic itself');
    expect(failure(env({ SLUICE_HTTP_PORT: '70000' })).message).toContain('SLUICE_HTTP_PORT');
  });

  it('checks append and versioned routes: what applies to which mode, and where the version comes from', () => {
    const routes = (route: Record<string, unknown>) => env({ SLUICE_ROUTES: JSON.stringify([{ topic: 't', table: 'x', columns: { id: 'id', v: 'v' }, ...route }]) });
    expect(resolve(routes({ mode: 'append' })).routes[0]).toMatchObject({ mode: 'append', key: [], tombstones: 'ignore' });
    expect(resolve(routes({ key: ['id'], version: 'v' })).routes[0]).toMatchObject({ mode: 'upsert', version: 'v', tombstones: 'ignore' });
    expect(failure(routes({ mode: 'append', key: ['id'] })).message).toContain('key applies to upsert routes');
    expect(failure(routes({})).message).toContain('expected key');
    expect(failure(routes({ key: ['id'], version: 'nope' })).message).toContain('version nope must be one of the route');
    expect(failure(routes({ key: ['id'], version: 'v', tombstones: 'delete' })).message).toContain('tombstones=delete cannot be combined with version');
  });

  it('delivers exactly once by default, at least once on request, and names a wrong value', () => {
    expect(resolve(env({})).delivery).toBe('exactly-once');
    expect(resolve(env({})).offsetsTable).toBe('sluice_offsets');
    expect(resolve(env({ SLUICE_DELIVERY: 'at-least-once', SLUICE_OFFSETS_TABLE: 'ops.offsets' }))).toMatchObject({ delivery: 'at-least-once', offsetsTable: 'ops.offsets' });
    expect(failure(env({ SLUICE_DELIVERY: 'once' })).message).toContain('SLUICE_DELIVERY="once"');
  });
});

describe('hostile configuration', () => {
  it('a route naming a table, column or key with SQL in it is refused before any SQL runs, naming the setting', () => {
    const route = (over: Record<string, unknown>) =>
      JSON.stringify([{ topic: 'orders', table: 'orders', key: ['id'], columns: { id: { from: 'key' }, name: 'name' }, ...over }]);
    for (const over of [
      { table: 'users"; DROP TABLE t; --' },
      { table: 'public.users; DELETE FROM x' },
      { columns: { id: { from: 'key' }, 'name" text); DROP TABLE t; --': 'name' } },
      { key: ['id) DO NOTHING; --'] },
    ]) {
      const error = failure({ DATABASE_URL: 'postgres://127.0.0.1/test', SLUICE_ROUTES: route(over) });
      expect(error.message, JSON.stringify(over)).toMatch(/^invalid setting SLUICE_ROUTES/);
    }
    expect(() => resolve({ DATABASE_URL: 'postgres://127.0.0.1/test', SLUICE_ROUTES: route({}) })).not.toThrow();
  });
});

describe('Kafka TLS and SASL settings', () => {
  it('from the environment: TLS with files, SASL mechanism in any case, a password file kept as a path', () => {
    const o = resolve(env({ KAFKA_SSL_CA_FILE: '/ca.crt', KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512', KAFKA_SASL_USERNAME: 'alice', KAFKA_SASL_PASSWORD_FILE: '/run/pw' }));
    expect(o.kafka.tls).toEqual({ caFile: '/ca.crt' });
    expect(o.kafka.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'alice', passwordFile: '/run/pw' });
    expect(resolve(env({ KAFKA_SSL: 'true' })).kafka.tls).toEqual({});
    expect(resolve(env({})).kafka.tls).toBeUndefined();
    expect(resolve(env({ KAFKA_SSL: 'false', KAFKA_SSL_CA_FILE: '/ca.crt' })).kafka.tls).toBeUndefined();
  });

  it('refuses a certificate without its key, a password and a password file together, and hides the password', () => {
    expect(failure(env({ KAFKA_SSL_CERT_FILE: '/c.crt' })).message).toContain('ssl.certFile and ssl.keyFile go together');
    const both = failure(env({ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'a', KAFKA_SASL_PASSWORD: 'hunter2', KAFKA_SASL_PASSWORD_FILE: '/pw' }));
    expect(both.message).toContain('a password or a password file (one of them)');
    expect(both.message).not.toContain('hunter2');
    expect(failure(env({ KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SASL_USERNAME: 'a', KAFKA_SASL_PASSWORD: 'x' })).message).toContain('KAFKA_SASL_MECHANISM');
  });
});
