/**
 * Measures one contender draining the pre-loaded topic into the orders table. The window is the same for every
 * contender, whatever its internals: from the first row visible in PostgreSQL to the last record of every partition
 * visible (and, for contenders that commit to Kafka as they go, every offset committed). CPU is the difference of
 * the contender's, the broker's and PostgreSQL's counters over that window; memory is the contender's peak RSS.
 */
import type { Child } from './child.js';
import type { Expectation } from './dataset.js';
import { cpuBetween, peakRssBytes, sampleCpu, type CpuUsage } from './proc-stats.js';
import { waitUntil, type BenchStack } from './stack.js';

export interface ThroughputResult {
  name: string;
  records: number;
  seconds: number;
  recordsPerSec: number;
  cpu: CpuUsage | null;
  /** CPU seconds (contender + broker + PostgreSQL) per million records. */
  cpuSecondsPerMillion: number | null;
  peakRssBytes: number | null;
  /** The table held exactly the expected rows afterwards (null: not checked, e.g. a capped run). */
  verified: boolean | null;
  note?: string;
}

export interface MeasureOptions {
  name: string;
  stack: BenchStack;
  table: string;
  topic: string;
  records: number;
  expectation: Expectation;
  brokerPid: number | undefined;
  start: () => Child;
  /** The contender's consumer group, when it commits offsets as it goes: the window ends at the last commit. */
  commitGroup?: string;
  /** Stop after this many seconds of progress and count committed offsets, for contenders too slow to finish. */
  capSeconds?: number;
  /** Upper bound for start-up (first row) and for the whole drain. */
  startTimeoutMs?: number;
  drainTimeoutMs?: number;
  /** A log line that means the contender has failed even though its process lives on. */
  fatalLine?: RegExp;
  note?: string;
}

export async function measureThroughput(o: MeasureOptions): Promise<ThroughputResult> {
  const { db } = o.stack;
  await db.query(`TRUNCATE ${o.table}`);
  // Every contender starts right after a checkpoint, so none pays for another's dirty pages or full-page writes.
  await db.query('CHECKPOINT');
  const child = o.start();
  let fatal: string | undefined;
  if (o.fatalLine) child.watch(o.fatalLine, (line) => (fatal ??= line));
  const alive = () => {
    if (child.hasExited()) throw new Error(`${o.name} exited early; last lines:\n${child.tail()}`);
    if (fatal) throw new Error(`${o.name} failed: ${fatal}; log in .local/bench/logs`);
  };
  try {
    await waitUntil(
      `${o.name} to write its first row`,
      async () => (alive(), (await db.query(`SELECT EXISTS (SELECT 1 FROM ${o.table}) AS found`)).rows[0].found === true),
      o.startTimeoutMs ?? 180_000,
      20,
    );
    const t0 = performance.now();
    const cpu0 = sampleCpu(child.pid, o.brokerPid);
    let records = o.records;
    if (o.capSeconds !== undefined) {
      await waitUntil(`${o.name} to run for ${o.capSeconds} s`, () => (alive(), performance.now() - t0 >= o.capSeconds! * 1000), o.capSeconds * 1000 + 5_000, 50);
      records = Number(await o.stack.committedTotal(o.commitGroup!, o.topic));
    } else {
      const ids = o.expectation.lastPerPartition.map((r) => r.id);
      const seqs = o.expectation.lastPerPartition.map((r) => r.seq);
      await waitUntil(
        `${o.name} to write the last record of every partition`,
        async () => {
          alive();
          const { rows } = await db.query(
            `SELECT count(*)::int AS n FROM ${o.table} t JOIN unnest($1::text[], $2::bigint[]) AS f(id, seq) ON t.id = f.id AND t.seq = f.seq`,
            [ids, seqs],
          );
          return rows[0].n === ids.length;
        },
        o.drainTimeoutMs ?? 1_800_000,
        25,
      );
      if (o.commitGroup) {
        await waitUntil(`${o.name} to commit every offset`, () => (alive(), o.stack.isFullyCommitted(o.commitGroup!, o.topic)), 120_000, 25);
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuBetween(cpu0, sampleCpu(child.pid, o.brokerPid));
    const rss = peakRssBytes(child.pid) ?? null;
    await child.stop();
    let verified: boolean | null = null;
    if (o.capSeconds === undefined) {
      const { rows } = await db.query(`SELECT count(*)::int AS n, coalesce(sum(seq), 0)::float8 AS s FROM ${o.table}`);
      verified = rows[0].n === o.expectation.distinctKeys && rows[0].s === o.expectation.seqSum;
      if (!verified) {
        throw new Error(
          `${o.name} left the table wrong: ${rows[0].n} rows (expected ${o.expectation.distinctKeys}), seq sum ${rows[0].s} (expected ${o.expectation.seqSum})`,
        );
      }
    }
    return {
      name: o.name,
      records,
      seconds,
      recordsPerSec: records / seconds,
      cpu,
      cpuSecondsPerMillion: cpu.totalSeconds === null ? null : (cpu.totalSeconds / records) * 1e6,
      peakRssBytes: rss,
      verified,
      ...(o.note ? { note: o.note } : {}),
    };
  } finally {
    await child.stop(5_000);
  }
}
