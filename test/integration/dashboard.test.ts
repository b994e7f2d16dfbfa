import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { spawnSluice } from '../helpers/process.js';
import { prometheusPath, startPrometheus } from '../helpers/prometheus.js';
import { KafkaHelper, brokers, database, databaseUrl, uniqueName, waitFor, topicAndTable } from '../helpers/stack.js';

const dashboardFile = fileURLToPath(new URL('../../deploy/observability/grafana/dashboards/sluice.json', import.meta.url));

interface Panel {
  title: string;
  targets?: Array<{ expr: string }>;
}

/**
 * A panel's query as Prometheus gets it from Grafana, the variables set to this run's job and group (not ".*", which
 * also matches series without the label, and so would hide a wrong label name), the rate interval 1m.
 */
const asGrafanaSendsIt = (expr: string, job: string, group: string) =>
  expr.replaceAll('$__rate_interval', '1m').replaceAll('$group', group).replaceAll('$job', job);

describe.skipIf(!existsSync(prometheusPath))('the Grafana dashboard, against a real Prometheus scraping a real sluice', () => {
  it('every query of every panel returns series', async () => {
    const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as { panels: Panel[] };
    const targets = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((t) => ({ panel: panel.title, expr: t.expr })));
    expect(targets.length).toBeGreaterThan(20);

    // A run that exercises every metric: records written, poison sent to the DLQ, a stale record of a versioned route.
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 2, topic: 'orders', table: 'orders', columns: 'id text PRIMARY KEY, name text NOT NULL, version int NOT NULL' });
    const routes = [{ topic, table, key: ['id'], version: 'version', columns: { id: { from: 'key' }, name: 'name', version: 'version' } }];
    const groupId = uniqueName('group');
    const queries = targets.map((t) => ({ ...t, expr: asGrafanaSendsIt(t.expr, 'sluice', groupId) }));
    const proc = spawnSluice({ KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), SLUICE_ROUTES: JSON.stringify(routes), SLUICE_GROUP_ID: groupId });
    const port = await waitFor('the HTTP port', () => proc.logs.find((l) => l.msg === 'HTTP endpoints listening')?.port as number | undefined);
    const prometheus = await startPrometheus('sluice', [`127.0.0.1:${port}`]);

    await kafka.produce(topic, Array.from({ length: 2_000 }, (_, i) => ({ key: `o${i}`, value: JSON.stringify(i % 500 === 9 ? { version: 2 } : { name: `n${i}`, version: 2 }) })));
    await waitFor('the first records committed', () => kafka.isFullyCommitted(groupId, topic));
    await kafka.produce(topic, [{ key: 'o1', value: JSON.stringify({ name: 'older', version: 1 }) }]);
    await waitFor('the stale record committed', () => kafka.isFullyCommitted(groupId, topic));

    // Until every query has series (rates need two scrapes of a series), or the deadline names those without.
    let empty: string[] = [];
    await waitFor(
      'every panel query to return series',
      async () => {
        empty = [];
        for (const { panel, expr } of queries) if ((await prometheus.query(expr)).length === 0) empty.push(`${panel}: ${expr}`);
        return empty.length === 0;
      },
      { timeoutMs: 30_000, intervalMs: 1_000 },
    ).catch(() => undefined);
    expect(empty).toEqual([]);
    // And they say what happened: 2,001 flushed, 4 to the DLQ, 1 stale, no lag.
    const value = async (expr: string) => Number((await prometheus.query(expr))[0]?.value[1]);
    const mine = `messaging_consumer_group_name="${groupId}"`;
    expect(await value(`sum(sluice_records_flushed_total{${mine}})`)).toBe(2_001);
    expect(await value(`sum(sluice_records_dead_lettered_total{${mine}})`)).toBe(4);
    expect(await value(`sum(sluice_records_stale_total{${mine}})`)).toBe(1);
    expect(await value(`sum(sluice_consumer_lag{${mine}})`)).toBe(0);
    proc.child.kill('SIGTERM');
    expect((await proc.exited).code).toBe(0);
  });
});
