import { describe, expect, it } from 'vitest';
import { runCli, spawnSluice } from '../helpers/process.js';
import { KafkaHelper, brokers, database, databaseUrl, uniqueName, waitFor, topicAndTable } from '../helpers/stack.js';

/**
 * A run with secrets in its settings, and everything it emitted grepped for them: logs, stderr, /status, /metrics, the
 * status page, DLQ records, `check` (text and JSON) and its errors. (The local server trusts every connection, so a
 * password in the URL is accepted and ignored.)
 */
describe('secrets never leave sluice', () => {
  it('a database password and a SASL password appear in nothing a run emits', async () => {
    const dbPassword = 'Db-S3cret-7f3a9';
    const saslPassword = 'Sasl-S3cret-2b8c1';
    const url = new URL(databaseUrl());
    url.password = dbPassword;
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 1, topic: 'orders', table: 'orders', columns: 'id text PRIMARY KEY, qty int NOT NULL' });
    await kafka.produce(topic, [{ key: 'a', value: '{"qty": 1}' }, { key: 'b', value: '{}' }, { key: 'c', value: 'not json' }]);
    const groupId = uniqueName('group');
    const routes = [{ topic, table, key: ['id'], columns: { id: { from: 'key' }, qty: 'qty' } }];
    const env = { KAFKA_BROKERS: brokers().join(','), DATABASE_URL: url.toString(), SLUICE_ROUTES: JSON.stringify(routes), SLUICE_GROUP_ID: groupId, SLUICE_LOG_LEVEL: 'debug' };
    const emitted: string[] = [];

    const proc = spawnSluice(env);
    const port = await waitFor('the HTTP port', () => proc.logs.find((l) => l.msg === 'HTTP endpoints listening')?.port as number | undefined);
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic));
    for (const path of ['/status', '/metrics', '/', '/readyz', '/healthz']) emitted.push(await (await fetch(`http://127.0.0.1:${port}${path}`)).text());
    proc.child.kill('SIGTERM');
    await proc.exited;
    emitted.push(JSON.stringify(proc.logs), proc.stderr());
    for (const record of await kafka.readAll(`${topic}.dlq`)) emitted.push(JSON.stringify(record.headers), record.value?.toString() ?? '');
    expect((await kafka.readAll(`${topic}.dlq`)).length).toBe(2);

    for (const args of [['check'], ['check', '--json'], ['offsets', 'show']]) {
      const out = await runCli(args, env);
      emitted.push(out.stdout, out.stderr);
    }
    // Errors too: a database that refuses, a bad setting next to the secrets, a broker that wants SASL.
    const unreachable = new URL(url);
    unreachable.port = '1';
    const errorCases: Array<Record<string, string>> = [
      { DATABASE_URL: unreachable.toString() },
      { SLUICE_LINGER_MS: 'soon' },
      { KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'alice', KAFKA_SASL_PASSWORD: saslPassword, SLUICE_KAFKA_RETRY_BACKOFF_MAX_MS: '300' },
      { KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SASL_PASSWORD: saslPassword },
    ];
    for (const extra of errorCases) {
      const out = await runCli(['check'], { ...env, ...extra });
      emitted.push(out.stdout, out.stderr);
    }

    const all = emitted.join('\n');
    expect(all.length).toBeGreaterThan(10_000); // it did emit: logs, metrics, the page
    expect(all).toContain('SLUICE_POISON_RECORD');
    expect(all).not.toContain(dbPassword);
    expect(all).not.toContain(saslPassword);
  });
});
