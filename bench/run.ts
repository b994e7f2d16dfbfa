/**
 * `npm run bench`: sluice side by side with the physical limits, a naive consumer and Kafka Connect + the Debezium
 * JDBC sink, on one machine, in one run, against the same pre-loaded topic. See bench/README section in the
 * project README ("Performance") for what each number means.
 *
 *   npm run bench                      quick form (200,000 records, short latency runs)
 *   npm run bench -- --full            the full run (1,000,000 records) whose results are committed
 *   npm run bench -- --only sluice,limits --records 500000 --profile
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startChild, type Child } from './child.js';
import avro from 'avsc';
import { avroOrderSchema, defaultShape, expectationOf, ordersTableDdl, orderColumns, type DatasetShape } from './dataset.js';
import { measureLatency, type LatencyResult } from './latency.js';
import { measureThroughput, type ThroughputResult } from './measure.js';
import { baselineCli, churn, type Churn, type RebalanceResult } from './rebalance.js';
import { cpuBetween, localBrokerPid, sampleCpu, type CpuSample } from './proc-stats.js';
import { writeReport, type BenchReport, type LimitResult } from './report.js';
import { connectStack, type BenchStack } from './stack.js';

const root = resolve(import.meta.dirname, '../..');
const benchDist = resolve(import.meta.dirname);
const sections = ['limits', 'sluice', 'tracing', 'memory', 'naive', 'connect', 'latency', 'rebalance', 'formats'] as const;
type Section = (typeof sections)[number];

/** The last commit before rebalances kept anything (round-robin assignor, every buffer dropped at each rebalance). */
const baselineRefDefault = '21b07b6';

const { values: args } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    records: { type: 'string' },
    only: { type: 'string' },
    'latency-seconds': { type: 'string' },
    'naive-seconds': { type: 'string' },
    loads: { type: 'string' },
    rate: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'baseline-ref': { type: 'string', default: baselineRefDefault },
    'churn-ms': { type: 'string' },
    'sink-delay-ms': { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (args.help) {
  process.stdout.write(`npm run bench -- [options]
  --full                 1,000,000 records, 30 s latency runs (default: 200,000 records, 10 s)
  --records N            records in the pre-loaded topic
  --only a,b             sections to run: ${sections.join(', ')}
  --loads 25,50          latency runs at these shares (%) of sluice's measured maximum
  --latency-seconds S    length of each latency run
  --rate N               sluice's maximum rate (records/s) for the latency loads, instead of measuring it
  --naive-seconds S      how long the naive consumer runs (it is too slow to drain the topic)
  --profile              run sluice with --cpu-prof (profiles in .local/bench/profiles)
  --baseline-ref REF     the rebalance section's baseline: sluice built from this commit (default ${baselineRefDefault})
  --churn-ms MS          the rebalance section: a second member joins, stays MS, leaves, stays away MS (default 2000)
  --sink-delay-ms MS     the rebalance section: every insert statement into the table waits MS (a slow or remote
                         database, where a flush rolled back at a rebalance costs more)
  --out DIR              where results go (default bench/results)
Environment: BENCH_NODE_ARGS="--trace-gc …" adds Node options to every sluice the benchmark starts.
`);
  process.exit(0);
}

const positive = (name: string, text: string | undefined, fallback: number) => {
  if (text === undefined) return fallback;
  const n = Number(text.replace(/_/g, ''));
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${text}`);
  return n;
};
const records = Math.round(positive('records', args.records, args.full ? 1_000_000 : 200_000));
const latencySeconds = positive('latency-seconds', args['latency-seconds'], args.full ? 30 : 10);
const naiveSeconds = positive('naive-seconds', args['naive-seconds'], args.full ? 30 : 15);
const loads = (args.loads ?? '25,50').split(',').map((s) => positive('loads', s, 0) / 100);
const only = new Set<Section>(
  (args.only ?? sections.join(',')).split(',').map((s) => {
    if (!(sections as readonly string[]).includes(s)) throw new Error(`--only: unknown section ${s}; known: ${sections.join(', ')}`);
    return s as Section;
  }),
);
const outDir = resolve(args.out ?? join(root, 'bench/results'));
const runName = args.full ? 'full' : 'quick';
const logDir = join(root, '.local/bench/logs');
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/** What every child process needs to find the stack. */
const stackEnv = { KAFKA_BROKERS: brokers.join(','), DATABASE_URL: databaseUrl };

const topic = 'bench-orders';
const smallTopic = 'bench-orders-small';
const rebalanceTopic = 'bench-orders-rebalance';
const latencyTopic = 'bench-latency';
const table = 'bench_orders';
const latencyTable = 'bench_latency';

const say = (line: string) => process.stdout.write(`${line}\n`);
const fmt = (n: number) => Math.round(n).toLocaleString('en');

function sluiceRoute(routeTopic: string, routeTable: string, format = 'connect-json') {
  return [
    {
      topic: routeTopic,
      table: routeTable,
      key: ['id'],
      format,
      columns: {
        ...Object.fromEntries(orderColumns.map((c) => [c, c === 'id' ? { from: 'key' } : c])),
        // The latency topic stamps records with the broker's append time: this column splits a row's latency into
        // the producer's share and sluice's.
        ...(routeTable === latencyTable ? { appended_ms: { from: 'timestamp' } } : {}),
      },
    },
  ];
}

function startSluice(
  name: string,
  routeTopic: string,
  routeTable: string,
  groupId: string,
  extraEnv: NodeJS.ProcessEnv = {},
  cli = join(root, 'dist/cli.js'),
  format = 'connect-json',
): Child {
  const nodeArgs = [...(args.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(root, '.local/bench/profiles')}`] : []), ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)];
  return startChild(
    name,
    process.execPath,
    [...nodeArgs, cli],
    {
      ...stackEnv,
      SLUICE_GROUP_ID: groupId,
      SLUICE_ROUTES: JSON.stringify(sluiceRoute(routeTopic, routeTable, format)),
      SLUICE_LOG_LEVEL: process.env.SLUICE_LOG_LEVEL ?? 'info',
      SLUICE_CONFIG: '',
      SLUICE_HTTP_PORT: '0',
      ...extraEnv,
    },
    join(logDir, `${name}.log`),
  );
}

/** Runs a limit child; CPU of the broker and PostgreSQL is sampled from its `start` line to its result line. */
interface LimitChildResult {
  records: number;
  rows: number;
  ms: number;
  cpuSeconds: number;
  serverCpuSeconds: number | null;
}

async function runJsonChild(name: string, script: string, env: NodeJS.ProcessEnv): Promise<LimitChildResult> {
  const child = startChild(name, process.execPath, [join(benchDist, script)], { ...stackEnv, ...env }, join(logDir, `${name}.log`));
  let atStart: CpuSample | undefined;
  let atEnd: CpuSample | undefined;
  child.watch(/^start$/, () => (atStart = sampleCpu(undefined, brokerPid)));
  child.watch(/^\{/, () => (atEnd = sampleCpu(undefined, brokerPid)));
  const code = await child.exited;
  const line = child.stdoutLines.find((l) => l.startsWith('{'));
  if (code !== 0 || !line) throw new Error(`${name} failed (exit ${code}); last lines:\n${child.tail()}`);
  const server = atStart && atEnd ? cpuBetween(atStart, atEnd) : undefined;
  const serverCpuSeconds = server ? (server.brokerSeconds ?? 0) + (server.postgresSeconds ?? 0) : null;
  const parsed = JSON.parse(line) as Omit<LimitChildResult, 'serverCpuSeconds'>;
  return { ...parsed, rows: parsed.rows ?? parsed.records, serverCpuSeconds };
}

const limitCpu = (r: LimitChildResult) => (r.serverCpuSeconds === null ? null : ((r.cpuSeconds + r.serverCpuSeconds) / r.records) * 1e6);

async function recreateTable(stack: BenchStack, name: string, extra = ''): Promise<void> {
  await stack.db.query(`DROP TABLE IF EXISTS ${name}`);
  await stack.db.query(ordersTableDdl(name, extra));
}

async function limits(shape: DatasetShape): Promise<LimitResult[]> {
  const out: LimitResult[] = [];
  say('limits: kafkajs consume (decode only, no sink)');
  const consume = await runJsonChild('limit-consume', 'contenders/raw-consume.js', { BENCH_TOPIC: topic, BENCH_RECORDS: String(shape.records) });
  out.push({ name: 'kafkajs consume, decode only', kind: 'consume', rows: consume.records, records: consume.records, seconds: consume.ms / 1000, recordsPerSec: consume.records / (consume.ms / 1000), cpuSecondsPerMillion: limitCpu(consume) });
  const pgRuns: Array<{ name: string; kind: LimitResult['kind']; env: NodeJS.ProcessEnv }> = [
    { name: 'PostgreSQL COPY (insert only)', kind: 'copy', env: { BENCH_MODE: 'copy' } },
    { name: 'PostgreSQL upsert, 1 connection', kind: 'upsert', env: { BENCH_MODE: 'upsert', BENCH_CONNECTIONS: '1' } },
    { name: `PostgreSQL upsert, ${shape.partitions} connections`, kind: 'upsert', env: { BENCH_MODE: 'upsert', BENCH_CONNECTIONS: String(shape.partitions) } },
  ];
  for (const run of pgRuns) {
    say(`limits: ${run.name}`);
    await stack.db.query(`TRUNCATE ${table}`);
    await stack.db.query('CHECKPOINT');
    const r = await runJsonChild('limit-postgres', 'contenders/raw-postgres.js', { BENCH_TABLE: table, BENCH_RECORDS: String(shape.records), ...run.env });
    out.push({ name: run.name, kind: run.kind, rows: r.rows, records: r.records, seconds: r.ms / 1000, recordsPerSec: r.records / (r.ms / 1000), cpuSecondsPerMillion: limitCpu(r) });
  }
  return out;
}

const stack = await connectStack(brokers, databaseUrl);
const brokerPid = localBrokerPid(root);
const report: BenchReport = {
  run: runName,
  startedAt: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    postgres: String((await stack.db.query('SHOW server_version')).rows[0].server_version),
    kafka: brokerPid ? 'Apache Kafka 4.1.1 (local, KRaft, scripts/kafka/kafka.sh)' : `broker at ${brokers.join(',')}`,
  },
  dataset: { records, partitions: 4, repeatShare: 0.1, payloadBytes: 0, valueBytes: 0, distinctKeys: 0 },
  limits: [],
  contenders: [],
  memory: [],
  latency: [],
  rebalance: [],
};

mkdirSync(outDir, { recursive: true });
/** Written after every section, so that a run that fails late still leaves what it measured. */
const save = () => writeReport(report, outDir);

try {
  const shape = defaultShape(records);
  const smallShape = defaultShape(Math.round(records / 10));
  say(`bench (${runName}): ${fmt(records)} records, ${shape.partitions} partitions, ${report.machine.cpus} cores, ${report.machine.memoryGiB} GiB`);
  const expectation = expectationOf(shape);
  /** What every drain of the pre-loaded topic shares. */
  const drain = { stack, table, topic, records, expectation, brokerPid };
  Object.assign(report.dataset, { payloadBytes: expectation.payloadBytes, valueBytes: expectation.valueBytes, distinctKeys: expectation.distinctKeys });
  await recreateTable(stack, table);
  await recreateTable(stack, latencyTable, ', landed_at timestamptz NOT NULL DEFAULT clock_timestamp(), appended_ms bigint NOT NULL');

  say(`preloading ${topic} …`);
  await stack.recreateTopic(topic, shape.partitions);
  await stack.preload(topic, shape);
  if (only.has('limits')) report.limits = await limits(shape);
  await save();

  let sluiceRate: number | undefined = args.rate === undefined ? undefined : positive('rate', args.rate, 0);
  if (only.has('sluice') || (only.has('latency') && sluiceRate === undefined)) {
    say('sluice: draining the topic');
    const groupId = `bench-sluice-${Date.now()}`;
    const result = await measureThroughput({
      ...drain,
      name: 'sluice',
      commitGroup: groupId,
      start: () => startSluice('sluice', topic, table, groupId),
    });
    report.contenders.push(result);
    report.memory.push({ backlog: records, peakRssBytes: result.peakRssBytes });
    sluiceRate = result.recordsPerSec;
    say(`  ${fmt(result.recordsPerSec)} records/s`);
    await save();
  }

  if (only.has('tracing')) {
    // The same drain with every span exported: OTLP over HTTP to an endpoint that takes each request and drops it.
    // Against the plain run above (no exporter: spans are non-recording), this is what tracing costs.
    const endpoint = await droppingOtlpEndpoint();
    say(`tracing: sluice draining the topic, spans exported by OTLP to ${endpoint.url} (dropped)`);
    const groupId = `bench-sluice-traced-${Date.now()}`;
    try {
      const result = await measureThroughput({
        ...drain,
        name: 'sluice, traced (every span exported by OTLP)',
        commitGroup: groupId,
        start: () =>
          startSluice('sluice-traced', topic, table, groupId, {
            OTEL_TRACES_EXPORTER: 'otlp',
            OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: endpoint.url,
          }),
      });
      result.note = `${fmt(endpoint.requests())} OTLP requests, ${fmt(Math.round(endpoint.bytes() / 1024))} KiB of spans dropped`;
      report.contenders.push(result);
      say(`  ${fmt(result.recordsPerSec)} records/s; ${result.note}`);
    } finally {
      await endpoint.close();
    }
    await save();
  }

  if (only.has('memory')) {
    say(`memory: sluice draining a ${fmt(smallShape.records)}-record backlog`);
    await stack.recreateTopic(smallTopic, smallShape.partitions);
    await stack.preload(smallTopic, smallShape);
    const groupId = `bench-sluice-small-${Date.now()}`;
    const small = await measureThroughput({
      name: 'sluice (small backlog)',
      stack,
      table,
      topic: smallTopic,
      records: smallShape.records,
      expectation: expectationOf(smallShape),
      brokerPid,
      commitGroup: groupId,
      start: () => startSluice('sluice-small', smallTopic, table, groupId),
    });
    report.memory.unshift({ backlog: smallShape.records, peakRssBytes: small.peakRssBytes });
    await save();
  }

  if (only.has('naive')) {
    say(`naive: eachMessage, one upsert and one commit per record, for ${naiveSeconds} s`);
    const groupId = `bench-naive-${Date.now()}`;
    report.contenders.push(
      await measureThroughput({
        ...drain,
        name: 'naive consumer',
        commitGroup: groupId,
        capSeconds: naiveSeconds,
        note: `ran ${naiveSeconds} s; rate from the offsets it committed`,
        start: () =>
          startChild('naive', process.execPath, [join(benchDist, 'contenders/naive.js')], {
            ...stackEnv,
            BENCH_TOPIC: topic,
            BENCH_TABLE: table,
            BENCH_GROUP: groupId,
          }, join(logDir, 'naive.log')),
      }),
    );
    await save();
  }

  if (only.has('connect')) {
    const script = join(root, 'bench/connect/connect.sh');
    say('connect: fetching Kafka Connect and the Debezium JDBC sink (cached after the first run)');
    execFileSync('bash', [script, 'fetch'], { stdio: ['ignore', 'inherit', 'inherit'] });
    say('connect: Kafka Connect standalone + Debezium JDBC sink, upsert mode');
    const name = `bench-connect-${Date.now()}`;
    report.contenders.push(
      await measureThroughput({
        ...drain,
        name: 'Kafka Connect + Debezium JDBC sink',
        note: 'window ends at the last row visible; Connect commits offsets on its own interval',
        fatalLine: /Task threw an uncaught and unrecoverable exception/,
        start: () =>
          startChild('connect', 'bash', [script, 'run'], {
            ...stackEnv,
            CONNECT_TOPIC: topic,
            CONNECT_TABLE: table,
            CONNECT_NAME: name,
            CONNECT_WORK_DIR: join(root, '.local/bench/connect'),
          }, join(logDir, 'connect.log')),
      }),
    );
    await save();
  }

  if (only.has('latency')) {
    if (sluiceRate === undefined) throw new Error('latency needs the sluice section (its maximum rate sets the load)');
    for (const lingerMs of [50, 500]) {
      for (const share of loads) {
        const rate = Math.round(sluiceRate * share);
        say(`latency: lingerMs ${lingerMs}, ${Math.round(share * 100)} % load = ${fmt(rate)} records/s for ${latencySeconds} s`);
        const result: LatencyResult = await measureLatency({
          stack,
          topic: latencyTopic,
          table: latencyTable,
          partitions: 4,
          lingerMs,
          loadShare: share,
          rate,
          seconds: latencySeconds,
          startSluice: async (linger) => {
            const child = startSluice(`sluice-latency-${linger}`, latencyTopic, latencyTable, `bench-latency-${Date.now()}`, {
              SLUICE_LINGER_MS: String(linger),
              SLUICE_START_FROM: 'earliest',
            });
            await child.waitForLine(/joined the group/, 60_000);
            return child;
          },
        });
        report.latency.push(result);
        say(`  p50 ${result.p50Ms.toFixed(0)} ms, p99 ${result.p99Ms.toFixed(0)} ms, max ${result.maxMs.toFixed(0)} ms`);
        await save();
      }
    }
  }

  if (only.has('formats')) {
    // The same orders as plain JSON values and as Avro in the schema registry's wire format (a registry of the
    // bench's own, scripts/registry/registry.sh), each drained by sluice: what decoding Avro costs per record.
    const registryScript = join(root, 'scripts/registry/registry.sh');
    const registryEnv = { ...process.env, SLUICE_REGISTRY_PORT: '28181', SLUICE_REGISTRY_HOME: join(root, '.local/bench/registry') };
    say('formats: starting a schema registry (Apicurio, port 28181)');
    execFileSync('bash', [registryScript, 'start'], { stdio: ['ignore', 'inherit', 'inherit'], env: registryEnv });
    try {
      const registryUrl = 'http://127.0.0.1:28181/apis/ccompat/v7';
      const avroTopic = 'bench-orders-avro';
      const response = await fetch(`${registryUrl}/subjects/${avroTopic}-value/versions`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/vnd.schemaregistry.v1+json' },
        body: JSON.stringify({ schema: JSON.stringify(avroOrderSchema) }),
      });
      const { id } = (await response.json()) as { id: number };
      const type = avro.Type.forSchema(avroOrderSchema as avro.Schema);
      const header = Buffer.alloc(5);
      header.writeUInt32BE(id, 1);
      const variants = [
        { format: 'json', topic: 'bench-orders-json', name: 'sluice, plain JSON values', encode: (o: object) => JSON.stringify(o) },
        { format: 'avro', topic: avroTopic, name: 'sluice, Avro values (schema registry)', encode: (o: object) => Buffer.concat([header, type.toBuffer(o)]) },
      ];
      for (const v of variants) {
        say(`formats: preloading ${v.topic} …`);
        await stack.recreateTopic(v.topic, shape.partitions);
        const bytes = await stack.preload(v.topic, shape, undefined, v.encode);
        say(`formats: sluice draining ${v.topic} (${v.format}, ${Math.round(bytes / shape.records)} bytes per value)`);
        const groupId = `bench-formats-${v.format}-${Date.now()}`;
        const result = await measureThroughput({
          ...drain,
          topic: v.topic,
          name: v.name,
          note: `${Math.round(bytes / shape.records)} bytes per value`,
          commitGroup: groupId,
          start: () => startSluice(`sluice-${v.format}`, v.topic, table, groupId, { SLUICE_SCHEMA_REGISTRY_URL: registryUrl }, undefined, v.format),
        });
        report.contenders.push(result);
        say(`  ${fmt(result.recordsPerSec)} records/s, ${result.cpuSecondsPerMillion === null ? '—' : result.cpuSecondsPerMillion.toFixed(1)} CPU-s per million`);
        await save();
      }
    } finally {
      execFileSync('bash', [registryScript, 'stop'], { stdio: ['ignore', 'inherit', 'inherit'], env: registryEnv });
    }
  }

  if (only.has('rebalance')) {
    const churnMs = positive('churn-ms', args['churn-ms'], 2_000);
    // A topic of its own, long enough for several rebalances during the drain, with partitions to spread.
    const rebalanceShape: DatasetShape = { ...defaultShape(records * 3), partitions: 8 };
    say(`rebalance: preloading ${rebalanceTopic} with ${fmt(rebalanceShape.records)} records in ${rebalanceShape.partitions} partitions …`);
    await stack.recreateTopic(rebalanceTopic, rebalanceShape.partitions);
    await stack.preload(rebalanceTopic, rebalanceShape);
    const churnDrain = { stack, table, topic: rebalanceTopic, records: rebalanceShape.records, expectation: expectationOf(rebalanceShape), brokerPid };
    const sinkDelayMs = args['sink-delay-ms'] === undefined ? 0 : positive('sink-delay-ms', args['sink-delay-ms'], 0);
    if (sinkDelayMs > 0) {
      say(`rebalance: every insert statement into ${table} waits ${sinkDelayMs} ms`);
      await stack.db.query(`CREATE OR REPLACE FUNCTION bench_slow_sink() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(${sinkDelayMs / 1000}); RETURN NULL; END $$`);
      await stack.db.query(`CREATE TRIGGER bench_slow_sink AFTER INSERT ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION bench_slow_sink()`);
    }
    const variants = [
      { variant: `before (${args['baseline-ref']}): round-robin, every buffer dropped`, cli: baselineCli(root, args['baseline-ref']!), env: {} },
      { variant: 'round-robin, kept partitions keep their buffers', cli: join(root, 'dist/cli.js'), env: { SLUICE_ASSIGNOR: 'round-robin' } },
      { variant: 'sticky, kept partitions keep their buffers', cli: join(root, 'dist/cli.js'), env: { SLUICE_ASSIGNOR: 'sticky' } },
    ];
    for (const [i, v] of variants.entries()) {
      say(`rebalance: ${v.variant}: draining while a second member joins and leaves every ${churnMs} ms`);
      const groupId = `bench-rebalance-${i}-${Date.now()}`;
      let churning: Churn | undefined;
      let joins = 0;
      const drained = await measureThroughput({
        ...churnDrain,
        name: `sluice under rebalances: ${v.variant}`,
        commitGroup: groupId,
        start: () => {
          const first = startSluice(`rebalance-${i}-a`, rebalanceTopic, table, groupId, v.env, v.cli);
          first.watch(/joined the group/, () => joins++);
          churning = churn((n) => startSluice(`rebalance-${i}-b${n}`, rebalanceTopic, table, groupId, v.env, v.cli), churnMs);
          return first;
        },
      }).finally(() => churning?.stop());
      const result: RebalanceResult = { variant: v.variant, recordsPerSec: drained.recordsPerSec, seconds: drained.seconds, joins, latency: undefined };
      say(`  ${fmt(drained.recordsPerSec)} records/s over ${drained.seconds.toFixed(1)} s, ${joins} joins of the first member`);
      if (sluiceRate !== undefined) {
        const lingerMs = 200;
        const rate = Math.round(sluiceRate * 0.5);
        let latencyJoins = 0;
        const latency = await measureLatency({
          stack,
          topic: latencyTopic,
          table: latencyTable,
          partitions: 4,
          lingerMs,
          loadShare: 0.5,
          rate,
          seconds: latencySeconds,
          // The churn starts with the run: nothing of it is left out as warm-up.
          warmupMs: 0,
          startSluice: async (linger) => {
            const latencyGroup = `bench-rebalance-latency-${i}-${Date.now()}`;
            const env = { ...v.env, SLUICE_LINGER_MS: String(linger), SLUICE_START_FROM: 'earliest' };
            const first = startSluice(`rebalance-latency-${i}-a`, latencyTopic, latencyTable, latencyGroup, env, v.cli);
            first.watch(/joined the group/, () => latencyJoins++);
            await first.waitForLine(/joined the group/, 60_000);
            const second = churn((n) => startSluice(`rebalance-latency-${i}-b${n}`, latencyTopic, latencyTable, latencyGroup, env, v.cli), churnMs);
            return {
              ...first,
              stop: async (graceMs?: number) => {
                await second.stop();
                return first.stop(graceMs);
              },
            };
          },
        });
        result.latency = { rate, achievedRate: latency.achievedRate, lingerMs, p50Ms: latency.p50Ms, p99Ms: latency.p99Ms, maxMs: latency.maxMs, joins: latencyJoins };
        say(`  at ${fmt(latency.achievedRate)} records/s (lingerMs ${lingerMs}): p50 ${latency.p50Ms.toFixed(0)} ms, p99 ${latency.p99Ms.toFixed(0)} ms, ${latencyJoins} joins`);
      }
      report.rebalance.push(result);
      await save();
    }
    if (sinkDelayMs > 0) await stack.db.query(`DROP TRIGGER IF EXISTS bench_slow_sink ON ${table}`);
  }

  const written = await save();
  say('');
  say(written.markdown);
  say(`results: ${written.files.join(', ')}`);
} finally {
  await stack.close();
}

/** An OTLP/HTTP endpoint that answers every request with 200 and keeps nothing but counts. */
async function droppingOtlpEndpoint(): Promise<{ url: string; requests: () => number; bytes: () => number; close: () => Promise<void> }> {
  let requests = 0;
  let bytes = 0;
  const server = createServer((request, response) => {
    requests++;
    request.on('data', (chunk: Buffer) => (bytes += chunk.length));
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'application/x-protobuf' });
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    requests: () => requests,
    bytes: () => bytes,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
