/**
 * End-to-end demo on a running stack: creates a topic and a table, produces sample orders, runs the sluice
 * service (the CLI, as a child process) until every offset is committed, then shows rows, offsets and throughput.
 * Started by scripts/demo.sh, which brings up the stack first.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { connectKafkaTools, type ToolRecord } from '../consumer/kafka-admin.js';
import { DlqHeaders } from '../dlq/dlq-headers.js';

const topic = 'sluice-demo-orders';
const table = 'demo_orders';
const groupId = 'sluice-demo';
const dlqTopic = `${topic}.dlq`;
const records = Number(process.env.SLUICE_DEMO_RECORDS ?? 200_000);
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const kafka = await connectKafkaTools(brokers, 'sluice-demo');
  try {
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    // The demo starts over: offsets that an earlier run stored with its rows go with them.
    if ((await db.query(`SELECT to_regclass('sluice_offsets') AS t`)).rows[0].t) {
      await db.query('DELETE FROM sluice_offsets WHERE group_id = $1', [groupId]);
    }
    await db.query(
      `CREATE TABLE ${table} (order_id text PRIMARY KEY, customer text NOT NULL, amount numeric(12,2) NOT NULL,
         status text NOT NULL, updated_at timestamptz NOT NULL, payload jsonb NOT NULL,
         kafka_partition int NOT NULL, kafka_offset bigint NOT NULL)`,
    );
    await kafka.ensureTopic(topic, 3);
    const statuses = ['new', 'paid', 'shipped', 'delivered'];
    const batch = [];
    const distinctKeys = Math.ceil(records * 0.8);
    for (let i = 0; i < records; i++) {
      const id = `order-${i % distinctKeys}`;
      batch.push({
        key: id,
        value: JSON.stringify({
          customer: `customer-${i % 997}`,
          amount: Math.round((i % 10_000) * 1.37 * 100) / 100,
          status: statuses[i % statuses.length],
          updatedAt: new Date(1_700_000_000_000 + i * 1000).toISOString(),
          note: 'sample order produced by the sluice demo',
        }),
      });
    }
    // Three records the table cannot take, among the others: each goes to the DLQ with its reason, and the rest flows.
    const poison = [
      { key: 'bad-json', value: '{"customer": "c", "amount": 1, "status": "new", "updatedAt": "2024-01-01T00:00:00Z", oops}' },
      { key: 'bad-no-customer', value: JSON.stringify({ amount: 1, status: 'new', updatedAt: '2024-01-01T00:00:00Z' }) },
      { key: 'bad-amount', value: JSON.stringify({ customer: 'c', amount: 'lots', status: 'new', updatedAt: '2024-01-01T00:00:00Z' }) },
    ];
    for (const [k, p] of poison.entries()) batch.splice(Math.floor(((k + 1) * batch.length) / 4), 0, p);
    say(`produced: ${batch.length.toLocaleString('en')} records to topic ${topic} (3 partitions), ${poison.length} of them poison`);
    await kafka.ensureTopic(dlqTopic, 3);
    const dlqBefore = await kafka.endOffsets(dlqTopic);
    await kafka.produce(topic, batch);
    const end = await kafka.endOffsets(topic);
    const endTotal = [...end.values()].reduce((sum, o) => sum + Number(o), 0);

    mkdirSync('.local/demo', { recursive: true });
    const logFile = '.local/demo/sluice.log';
    const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
    const child = spawn(process.execPath, [cli], {
      env: {
        ...process.env,
        KAFKA_BROKERS: brokers.join(','),
        DATABASE_URL: databaseUrl,
        SLUICE_CONFIG: process.env.SLUICE_CONFIG ?? 'examples/demo.yaml',
        SLUICE_GROUP_ID: groupId,
        SLUICE_STATS_INTERVAL_MS: '1000',
        SLUICE_HTTP_PORT: process.env.SLUICE_HTTP_PORT ?? '0',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.stdout.pipe(createWriteStream(logFile));
    // The health endpoints' port, from sluice's own log line.
    let httpPort: number | undefined;
    let partial = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (httpPort === undefined && line.includes('HTTP endpoints listening')) httpPort = (JSON.parse(line) as { port: number }).port;
      }
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    say(`sluice: running (logs in ${logFile}), consuming as group ${groupId}`);

    const started = Date.now();
    for (;;) {
      const committed = await kafka.committedOffsets(groupId, topic);
      const done = [...end].every(([p, high]) => committed.get(p) === high);
      const committedTotal = [...committed.values()].reduce((sum, o) => sum + Math.max(0, Number(o)), 0);
      if (done) break;
      if (child.exitCode !== null) throw new Error(`sluice exited with code ${child.exitCode}; see ${logFile}`);
      if (Date.now() - started > 300_000) throw new Error('not every offset was committed within 5 minutes');
      process.stdout.write(`\r  committed ${committedTotal.toLocaleString('en')} / ${endTotal.toLocaleString('en')}   `);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const elapsedS = (Date.now() - started) / 1000;
    process.stdout.write('\n');
    if (httpPort !== undefined) {
      const ready = (await (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).json()) as { ready: boolean };
      const status = (await (await fetch(`http://127.0.0.1:${httpPort}/status`)).json()) as { state: string; dlq: { sentRecords: number }; statements: number };
      say(`GET /readyz → ready: ${ready.ready}; GET /status → state ${status.state}, ${status.dlq.sentRecords} record(s) sent to the DLQ, ${status.statements.toLocaleString('en')} statements`);
    }
    child.kill('SIGTERM');
    const code = await exited;

    const count = (await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number;
    const sample = (
      await db.query(`SELECT order_id, customer, amount, status, kafka_partition, kafka_offset FROM ${table} ORDER BY kafka_offset DESC LIMIT 5`)
    ).rows;
    const committed = await kafka.committedOffsets(groupId, topic);
    say(`\nPostgreSQL table ${table}: ${count.toLocaleString('en')} rows (${distinctKeys.toLocaleString('en')} distinct keys; later records replaced earlier ones)`);
    console.table(sample);
    say('committed offsets (group sluice-demo):');
    console.table([...end].map(([partition, high]) => ({ partition, committed: committed.get(partition), logEnd: high })));
    say(`throughput: ${Math.round(records / elapsedS).toLocaleString('en')} records/s end to end (${records.toLocaleString('en')} records in ${elapsedS.toFixed(1)} s, from sluice start to the last commit)`);
    const dead = await kafka.read(dlqTopic, dlqBefore);
    say(`DLQ topic ${dlqTopic}: ${dead.length} new record(s), each with its provenance headers:`);
    const header = (r: ToolRecord, name: string) => String(r.headers[name] ?? '');
    console.table(
      dead.map((r) => ({
        key: r.key?.toString() ?? null,
        source: `${header(r, DlqHeaders.sourcePartition)}@${header(r, DlqHeaders.sourceOffset)}`,
        [DlqHeaders.sqlState]: header(r, DlqHeaders.sqlState),
        [DlqHeaders.errorMessage]: header(r, DlqHeaders.errorMessage).replace(/^record \S+ cannot be written: /, '').slice(0, 70),
      })),
    );
    say(`sluice exited with code ${code} after SIGTERM`);
    if (count !== distinctKeys || code !== 0 || dead.length !== poison.length) process.exitCode = 1;
  } finally {
    await kafka.close();
    await db.end();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
