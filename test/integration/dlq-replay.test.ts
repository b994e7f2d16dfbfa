import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { KafkaHelper, brokers, database, databaseUrl, lockTable, uniqueName, waitFor, waitForSluiceOnLock, topicAndTable } from '../helpers/stack.js';
import { hasTerminal, runCli as sluice, runCliOnTerminal } from '../helpers/process.js';
import { testSluice } from '../helpers/sluice.js';

const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));


interface Summary {
  state: string;
  selected: number;
  replayed: number;
  replayedNow: number;
  skipped: Record<string, number>;
  parked: number;
  remaining: number;
}

/** util-linux's `script` makes the terminal; elsewhere (BSD `script`) the terminal test is skipped. */
const terminal = await hasTerminal();

describe('sluice dlq replay', () => {
  it.skipIf(!terminal)('on a terminal: a progress bar with the rate and the time left, and colours; in a pipe: plain text only', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'orders');
    const dlq = await kafka.createTopic(1, 'orders-dlq');
    await kafka.producer.send({
      topic: dlq,
      messages: Array.from({ length: 400 }, (_, i) => ({
        key: `k${i}`,
        value: `{"n": ${i}}`,
        headers: { 'sluice.source.topic': topic, 'sluice.source.partition': '0', 'sluice.source.offset': String(i), 'sluice.error.code': 'SLUICE_POISON_RECORD' },
      })),
    });
    const env = { KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), SLUICE_TOPICS: topic };

    // 400 records at 100 a second: four transactions, the bar drawn again after each.
    const shown = await runCliOnTerminal(['dlq', 'replay', dlq, '--rate', '100'], env);
    expect(shown.code, shown.screen).toBe(0);
    // cli-progress draws each time from column 1 (CSI 1G).
    const draws = shown.screen
      .split('\x1b[1G')
      .filter((line) => line.includes('% | ') && line.includes('replay r-'))
      .map((line) => line.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, ''));
    expect(draws.length, shown.screen).toBeGreaterThanOrEqual(3);
    expect(draws.at(-1)).toMatch(/^replay r-\w+ █+ 100% \| 400 of 400 records \| \d+ records\/s \| ETA 0 s/);
    expect(shown.screen).toMatch(/selecting from [^ ]+ [█░]+ \d+% \| \d+ of 400 offsets/);
    expect(draws.some((d) => /░+ .*\| [123]00 of 400 records \| \d+ records\/s \| ETA [1-9]\d* s/.test(d)), shown.screen).toBe(true);
    expect(draws.filter((d) => d.includes(' 0 of 400')).every((d) => d.includes('- records/s | ETA -'))).toBe(true);
    expect(shown.screen).not.toMatch(/\x1b\[\?(25|7)[lh]/); // no terminal mode to give back, even after a kill
    expect(shown.screen).toMatch(/: \x1b\[32mdone\x1b\[/);

    const replayId = `piped-${dlq}`;
    const piped = await sluice(['dlq', 'replay', dlq, '--replay-id', replayId], env);
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout).toMatch(new RegExp(`^replay ${replayId} of .*: done\\n`));
    expect(piped.stdout + piped.stderr).not.toContain('\x1b');
    expect((await kafka.readAll(topic)).length).toBe(800);
  });

  it('poison lands in the DLQ, the table is fixed, the replay writes the rows; the same replay again publishes nothing', async () => {
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 2, topic: 'orders', table: 'orders', columns: 'id text PRIMARY KEY, name text NOT NULL' });
    const routes = [{ topic, table, key: ['id'], columns: { id: { from: 'key' as const }, name: 'name' } }];
    const records = Array.from({ length: 30 }, (_, i) => ({ key: `o${i}`, value: JSON.stringify(i % 3 === 0 ? { note: 'no name' } : { name: `n${i}` }) }));
    await kafka.produce(topic, records);
    const { sluice: service, groupId } = testSluice({ routes, batching: { lingerMs: 50 } });
    await service.start();
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic));
    expect(await kafka.recordCount(`${topic}.dlq`)).toBe(10);
    expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(20);

    await db.query(`ALTER TABLE ${table} ALTER COLUMN name DROP NOT NULL`);
    const env = { KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), SLUICE_ROUTES: JSON.stringify(routes), SLUICE_GROUP_ID: groupId };
    const endBefore = await kafka.recordCount(topic);

    const dry = await sluice(['dlq', 'replay', `${topic}.dlq`, '--dry-run', '--json'], env);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ state: 'dry-run', selected: 10, targets: { [topic]: 10 }, reasons: { 'SLUICE_POISON_RECORD 23502': 10 } });
    expect(await kafka.recordCount(topic)).toBe(endBefore);

    const first = await sluice(['dlq', 'replay', `${topic}.dlq`, '--json'], env);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout) as Summary).toMatchObject({ state: 'done', selected: 10, replayed: 10, replayedNow: 10, remaining: 0 });
    await waitFor('the replayed rows written', async () => (await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n === 30);
    const replayed = (await kafka.readAll(topic)).filter((r) => r.headers['sluice.replay.count'] === '1');
    expect(replayed.map((r) => r.key!.toString()).sort()).toEqual(records.filter((_, i) => i % 3 === 0).map((r) => r.key).sort());
    expect(replayed.every((r) => r.headers['sluice.error.code'] === undefined)).toBe(true);

    const again = await sluice(['dlq', 'replay', `${topic}.dlq`, '--json'], env);
    expect(JSON.parse(again.stdout) as Summary).toMatchObject({ state: 'done', replayed: 10, replayedNow: 0 });
    // Records, not offsets: each transaction also leaves a control record in the log.
    expect((await kafka.readAll(topic)).length).toBe(endBefore + 10);
    // The same id with another selection would go on from offsets that mean something else: refused.
    const replayId = (JSON.parse(first.stdout) as { replayId: string }).replayId;
    const other = await sluice(['dlq', 'replay', `${topic}.dlq`, '--replay-id', replayId, '--sqlstate', '22P02'], env);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain(`replay ${replayId} was started as`);
    const status = await sluice(['dlq', 'replay', `${topic}.dlq`, '--status'], env);
    expect(status.stdout).toMatch(/: done\n {2}selected 10, replayed 10 .*remaining 0/);
  });

  it('SIGKILLed half way and run again: every selected record published exactly once; DLQ duplicates once; the loop guard parks', async () => {
    const kafka = await KafkaHelper.connect();
    const target = await kafka.createTopic(2, 'target');
    const dlq = await kafka.createTopic(2, 'dlq');
    const park = await kafka.createTopic(1, 'park');
    // 600 dead-lettered records; 20 are a second copy of an earlier one (same source coordinates); 5 were replayed 3 times.
    const messages = Array.from({ length: 600 }, (_, i) => {
      const source = i >= 580 ? i - 580 : i;
      return {
        key: `k${i}`,
        value: JSON.stringify({ i }),
        partition: i % 2,
        headers: {
          'sluice.source.topic': target,
          'sluice.source.partition': String(source % 2),
          'sluice.source.offset': String(source),
          'sluice.error.code': 'SLUICE_POISON_RECORD',
          ...(i >= 100 && i < 105 ? { 'sluice.replay.count': '3' } : {}),
        },
      };
    });
    await kafka.producer.send({ topic: dlq, acks: -1, messages });
    const env = { KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), SLUICE_TOPICS: target, SLUICE_GROUP_ID: uniqueName('group') };

    const child = spawn(process.execPath, [cli, 'dlq', 'replay', dlq, '--park', park, '--rate', '150'], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    onTestFinished(() => void child.kill('SIGKILL'));
    await waitFor('some records replayed', async () => (await kafka.recordCount(target)) >= 150, { timeoutMs: 60_000 });
    child.kill('SIGKILL');
    await exited;
    const partial = (await kafka.readAll(target)).length;
    expect(partial).toBeLessThan(570);

    const resumed = await sluice(['dlq', 'replay', dlq, '--park', park, '--json'], env);
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout) as Summary).toMatchObject({ state: 'done', selected: 600, replayed: 575, skipped: { duplicate: 20, 'loop-guard': 5 }, remaining: 0 });
    // read_committed: what aborted transactions sent is not there.
    const published = await kafka.readAll(target);
    const fromOffsets = published.map((r) => `${r.headers['sluice.replay.from.partition']}:${r.headers['sluice.replay.from.offset']}`);
    expect(published.length).toBe(575);
    expect(new Set(fromOffsets).size).toBe(575);
    expect((await kafka.readAll(park)).map((r) => r.key!.toString()).sort()).toEqual(['k100', 'k101', 'k102', 'k103', 'k104']);
    expect((await kafka.readAll(park))[0]!.headers['sluice.replay.count']).toBe('4');
  });

  it('refuses a target no route reads, unless --allow-any-topic', async () => {
    const kafka = await KafkaHelper.connect();
    const dlq = await kafka.createTopic(1, 'dlq');
    await kafka.producer.send({ topic: dlq, messages: [{ key: 'k', value: '{}', headers: { 'sluice.source.topic': 'elsewhere', 'sluice.source.partition': '0', 'sluice.source.offset': '1' } }] });
    const env = { KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), SLUICE_TOPICS: 'orders' };
    const refused = await sluice(['dlq', 'replay', dlq, '--dry-run'], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('the selection would publish to elsewhere, which no route reads');
    expect((await sluice(['dlq', 'replay', dlq, '--dry-run', '--allow-any-topic'], env)).code).toBe(0);
    const noPark = await sluice(['dlq', 'replay', dlq, '--dry-run', '--allow-any-topic', '--park', `${dlq}-nowhere`], env);
    expect([noPark.code, noPark.stderr]).toEqual([2, `sluice: --park ${dlq}-nowhere: the topic does not exist; create it first\n`]);
  });

  it('a record that fails again comes back to the DLQ with its replay count, and the loop guard parks it at the maximum', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'orders');
    const park = await kafka.createTopic(1, 'park');
    const db = await database();
    const table = uniqueName('orders');
    await db.query(`CREATE TABLE ${table} (id text PRIMARY KEY, name text NOT NULL)`);
    const routes = [{ topic, table, key: ['id'], columns: { id: { from: 'key' as const }, name: 'name' } }];
    await kafka.produce(topic, [{ key: 'bad', value: JSON.stringify({ note: 'no name' }) }]);
    const { sluice: service, groupId } = testSluice({ routes, batching: { lingerMs: 50 } });
    await service.start();
    const dlq = `${topic}.dlq`;
    const env = { KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), SLUICE_ROUTES: JSON.stringify(routes), SLUICE_GROUP_ID: groupId };
    // The table is not fixed: every replay fails again, and sluice dead-letters the record once more.
    for (let round = 1; round <= 3; round++) {
      await waitFor(`dead-lettered ${round} time(s)`, async () => (await kafka.readAll(dlq)).length === round);
      const replayed = await sluice(['dlq', 'replay', dlq, '--replay-id', `${topic}-round-${round}`, '--dlq-offsets', String(round - 1), '--max-replays', '3', '--park', park, '--json'], env);
      expect(replayed.stderr).toBe('');
      expect(JSON.parse(replayed.stdout) as Summary).toMatchObject({ replayed: 1, parked: 0 });
    }
    await waitFor('dead-lettered a 4th time', async () => (await kafka.readAll(dlq)).length === 4);
    const counts = (await kafka.readAll(dlq)).map((r) => r.headers['sluice.replay.count'] ?? '0');
    expect(counts.map((c) => (Array.isArray(c) ? c.at(-1) : c))).toEqual(['0', '1', '2', '3']);
    const fourth = await sluice(['dlq', 'replay', dlq, '--replay-id', `${topic}-round-4`, '--dlq-offsets', '3', '--max-replays', '3', '--park', park, '--json'], env);
    expect(JSON.parse(fourth.stdout) as Summary).toMatchObject({ replayed: 0, parked: 1, skipped: { 'loop-guard': 1 } });
    expect((await kafka.readAll(park)).map((r) => r.key!.toString())).toEqual(['bad']);
    expect((await kafka.readAll(topic)).length).toBe(4); // the original and three replays
  });

  it('a replayed record older than the stored row (versioned route) does not overwrite it', async () => {
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 1, topic: 'accounts', table: 'accounts', columns: 'id text PRIMARY KEY, balance int NOT NULL, version int NOT NULL' });
    const routes = [{ topic, table, key: ['id'], version: 'version', columns: { id: { from: 'key' as const }, balance: 'balance', version: 'version' } }];
    // Version 1 arrives without a balance (poison); version 2 comes later, in a batch of its own.
    await kafka.produce(topic, [{ key: 'a', value: JSON.stringify({ version: 1 }) }]);
    const { sluice: service, groupId } = testSluice({ routes, batching: { lingerMs: 50 } });
    await service.start();
    await waitFor('version 1 dead-lettered', async () => (await kafka.isFullyCommitted(groupId, topic)) && (await kafka.readAll(`${topic}.dlq`)).length === 1);
    await kafka.produce(topic, [{ key: 'a', value: JSON.stringify({ balance: 20, version: 2 }) }]);
    await waitFor('version 2 written', () => kafka.isFullyCommitted(groupId, topic));
    await db.query(`ALTER TABLE ${table} ALTER COLUMN balance DROP NOT NULL`);
    const env = { KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), SLUICE_ROUTES: JSON.stringify(routes), SLUICE_GROUP_ID: groupId };
    const replayed = await sluice(['dlq', 'replay', `${topic}.dlq`, '--json'], env);
    expect(JSON.parse(replayed.stdout) as Summary).toMatchObject({ replayed: 1 });
    await waitFor('the replayed record consumed', () => kafka.isFullyCommitted(groupId, topic));
    await waitFor('counted as stale', () => service.status().batching.staleRecords === 1);
    expect((await db.query(`SELECT balance, version FROM ${table}`)).rows).toEqual([{ balance: 20, version: 2 }]);
  });

  it('--into-postgres writes through the route without touching the source topic; what fails again is reported and parked', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(2, 'orders');
    const park = await kafka.createTopic(1, 'park');
    const db = await database();
    const table = uniqueName('orders');
    await db.query(`CREATE TABLE ${table} (id text PRIMARY KEY, name text NOT NULL, src_partition int, src_offset bigint)`);
    const routes = [
      { topic, table, key: ['id'], columns: { id: { from: 'key' as const }, name: 'name', src_partition: { from: 'partition' as const }, src_offset: { from: 'offset' as const } } },
    ];
    // 20 good, 8 without a name (fixable), 2 that are not JSON (not fixable).
    const records = Array.from({ length: 30 }, (_, i) => ({
      key: `o${i}`,
      value: i < 20 ? JSON.stringify({ name: `n${i}` }) : i < 28 ? JSON.stringify({ note: 'no name' }) : '{"name": ',
      partition: i % 2,
    }));
    await kafka.produce(topic, records);
    const { sluice: service, groupId } = testSluice({ routes, batching: { lingerMs: 50 } });
    await service.start();
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic));
    await service.stop();
    expect((await kafka.readAll(`${topic}.dlq`)).length).toBe(10);
    await db.query(`ALTER TABLE ${table} ALTER COLUMN name DROP NOT NULL`);
    const env = { KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), SLUICE_ROUTES: JSON.stringify(routes), SLUICE_GROUP_ID: groupId };
    const topicBefore = await kafka.endOffsets(topic);

    const replayed = await sluice(['dlq', 'replay', `${topic}.dlq`, '--into-postgres', '--park', park, '--json'], env);
    expect(replayed.code).toBe(0);
    expect(JSON.parse(replayed.stdout)).toMatchObject({ state: 'done', selected: 10, replayed: 8, replayedNow: 8, failed: 2, parked: 2, skipped: { 'failed-again': 2 } });
    // Written exactly as sluice would have: the source coordinates, not the DLQ's.
    const rows = await db.query(`SELECT id, name, src_partition, src_offset::int AS src_offset FROM ${table} WHERE id IN ('o20', 'o21') ORDER BY id`);
    expect(rows.rows).toEqual([
      { id: 'o20', name: null, src_partition: 0, src_offset: 10 },
      { id: 'o21', name: null, src_partition: 1, src_offset: 10 },
    ]);
    expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(28);
    expect(await kafka.endOffsets(topic)).toEqual(topicBefore);
    expect((await kafka.readAll(park)).map((r) => r.key!.toString()).sort()).toEqual(['o28', 'o29']);

    const again = await sluice(['dlq', 'replay', `${topic}.dlq`, '--into-postgres', '--park', park, '--json'], env);
    expect(JSON.parse(again.stdout)).toMatchObject({ state: 'done', replayedNow: 0 });
    expect((await kafka.readAll(park)).length).toBe(2);
    // A selection that leaves every chunk empty still moves the replay's offsets to the end, and writes nothing.
    const none = await sluice(['dlq', 'replay', `${topic}.dlq`, '--into-postgres', '--sqlstate', '99999', '--json'], env);
    expect([none.code, none.stderr]).toEqual([0, '']);
    expect(JSON.parse(none.stdout)).toMatchObject({ state: 'done', selected: 0, replayed: 0 });
    expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(28);
  });

  it('--into-postgres --limit: the run stops at the limit, failures included; the next one writes the rest, counted exactly', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'orders');
    const dlq = await kafka.createTopic(1, 'orders-dlq');
    const db = await database();
    const table = uniqueName('orders');
    await db.query(`CREATE TABLE ${table} (id text PRIMARY KEY, name text NOT NULL)`);
    const routes = [{ topic, table, key: ['id'], columns: { id: { from: 'key' as const }, name: 'name' } }];
    // Two that fail again (not JSON) first, then six that are written.
    await kafka.producer.send({
      topic: dlq,
      messages: Array.from({ length: 8 }, (_, i) => ({
        key: `o${i}`,
        value: i < 2 ? '{"name": ' : JSON.stringify({ name: `n${i}` }),
        headers: { 'sluice.source.topic': topic, 'sluice.source.partition': '0', 'sluice.source.offset': String(i), 'sluice.error.code': 'SLUICE_POISON_RECORD' },
      })),
    });
    const env = { KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), SLUICE_ROUTES: JSON.stringify(routes) };
    const rows = async () => (await db.query(`SELECT id FROM ${table} ORDER BY id`)).rows.map((r: { id: string }) => r.id);

    const first = await sluice(['dlq', 'replay', dlq, '--into-postgres', '--limit', '3', '--json'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ state: 'running', replayedNow: 1, failed: 2, remaining: 5 });
    expect(await rows()).toEqual(['o2']);

    const rest = await sluice(['dlq', 'replay', dlq, '--into-postgres', '--json'], env);
    expect(JSON.parse(rest.stdout)).toMatchObject({ state: 'done', selected: 8, replayed: 6, replayedNow: 5, skipped: { 'failed-again': 2 }, remaining: 0 });
    expect(await rows()).toEqual(['o2', 'o3', 'o4', 'o5', 'o6', 'o7']);

    // In chunks of two (--rate 2): the two that fail fill the first chunk and count towards the limit all the same.
    await db.query(`TRUNCATE ${table}`);
    const chunked = await sluice(['dlq', 'replay', dlq, '--into-postgres', '--replay-id', `chunked-${dlq}`, '--rate', '2', '--limit', '3', '--json'], env);
    expect(JSON.parse(chunked.stdout)).toMatchObject({ state: 'running', replayedNow: 1, failed: 2, remaining: 5 });
    expect(await rows()).toEqual(['o2']);
  });

  it('--into-postgres SIGKILLed half way and run again: every selected record written exactly once', async () => {
    const kafka = await KafkaHelper.connect();
    const source = await kafka.createTopic(2, 'source');
    const dlq = await kafka.createTopic(2, 'dlq');
    const db = await database();
    const table = uniqueName('events');
    await db.query(`CREATE TABLE ${table} (row_id bigserial PRIMARY KEY, src_partition int NOT NULL, src_offset bigint NOT NULL)`);
    const routes = [{ topic: source, table, mode: 'append' as const, columns: { src_partition: { from: 'partition' as const }, src_offset: { from: 'offset' as const } } }];
    await kafka.producer.send({
      topic: dlq,
      acks: -1,
      messages: Array.from({ length: 600 }, (_, i) => ({
        key: `k${i}`,
        value: JSON.stringify({ i }),
        partition: i % 2,
        headers: { 'sluice.source.topic': source, 'sluice.source.partition': String(i % 2), 'sluice.source.offset': String(i), 'sluice.error.code': 'SLUICE_POISON_RECORD' },
      })),
    });
    const env = { KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), SLUICE_ROUTES: JSON.stringify(routes), SLUICE_GROUP_ID: uniqueName('group') };
    const child = spawn(process.execPath, [cli, 'dlq', 'replay', dlq, '--into-postgres', '--rate', '150'], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    onTestFinished(() => void child.kill('SIGKILL'));
    const rows = async () => (await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number;
    await waitFor('some records written', async () => (await rows()) >= 150, { timeoutMs: 60_000 });
    child.kill('SIGKILL');
    await exited;
    expect(await rows()).toBeLessThan(600);
    const resumed = await sluice(['dlq', 'replay', dlq, '--into-postgres', '--json'], env);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ state: 'done', selected: 600, replayed: 600, remaining: 0 });
    const written = await db.query(`SELECT count(*)::int AS n, count(DISTINCT (src_partition, src_offset))::int AS d FROM ${table}`);
    expect(written.rows[0]).toEqual({ n: 600, d: 600 });
  });

  it('a second run of the same replay fences the first: each record is published once', async () => {
    const kafka = await KafkaHelper.connect();
    const target = await kafka.createTopic(1, 'target');
    const dlq = await kafka.createTopic(1, 'dlq');
    await kafka.producer.send({
      topic: dlq,
      acks: -1,
      messages: Array.from({ length: 400 }, (_, i) => ({
        key: `k${i}`,
        value: JSON.stringify({ i }),
        headers: { 'sluice.source.topic': target, 'sluice.source.partition': '0', 'sluice.source.offset': String(i) },
      })),
    });
    const env = { KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), SLUICE_TOPICS: target };
    const args = ['dlq', 'replay', dlq, '--replay-id', `${dlq}-fenced`, '--rate', '40'];
    const first = spawn(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let firstErr = '';
    first.stderr!.on('data', (chunk: Buffer) => (firstErr += chunk.toString()));
    const firstExit = new Promise<number | null>((resolve) => first.on('exit', (code) => resolve(code)));
    onTestFinished(() => void first.kill('SIGKILL'));
    await waitFor('the first run publishing', async () => (await kafka.readAll(target)).length >= 40, { timeoutMs: 60_000 });
    // The same replay again, at full speed, while the first is still going.
    const second = await sluice(['dlq', 'replay', dlq, '--replay-id', `${dlq}-fenced`, '--json'], env);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ state: 'done', replayed: 400 });
    // The first run's next transaction is refused: it ends with an error instead of publishing more.
    expect(await firstExit).toBe(1);
    expect(firstErr).toMatch(/publishing replayed records failed/);
    const published = await kafka.readAll(target);
    expect(published.length).toBe(400);
    expect(new Set(published.map((r) => r.key!.toString())).size).toBe(400);
  });

  it('--into-postgres retries a write that times out on a lock, and finishes once the lock is gone', async () => {
    const kafka = await KafkaHelper.connect();
    const source = await kafka.createTopic(1, 'source');
    const dlq = await kafka.createTopic(1, 'dlq');
    const db = await database();
    const table = uniqueName('events');
    await db.query(`CREATE TABLE ${table} (row_id bigserial PRIMARY KEY, src_offset bigint NOT NULL)`);
    const routes = [{ topic: source, table, mode: 'append' as const, columns: { src_offset: { from: 'offset' as const } } }];
    await kafka.producer.send({
      topic: dlq,
      messages: Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: '{}', headers: { 'sluice.source.topic': source, 'sluice.source.partition': '0', 'sluice.source.offset': String(i) } })),
    });
    const replayId = `${dlq}-locked`;
    const env = {
      KAFKA_BROKERS: brokers().join(','),
      DATABASE_URL: databaseUrl(),
      SLUICE_ROUTES: JSON.stringify(routes),
      SLUICE_GROUP_ID: uniqueName('group'),
      // Each attempt gives up on the lock after 300 ms (SQLSTATE 57014, transient).
      SLUICE_STATEMENT_TIMEOUT_MS: '300',
    };
    const lock = await lockTable(table);
    const child = spawn(process.execPath, [cli, 'dlq', 'replay', dlq, '--into-postgres', '--replay-id', replayId], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    onTestFinished(() => void child.kill('SIGKILL'));
    await waitForSluiceOnLock(`sluice-replay-${replayId}`, 'the replay waiting on the lock');
    // Several statement timeouts pass: the replay is still there, retrying.
    const lockedAt = Date.now();
    await waitFor('several timed-out attempts', () => Date.now() - lockedAt > 2_000 && child.exitCode === null, { timeoutMs: 10_000 });
    await lock.release();
    expect(await exited).toBe(0);
    expect((await db.query(`SELECT count(*)::int AS n, count(DISTINCT src_offset)::int AS d FROM ${table}`)).rows[0]).toEqual({ n: 20, d: 20 });
  });
});

