import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { landingEnv, spawnSluice, type SluiceProcess } from '../helpers/process.js';
import { OwnBroker, canRunOwnBroker } from '../helpers/own-broker.js';
import { KafkaHelper, database, uniqueName, waitFor } from '../helpers/stack.js';

/**
 * The broker goes away and comes back while sluice runs. These tests stop and start a broker of their own (the
 * shared one serves the other files), so they need Java and Maven, as scripts/kafka/kafka.sh does.
 */
const broker = new OwnBroker('outage', 29092);

interface Readyz {
  status: number;
  reasons: string[];
}

async function readyz(port: number): Promise<Readyz> {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`);
  const body = (await response.json()) as { reasons?: string[] };
  return { status: response.status, reasons: body.reasons ?? [] };
}

async function healthPort(proc: SluiceProcess): Promise<number> {
  return waitFor('the health port', () => {
    if (!alive(proc)) throw new Error(`sluice exited: ${proc.stderr()} ${JSON.stringify(proc.logs.slice(-3))}`);
    return proc.logs.find((l) => l.msg === 'HTTP endpoints listening')?.port as number | undefined;
  }, { timeoutMs: 30_000 });
}

/** Landing mode against this file's broker. */
const outageEnv = (topic: string, table: string, groupId: string) => landingEnv(topic, table, groupId, {}, broker.brokers);

function alive(proc: SluiceProcess): boolean {
  return proc.child.exitCode === null && proc.child.signalCode === null;
}

describe.skipIf(!canRunOwnBroker())('Kafka going away and coming back', () => {
  beforeAll(() => broker.start());
  afterAll(() => broker.stop());

  it('under load: /readyz names Kafka while it is down, the process stays up, and consumption follows the broker back, exactly', async () => {
    const kafka = await KafkaHelper.connect(broker.brokers);
    const topic = await kafka.createTopic(2, 'outage');
    const table = uniqueName('landing');
    const expected = new Map<string, string>();
    const batch = (from: number, to: number) => {
      const records = [];
      for (let seq = from; seq < to; seq++) {
        // One key per record: a record lost anywhere shows as a missing row.
        const key = `k${seq}`;
        const value = JSON.stringify({ seq });
        expected.set(key, value);
        records.push({ key, value });
      }
      return records;
    };
    await kafka.produce(topic, batch(0, 20_000));

    const groupId = uniqueName('group');
    const proc = spawnSluice({
      ...outageEnv(topic, table, groupId),
      // Small batches keep sluice fetching, flushing and committing when the broker goes.
      SLUICE_LINGER_MS: '50',
      SLUICE_MAX_BATCH_RECORDS: '50',
    }, process.env.SLUICE_TEST_LOG_DIR ? `${process.env.SLUICE_TEST_LOG_DIR}/kafka-outage.log` : undefined);
    const port = await healthPort(proc);
    const db = await database();
    await waitFor('the first rows to land', async () => {
      const exists = (await db.query('SELECT to_regclass($1) AS t', [table])).rows[0].t;
      return exists && (await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n > 0;
    });
    expect(await readyz(port)).toEqual({ status: 200, reasons: [] });

    // 1. The broker goes while records flow (fetches and offset commits in flight).
    const stoppedAt = Date.now();
    await broker.stop();
    const unready = await waitFor('/readyz to say Kafka is unreachable', async () => {
      const r = await readyz(port);
      return r.status === 503 && r.reasons.some((reason) => /Kafka/.test(reason)) ? r : undefined;
    }, { timeoutMs: 30_000 });
    const unreadyAfterMs = Date.now() - stoppedAt;
    // Down for longer than the session timeout and several of kafkajs' retry rounds: the process stays, unready.
    const whileDown: string[] = [];
    while (Date.now() - stoppedAt < 15_000) {
      if (!alive(proc)) whileDown.push(`exited: ${proc.stderr()}`);
      const r = await readyz(port).catch((error: unknown) => ({ status: -1, reasons: [String(error)] }));
      if (r.status !== 503) whileDown.push(`/readyz ${r.status} at ${Date.now() - stoppedAt} ms`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(whileDown).toEqual([]);

    // 2. It comes back and goes again at once, while sluice reconnects and rejoins the group (its attempts are at
    // most kafka.retryBackoffMaxMs apart), then comes back for good.
    await broker.start();
    await broker.stop();
    await broker.start();
    const backAt = Date.now();
    await kafka.produce(topic, batch(20_000, 22_000));
    await waitFor('/readyz to be 200 again', async () => (await readyz(port)).status === 200, { timeoutMs: 60_000 });
    const readyAfterMs = Date.now() - backAt;
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic), { timeoutMs: 60_000 });
    const caughtUpAfterMs = Date.now() - backAt;
    console.info(`kafka outage: unready ${unreadyAfterMs} ms after the broker stopped (${unready.reasons.join('; ')}); ready ${readyAfterMs} ms and caught up ${caughtUpAfterMs} ms after it was back`);

    expect(alive(proc)).toBe(true);
    // It came back as the same member: the coordinator did not wait for an old member's session to time out.
    const members = new Set(proc.logs.filter((l) => l.msg === 'joined the group').map((l) => l.memberId));
    expect(members.size).toBe(1);
    const rows = (await db.query<{ key: string; value: unknown }>(`SELECT convert_from(key, 'UTF8') AS key, value FROM ${table}`)).rows;
    expect(new Map(rows.map((r) => [r.key, JSON.stringify(r.value)]))).toEqual(expected);
    expect(readyAfterMs).toBeLessThan(6_000); // the session timeout: a new member would have waited that long
    proc.child.kill('SIGTERM');
    expect((await proc.exited).code).toBe(0);
  });

  it('started while the broker is down, waits unready instead of exiting, and consumes once it is up', async () => {
    const kafka = await KafkaHelper.connect(broker.brokers);
    const topic = await kafka.createTopic(2, 'outage');
    const table = uniqueName('landing');
    const groupId = uniqueName('group');
    await kafka.produce(topic, Array.from({ length: 1_000 }, (_, seq) => ({ key: `k${seq}`, value: JSON.stringify({ seq }) })));
    await broker.stop();
    const proc = spawnSluice(outageEnv(topic, table, groupId));
    const port = await healthPort(proc);
    const unready = await waitFor('/readyz to say Kafka is unreachable', async () => {
      const r = await readyz(port);
      return r.status === 503 && r.reasons.some((reason) => /Kafka is unreachable/.test(reason)) ? r : undefined;
    }, { timeoutMs: 30_000 });
    // Several attempts, and the process still there.
    await waitFor('a second attempt at reaching Kafka', () => proc.logs.filter((l) => /failed, will retry/.test(String(l.msg))).length >= 2, { timeoutMs: 30_000 });
    expect(alive(proc)).toBe(true);
    await broker.start();
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic), { timeoutMs: 60_000 });
    await waitFor('/readyz to be 200', async () => (await readyz(port)).status === 200);
    const db = await database();
    expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(1_000);
    expect(unready.reasons.join(' ')).toMatch(/127\.0\.0\.1:29092/);
    proc.child.kill('SIGTERM');
    expect((await proc.exited).code).toBe(0);
  });
});
