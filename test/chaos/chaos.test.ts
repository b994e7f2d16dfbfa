/**
 * The chaos test: three sluice processes in one group write one topic into an append table and a versioned upsert
 * table while members are SIGKILLed and restarted, one is killed between its PostgreSQL commit and its Kafka commit,
 * PostgreSQL becomes unreachable for a few seconds, and members join and leave. A checker then compares both tables
 * and the DLQ with what was produced.
 *
 * Short form (in `npm test`): 12,000 records. Long form: `npm run chaos` (200,000 records), or CHAOS_RECORDS=N.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { defaults } from '../../src/config/options.js';
import { DlqHeaders } from '../../src/dlq/dlq-headers.js';
import { OffsetStore } from '../../src/sinks/offset-store.js';
import { spawnSluice, type SluiceProcess } from '../helpers/process.js';
import { KafkaHelper, brokers, database, databaseUrl, uniqueName, waitFor } from '../helpers/stack.js';

const records = Number(process.env.CHAOS_RECORDS ?? 12_000);
const partitions = 6;
const keys = Math.max(10, Math.floor(records / 20));
const poisonEvery = 100; // 1 %
const killEveryMs = Number(process.env.CHAOS_KILL_EVERY_MS ?? 3_000);
const outageMs = 5_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)]!;

describe('chaos', () => {
  it(`${records.toLocaleString('en')} records, 6 partitions, 3+ members under kills, a database outage and rebalances: nothing lost, nothing twice`, { timeout: 60 * 60_000 }, async () => {
    const started = Date.now();
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(partitions, 'chaos');
    const db = await database();
    const appendTable = uniqueName('chaos_events');
    const upsertTable = uniqueName('chaos_latest');
    await db.query(`CREATE TABLE ${appendTable} (row_id bigserial PRIMARY KEY, id bigint NOT NULL, k text NOT NULL, version int NOT NULL, src_partition int, src_offset bigint)`);
    await db.query(`CREATE TABLE ${upsertTable} (k text PRIMARY KEY, id bigint NOT NULL, version int NOT NULL)`);
    // sluice runs as its own role, so that the outage can cut it off without touching anyone else.
    const role = uniqueName('sluice_chaos');
    await db.query(`CREATE ROLE ${role} LOGIN`);
    onTestFinished(async () => {
      await db.query(`ALTER ROLE ${role} CONNECTION LIMIT -1`);
      await db.query(`DROP OWNED BY ${role}`);
      await db.query(`DROP ROLE ${role}`);
    });
    await new OffsetStore(defaults.offsetsTable, 'any').ensureTable(db);
    await db.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${appendTable}, ${upsertTable}, ${defaults.offsetsTable} TO ${role}`);
    await db.query(`GRANT USAGE ON SEQUENCE ${appendTable}_row_id_seq TO ${role}`);
    const url = new URL(databaseUrl());
    url.username = role;
    url.password = '';

    const groupId = uniqueName('chaos');
    const env = {
      KAFKA_BROKERS: brokers().join(','),
      DATABASE_URL: url.toString(),
      SLUICE_GROUP_ID: groupId,
      SLUICE_ROUTES: JSON.stringify([
        { topic, table: appendTable, mode: 'append', columns: { id: 'id', k: { from: 'key' }, version: 'version', src_partition: { from: 'partition' }, src_offset: { from: 'offset' } } },
        { topic, table: upsertTable, key: ['k'], version: 'version', columns: { k: { from: 'key' }, id: 'id', version: 'version' } },
      ]),
      SLUICE_LINGER_MS: '50',
      SLUICE_MAX_BATCH_RECORDS: '500',
      SLUICE_SESSION_TIMEOUT_MS: '6000',
      SLUICE_HEARTBEAT_INTERVAL_MS: '1000',
      SLUICE_STATS_INTERVAL_MS: '60000',
    };

    // Members: a slot holds the process currently running in it.
    const members: Array<SluiceProcess | undefined> = [];
    const exited: SluiceProcess[] = [];
    let spawned = 0;
    const start = (slot: number, extra: Record<string, string> = {}) => {
      members[slot] = spawnSluice({ ...env, ...extra }, `.local/chaos/${groupId}/member${slot}-${spawned++}.log`);
    };
    let kills = 0;
    let crashesBetweenCommits = 0;
    let outages = 0;
    let joinsAndLeaves = 0;
    for (let slot = 0; slot < 3; slot++) start(slot);

    // The producer: unique ids, per-key increasing versions, 1 % poison, sent in chunks while the chaos goes on.
    const produced = { done: false, total: 0, poison: new Set<number>(), latest: new Map<string, { id: number; version: number }>() };
    const produce = async (count: number) => {
      const batch = [];
      for (let id = produced.total; id < produced.total + count; id++) {
        const k = `key-${id % keys}`;
        const version = Math.floor(id / keys) + 1;
        if (id % poisonEvery === poisonEvery - 1) {
          produced.poison.add(id);
          batch.push({ key: k, value: `not json ${id}` });
        } else {
          produced.latest.set(k, { id, version });
          batch.push({ key: k, value: JSON.stringify({ id, version }) });
        }
      }
      produced.total += count;
      await kafka.produce(topic, batch, count);
    };
    const chunk = Math.max(500, Math.floor(records / 40));
    const producer = (async () => {
      while (produced.total < records) {
        await produce(Math.min(chunk, records - produced.total));
        await sleep(250);
      }
      produced.done = true;
    })();

    const kill = async (slot: number) => {
      const member = members[slot];
      if (!member || member.child.exitCode !== null || member.child.signalCode !== null) return;
      member.child.kill('SIGKILL');
      await member.exited;
      exited.push(member);
      kills++;
    };
    const outage = async () => {
      await db.query(`ALTER ROLE ${role} CONNECTION LIMIT 0`);
      await db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
      await sleep(outageMs);
      await db.query(`ALTER ROLE ${role} CONNECTION LIMIT -1`);
      outages++;
    };

    // A member that kills itself right after its first PostgreSQL commit, before that offset reaches Kafka. It is
    // spared the random kills until it has done so.
    let faulty: SluiceProcess | undefined;
    const replaceSelfKilled = () => {
      for (const slot of [0, 1, 2]) {
        const member = members[slot]!;
        if (member.child.signalCode === 'SIGKILL' && !exited.includes(member)) {
          exited.push(member);
          if (member === faulty) crashesBetweenCommits++;
          kills++;
          start(slot);
        }
      }
    };

    // The chaos, while the producer runs and until the fault has struck and every offset is committed (at most
    // maxRounds).
    const maxRounds = 60;
    let round = 0;
    const more = async () =>
      !produced.done || round < 6 || (round < maxRounds && (crashesBetweenCommits === 0 || !(await kafka.isFullyCommitted(groupId, topic))));
    while (await more()) {
      round++;
      await sleep(killEveryMs);
      if (round === 1) {
        await kill(0);
        start(0, { SLUICE_TEST_CRASH_AFTER_DB_COMMIT: '1' });
        faulty = members[0];
      } else if (round === 3) {
        await outage();
      } else if (round === 4) {
        start(3); // a fourth member joins
        joinsAndLeaves++;
      } else if (round === 6 && members[3]) {
        members[3].child.kill('SIGTERM'); // and leaves cleanly
        await members[3].exited;
        exited.push(members[3]);
        members[3] = undefined;
        joinsAndLeaves++;
      } else {
        const slot = pick([0, 1, 2].filter((n) => crashesBetweenCommits > 0 || members[n] !== faulty));
        await kill(slot);
        start(slot);
      }
      replaceSelfKilled();
      // The member with the fault needs records to commit: keep some coming until it has struck.
      if (produced.done && crashesBetweenCommits === 0) await produce(chunk);
    }
    await producer;

    // Settle: the three members run until every offset is committed.
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic), { timeoutMs: 10 * 60_000, intervalMs: 500 });
    // A member restarted in the last round may still be starting; each must be running before it is asked to stop.
    await waitFor('every member running', () => members.every((m) => !m || m.logs.some((l) => l.msg === 'sluice running')));
    for (const member of members) member?.child.kill('SIGTERM');
    for (const member of members) if (member) expect((await member.exited).code).toBe(0);
    const rebalances = [...exited, ...members.filter((m): m is SluiceProcess => m !== undefined)]
      .flatMap((m) => m.logs)
      .filter((l) => l.msg === 'joined the group').length;

    // The checker.
    const good = produced.total - produced.poison.size;
    const appended = (await db.query<{ rows: number; ids: number; poison: number }>(
      `SELECT count(*)::int AS rows, count(DISTINCT id)::int AS ids,
              count(*) FILTER (WHERE id % ${poisonEvery} = ${poisonEvery - 1})::int AS poison FROM ${appendTable}`,
    )).rows[0]!;
    const duplicated = appended.rows - appended.ids;
    const lost = good - appended.ids;
    const latest = (await db.query<{ k: string; id: string; version: number }>(`SELECT k, id, version FROM ${upsertTable}`)).rows;
    const wrongLatest = latest.filter((r) => {
      const expected = produced.latest.get(r.k);
      return !expected || expected.version !== r.version || String(expected.id) !== r.id;
    }).length + (produced.latest.size - latest.length);
    const dlq = await kafka.readAll(`${topic}.dlq`);
    const dlqOffsets = dlq.map((r) => `${r.headers[DlqHeaders.sourcePartition]}@${r.headers[DlqHeaders.sourceOffset]}`);
    const dlqDistinct = new Set(dlqOffsets).size;
    const dlqDuplicates = dlqOffsets.length - dlqDistinct;
    const elapsedS = ((Date.now() - started) / 1000).toFixed(1);

    console.log(
      `chaos: records=${produced.total} poison=${produced.poison.size} kills=${kills} (between commits: ${crashesBetweenCommits}) ` +
        `rebalances=${rebalances} joins/leaves=${joinsAndLeaves} database outages=${outages} lost=${lost} duplicated=${duplicated} ` +
        `upsert mismatches=${wrongLatest} dlq=${dlqDistinct}/${produced.poison.size} (duplicates ${dlqDuplicates}) elapsed=${elapsedS}s`,
    );
    expect(crashesBetweenCommits).toBeGreaterThanOrEqual(1);
    expect(outages).toBe(1);
    expect(appended.poison).toBe(0);
    expect(lost).toBe(0);
    expect(duplicated).toBe(0);
    expect(wrongLatest).toBe(0);
    expect(dlqDistinct).toBe(produced.poison.size);

  });
});
