/**
 * Limit 2: how fast PostgreSQL takes the same rows with no Kafka in the way. The rows are regenerated from the
 * dataset's seed and prepared in memory before the clock starts, so only the database work is timed.
 *   copy    COPY of the final row of every key into the empty table (insert only, no conflict handling)
 *   upsert  the best single-statement upsert: batches of BENCH_BATCH rows per partition, reduced to the last row per
 *           key in JavaScript, sent as one JSON array to INSERT … SELECT FROM json_to_recordset … ON CONFLICT,
 *           one transaction per batch, BENCH_CONNECTIONS connections working in parallel (one per partition)
 * Prints `start` when the clock starts (the harness samples PostgreSQL's CPU then), and at the end one JSON line:
 * rows written, records represented, the elapsed time and this process's own CPU seconds in the timed part.
 */
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { defaultShape, generate, orderColumns } from '../dataset.js';

const databaseUrl = process.env.DATABASE_URL!;
const table = process.env.BENCH_TABLE!;
const mode = process.env.BENCH_MODE as 'copy' | 'upsert';
const records = Number(process.env.BENCH_RECORDS);
const batchSize = Number(process.env.BENCH_BATCH ?? 2000);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 1);
const shape = defaultShape(records);

const clients = await Promise.all(
  Array.from({ length: connections }, async () => {
    const client = new pg.Client({ connectionString: databaseUrl, application_name: 'sluice-bench-limit' });
    await client.connect();
    return client;
  }),
);

let result: { rows: number; records: number; ms: number; cpuSeconds: number };
if (mode === 'copy') {
  const last = new Map<string, string>();
  for (const r of generate(shape)) {
    const o = r.order;
    // Text format: tab-separated; the generated values contain no tab, newline or backslash.
    last.set(o.id, `${o.id}\t${o.seq}\t${o.customer}\t${o.amount}\t${o.currency}\t${o.status}\t${o.items}\t${o.note}\t${o.created_ms}\n`);
  }
  const lines = [...last.values()];
  const { started, cpu } = clockStarts();
  const client = clients[0]!;
  await client.query('BEGIN');
  await pipeline(Readable.from(chunks(lines, 1000)), client.query(copyFrom(`COPY ${table} (${orderColumns.join(', ')}) FROM STDIN`)));
  await client.query('COMMIT');
  result = { rows: lines.length, records, ms: performance.now() - started, cpuSeconds: cpuSince(cpu) };
} else {
  const definitions = 'id text, seq bigint, customer text, amount double precision, currency text, status text, items integer, note text, created_ms bigint';
  const sql =
    `INSERT INTO ${table} (${orderColumns.join(', ')}) SELECT ${orderColumns.join(', ')} FROM json_to_recordset($1::json) AS r(${definitions}) ` +
    `ON CONFLICT (id) DO UPDATE SET ${orderColumns.filter((c) => c !== 'id').map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`;
  // One queue of batches per partition, as a consumer would see them.
  const queues: string[][] = Array.from({ length: shape.partitions }, () => []);
  const open: Array<Map<string, string>> = Array.from({ length: shape.partitions }, () => new Map());
  const counts = new Array<number>(shape.partitions).fill(0);
  let rows = 0;
  const close = (p: number) => {
    const batch = open[p]!;
    if (batch.size === 0) return;
    queues[p]!.push(`[${[...batch.values()].join(',')}]`);
    rows += batch.size;
    open[p] = new Map();
    counts[p] = 0;
  };
  for (const r of generate(shape)) {
    const batch = open[r.partition]!;
    batch.delete(r.key);
    batch.set(r.key, JSON.stringify(r.order));
    if (++counts[r.partition]! >= batchSize) close(r.partition);
  }
  for (let p = 0; p < shape.partitions; p++) close(p);
  const { started, cpu } = clockStarts();
  await Promise.all(
    clients.map(async (client, c) => {
      for (let p = c; p < shape.partitions; p += connections) {
        for (const json of queues[p]!) {
          await client.query('BEGIN');
          await client.query({ name: 'upsert', text: sql, values: [json] });
          await client.query('COMMIT');
        }
      }
    }),
  );
  result = { rows, records, ms: performance.now() - started, cpuSeconds: cpuSince(cpu) };
}
await Promise.all(clients.map((c) => c.end()));
process.stdout.write(`${JSON.stringify(result)}\n`);

function* chunks(lines: string[], size: number): Generator<string> {
  for (let i = 0; i < lines.length; i += size) yield lines.slice(i, i + size).join('');
}

function clockStarts(): { started: number; cpu: NodeJS.CpuUsage } {
  process.stdout.write('start\n');
  return { started: performance.now(), cpu: process.cpuUsage() };
}

function cpuSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}
