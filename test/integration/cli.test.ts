import { describe, expect, it } from 'vitest';
import { defaults } from '../../src/config/options.js';
import { sluiceVersion } from '../../src/version.js';
import { KafkaHelper, brokers, database, databaseUrl, uniqueName, waitFor, topicAndTable } from '../helpers/stack.js';
import { runCli as sluice } from '../helpers/process.js';
import { testSluice } from '../helpers/sluice.js';


describe('the command line', () => {
  it('--help on every command, --version, and exit code 2 for a command line it does not know', async () => {
    for (const args of [['--help'], ['run', '--help'], ['check', '--help'], ['offsets', '--help'], ['offsets', 'show', '--help'], ['offsets', 'rewind', '--help'], ['dlq', '--help'], ['dlq', 'stats', '--help'], ['dlq', 'list', '--help'], ['dlq', 'show', '--help'], ['dlq', 'replay', '--help']]) {
      const { code, stdout } = await sluice(args);
      expect([args.join(' '), code, stdout]).toEqual([args.join(' '), 0, expect.stringMatching(/^Usage: sluice/)]);
    }
    expect(await sluice(['--version'])).toMatchObject({ code: 0, stdout: `${sluiceVersion}\n` });
    expect((await sluice(['offsets', 'show', '--no-such-flag'])).code).toBe(2);
  });

  it('a bad setting is named, with what is allowed, and exits 2 without a stack trace', async () => {
    const { code, stderr } = await sluice(['check'], { KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), SLUICE_TOPICS: 't', SLUICE_LOG_LEVEL: 'verbose' });
    expect(code).toBe(2);
    expect(stderr).toBe('sluice: invalid setting SLUICE_LOG_LEVEL="verbose": expected one of fatal, error, warn, info, debug, trace, silent\n');
    // The service itself too: the logger is made only from a valid level.
    expect(await sluice([], { KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), SLUICE_TOPICS: 't', SLUICE_LOG_LEVEL: 'verbose' })).toMatchObject({ code: 2 });
  });

  it('check: exit 0 on a good configuration; 1 naming a missing column, a missing topic or an unreachable broker', async () => {
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 2, topic: 'check', table: 'orders', columns: 'id text PRIMARY KEY, name text' });
    const env = (routes: unknown, extra: Record<string, string> = {}) => ({
      KAFKA_BROKERS: brokers().join(','),
      DATABASE_URL: databaseUrl(),
      SLUICE_GROUP_ID: uniqueName('group'),
      SLUICE_ROUTES: JSON.stringify(routes),
      ...extra,
    });
    const good = [{ topic, table, key: ['id'], columns: { id: { from: 'key' }, name: 'name' } }];
    const ok = await sluice(['check', '--json'], env(good));
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout) as { ok: boolean; postgres: { routes: Array<{ columns: string[] }> }; kafka: { topics: unknown[]; dlqTopics: unknown[] } };
    expect(report.ok).toBe(true);
    expect(report.postgres.routes[0]!.columns).toEqual(['id', 'name']);
    expect(report.kafka.topics).toEqual([{ topic, partitions: 2 }]);
    expect(report.kafka.dlqTopics).toEqual([{ topic: `${topic}.dlq`, partitions: undefined, createdAtStart: true }].map((t) => JSON.parse(JSON.stringify(t))));
    // Nothing was created by the check: the offsets table aside (shared by the tests), no DLQ topic.
    expect((await kafka.admin.listTopics()).includes(`${topic}.dlq`)).toBe(false);

    const missingColumn = await sluice(['check'], env([{ ...good[0], columns: { id: { from: 'key' }, name: 'name', amount: 'amount' } }]));
    expect(missingColumn.code).toBe(1);
    expect(missingColumn.stdout).toContain(`PostgreSQL: table ${table} has no column(s) amount`);

    const missingTopic = await sluice(['check'], env([{ ...good[0], topic: `${topic}_nope` }], { SLUICE_DLQ_CREATE_TOPICS: 'false' }));
    expect(missingTopic.code).toBe(1);
    expect(missingTopic.stdout).toContain(`Kafka: source topic ${topic}_nope does not exist`);
    expect(missingTopic.stdout).toContain(`Kafka: DLQ topic ${topic}_nope.dlq does not exist`);

    const unreachable = await sluice(['check'], env(good, { KAFKA_BROKERS: '127.0.0.1:1' }));
    expect(unreachable.code).toBe(1);
    expect(unreachable.stdout).toContain('Kafka: cannot reach Kafka at 127.0.0.1:1');
  });

  it('offsets show: the offset stored with the data, the committed one, the log start and end, and lag', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(2, 'offsets');
    const table = uniqueName('landing');
    await kafka.produce(topic, Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ i }), partition: i % 2 })));
    const { sluice: service, groupId } = testSluice({ landing: { topics: [topic], table }, routes: [], batching: { lingerMs: 50 } });
    await service.start();
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic));
    await service.stop();
    await kafka.produce(topic, Array.from({ length: 4 }, (_, i) => ({ key: `n${i}`, value: '{}', partition: 0 })));
    const env = { KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), SLUICE_TOPICS: topic, SLUICE_LANDING_TABLE: table };
    const shown = await sluice(['offsets', 'show', '--group', groupId, '--json'], env);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toEqual({
      groupId,
      delivery: 'exactly-once',
      partitions: [
        { topic, partition: 0, stored: '15', committed: '15', logStart: '0', logEnd: '19', lag: '4' },
        { topic, partition: 1, stored: '15', committed: '15', logStart: '0', logEnd: '15', lag: '0' },
      ],
    });
    const text = await sluice(['offsets', 'show', '--group', groupId], env);
    expect(text.stdout.split('\n').slice(0, 2)).toEqual([`group ${groupId} (exactly-once)`, expect.stringMatching(/^topic\s+partition\s+stored\s+committed\s+log start\s+log end\s+lag$/)]);
  });

  it('offsets rewind --to-time, then run: exactly the records from that time are written again; refused while a member is active', async () => {
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 1, topic: 'rewind', table: 'events', columns: 'row_id bigserial PRIMARY KEY, id text NOT NULL, src_offset bigint NOT NULL' });
    const routes = [{ topic, table, mode: 'append' as const, columns: { id: 'id', src_offset: { from: 'offset' as const } } }];
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    await kafka.produce(topic, Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ id: `id-${i}` }), timestamp: String(t0 + i * 60_000) })));
    const groupId = uniqueName('group');
    const first = testSluice({ groupId, routes, batching: { lingerMs: 50 } });
    await first.sluice.start();
    await waitFor('all ten written', () => kafka.isFullyCommitted(groupId, topic));
    const env = { KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), SLUICE_GROUP_ID: groupId, SLUICE_ROUTES: JSON.stringify(routes) };

    const refused = await sluice(['offsets', 'rewind', '--to-earliest'], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`group ${groupId} has 1 active member(s)`);
    await first.sluice.stop();

    const at = new Date(t0 + 6 * 60_000).toISOString(); // the 7th record's time
    const dry = await sluice(['offsets', 'rewind', '--to-time', at, '--dry-run', '--json'], env);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toEqual({ groupId, dryRun: true, partitions: [{ topic, partition: 0, before: '10', after: '6' }] });
    expect((await kafka.committedOffsets(groupId, topic)).get(0)).toBe('10');

    const done = await sluice(['offsets', 'rewind', '--to-time', at], env);
    expect(done.code).toBe(0);
    expect(done.stdout).toContain(`group ${groupId} resumes:`);
    expect((await kafka.committedOffsets(groupId, topic)).get(0)).toBe('6');
    const stored = await db.query(`SELECT next_offset::text AS n FROM ${defaults.offsetsTable} WHERE group_id = $1 AND topic = $2`, [groupId, topic]);
    expect(stored.rows).toEqual([{ n: '6' }]);

    const second = testSluice({ groupId, routes, batching: { lingerMs: 50 } });
    await second.sluice.start();
    await waitFor('the rewound records written again', async () => (await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n === 14);
    await waitFor('committed to the end again', () => kafka.isFullyCommitted(groupId, topic));
    const again = await db.query(`SELECT src_offset::int AS o FROM ${table} GROUP BY src_offset HAVING count(*) > 1 ORDER BY 1`);
    expect(again.rows.map((r) => r.o)).toEqual([6, 7, 8, 9]);

    expect((await sluice(['offsets', 'rewind', '--to-offset', '3'], env)).code).toBe(2); // an offset needs --topic
    expect((await sluice(['offsets', 'rewind'], env)).code).toBe(2);
  });
});

