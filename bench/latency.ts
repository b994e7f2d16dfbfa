/**
 * End-to-end latency at a fixed input rate: a producer sends fresh orders at `rate` records/s for `seconds`, each
 * stamped with its send time (`created_ms`). The latency table stamps each row with
 * `clock_timestamp()` as sluice's flush writes it, inside the transaction that commits it; latency is that
 * stamp minus the send time. The flush's COMMIT follows the stamp by the commit's fsync, about a millisecond here.
 * The topic stamps records with the broker's append time (`message.timestamp.type=LogAppendTime`), which sluice
 * writes beside the row: the stamp minus that time is sluice's share of the latency (fetch, linger, flush), the rest
 * is the producer's (building and sending its requests on the same cores).
 *
 * Percentiles are of the steady state: records sent in a run's first `warmupMs` are left out of them (a new
 * process runs its first batches through V8's interpreter, and each new PostgreSQL connection fills its caches), and
 * their worst latency is reported on its own. Runs whose point is a disturbance from the start (members joining and
 * leaving) pass `warmupMs: 0`.
 */
import type { Child } from './child.js';
import type { Order } from './dataset.js';
import { waitUntil, type BenchStack } from './stack.js';

export interface LatencyResult {
  lingerMs: number;
  loadShare: number;
  targetRate: number;
  achievedRate: number;
  records: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Records sent during the warm-up, left out of the percentiles, and the worst latency among them. */
  warmupMs: number;
  warmupMaxMs: number;
  /** From the broker's append to the row written: sluice's share. */
  p50FromAppendMs: number;
  p99FromAppendMs: number;
}

export interface LatencyOptions {
  stack: BenchStack;
  topic: string;
  table: string;
  partitions: number;
  lingerMs: number;
  loadShare: number;
  rate: number;
  seconds: number;
  /** Records sent this long after the start are the steady state (default: 2 s, at most a fifth of the run). */
  warmupMs?: number;
  /** Starts sluice on `topic` → `table` with this linger; resolves once it has joined its group. */
  startSluice: (lingerMs: number) => Promise<Child>;
}

const tickMs = 5;
const maxPerSend = 1000;
const maxInFlight = 8;
/** At most this much of the start of a run is warm-up (a fifth of a short run). */
const maxWarmupMs = 2_000;

export async function measureLatency(o: LatencyOptions): Promise<LatencyResult> {
  const { stack } = o;
  await stack.recreateTopic(o.topic, o.partitions, { 'message.timestamp.type': 'LogAppendTime' });
  await stack.db.query(`TRUNCATE ${o.table}`);
  const child = await o.startSluice(o.lingerMs);
  try {
    const started = Date.now();
    let sent = 0;
    let seq = 0;
    const total = Math.round(o.rate * o.seconds);
    // Sends overlap (up to maxInFlight), so that the offered rate is the one asked for: one send at a time offered
    // only what the round trips allowed (about 45k of 60k records/s asked, here).
    const inFlight = new Set<Promise<void>>();
    let sendError: unknown;
    while (sent < total) {
      if (child.hasExited()) throw new Error(`sluice exited during the latency run; last lines:\n${child.tail()}`);
      if (sendError !== undefined) throw sendError;
      // At most maxPerSend per request, so a late tick cannot build a produce request past the broker's size limit.
      const due = Math.min(total, sent + maxPerSend, Math.floor(((Date.now() - started) * o.rate) / 1000));
      if (due > sent && inFlight.size < maxInFlight) {
        const now = Date.now();
        const records: Array<{ partition: number; order: Order }> = [];
        for (; sent < due; sent++, seq++) {
          records.push({ partition: seq % o.partitions, order: latencyOrder(seq, now) });
        }
        const send: Promise<void> = stack.send(o.topic, records).then(
          () => void inFlight.delete(send),
          (error: unknown) => {
            sendError = error;
            inFlight.delete(send);
          },
        );
        inFlight.add(send);
        continue; // more may be due already
      }
      await (inFlight.size >= maxInFlight ? Promise.race(inFlight) : new Promise((resolve) => setTimeout(resolve, tickMs)));
    }
    await Promise.all(inFlight);
    if (sendError !== undefined) throw sendError;
    const producedMs = Date.now() - started;
    const warmupMs = o.warmupMs ?? Math.min(maxWarmupMs, o.seconds * 200);
    await waitUntil(
      `all ${total} latency records to land`,
      async () => (await stack.db.query(`SELECT count(*)::int AS n FROM ${o.table}`)).rows[0].n === total,
      60_000,
      50,
    );
    const steady = 'created_ms >= $1';
    const { rows } = await stack.db.query(
      `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE ${steady}) AS p50,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) FILTER (WHERE ${steady}) AS p99,
              max(ms) FILTER (WHERE ${steady}) AS max,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY from_append) FILTER (WHERE ${steady}) AS p50_append,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY from_append) FILTER (WHERE ${steady}) AS p99_append,
              max(ms) FILTER (WHERE NOT ${steady}) AS warmup_max
         FROM (SELECT created_ms, extract(epoch FROM landed_at) * 1000 - created_ms AS ms,
                      extract(epoch FROM landed_at) * 1000 - appended_ms AS from_append FROM ${o.table}) l`,
      [started + warmupMs],
    );
    // An empty set (no warm-up, say) has no percentile: NaN, shown as a dash, never as 0 ms.
    const value = (v: unknown) => (v === null || v === undefined ? Number.NaN : Number(v));
    return {
      lingerMs: o.lingerMs,
      loadShare: o.loadShare,
      targetRate: o.rate,
      achievedRate: total / (producedMs / 1000),
      records: total,
      p50Ms: value(rows[0].p50),
      p99Ms: value(rows[0].p99),
      maxMs: value(rows[0].max),
      warmupMs,
      warmupMaxMs: value(rows[0].warmup_max),
      p50FromAppendMs: value(rows[0].p50_append),
      p99FromAppendMs: value(rows[0].p99_append),
    };
  } finally {
    await child.stop();
  }
}

function latencyOrder(seq: number, now: number): Order {
  return {
    id: `l-${String(seq).padStart(9, '0')}`,
    seq,
    customer: `customer-${seq % 50_000}`,
    amount: (seq % 100_000) / 100,
    currency: 'EUR',
    status: 'paid',
    items: 1 + (seq % 9),
    note: 'latency probe: alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo',
    created_ms: now,
  };
}
