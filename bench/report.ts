/** Turns a run into bench/results/<run>.md (the table), <run>.json (raw numbers) and <run>-latency.svg (the chart). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { LatencyResult } from './latency.js';
import type { ThroughputResult } from './measure.js';
import type { RebalanceResult } from './rebalance.js';

export interface LimitResult {
  name: string;
  kind: 'consume' | 'copy' | 'upsert';
  rows: number;
  records: number;
  seconds: number;
  recordsPerSec: number;
  /** CPU seconds per million records of the limit's own process, the broker and PostgreSQL, over the timed part. */
  cpuSecondsPerMillion: number | null;
}

export interface BenchReport {
  run: string;
  startedAt: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; postgres: string; kafka: string };
  dataset: { records: number; partitions: number; repeatShare: number; payloadBytes: number; valueBytes: number; distinctKeys: number };
  limits: LimitResult[];
  contenders: ThroughputResult[];
  memory: Array<{ backlog: number; peakRssBytes: number | null }>;
  latency: LatencyResult[];
  rebalance: RebalanceResult[];
}

const int = (n: number) => Math.round(n).toLocaleString('en');
const mb = (bytes: number | null) => (bytes === null ? '—' : `${Math.round(bytes / 2 ** 20)} MB`);
const ms = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '—' : `${Math.round(n)} ms`);
const fmtSeconds = (milliseconds: number) => `${(milliseconds / 1000).toLocaleString('en')} s`;

/** The pipeline limit: the slower of what Kafka can deliver and what PostgreSQL can upsert. */
export function pipelineLimit(limits: LimitResult[]): number | undefined {
  const consume = limits.filter((l) => l.kind === 'consume').map((l) => l.recordsPerSec);
  const upsert = limits.filter((l) => l.kind === 'upsert').map((l) => l.recordsPerSec);
  if (consume.length === 0 || upsert.length === 0) return undefined;
  return Math.min(Math.max(...consume), Math.max(...upsert));
}

/** Consume and upsert run on the same cores in a pipeline: the rate at which both CPU costs fit on the machine. */
export function sharedCoreBound(r: BenchReport): number | undefined {
  const best = (kind: LimitResult['kind']) => r.limits.filter((l) => l.kind === kind).sort((a, b) => b.recordsPerSec - a.recordsPerSec)[0];
  const consume = best('consume')?.cpuSecondsPerMillion;
  const upsert = best('upsert')?.cpuSecondsPerMillion;
  if (consume == null || upsert == null) return undefined;
  return (r.machine.cpus * 1e6) / (consume + upsert);
}

export function markdown(r: BenchReport): string {
  const limit = pipelineLimit(r.limits);
  const sluice = r.contenders.find((c) => c.name === 'sluice');
  const lines: string[] = [];
  lines.push(`### Benchmark (${r.run} run, ${r.startedAt.slice(0, 10)})`);
  lines.push('');
  lines.push(
    `Machine: ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB; Node ${r.machine.node}, ` +
      `PostgreSQL ${r.machine.postgres}, ${r.machine.kafka}. Data: ${int(r.dataset.records)} records in ${r.dataset.partitions} partitions, ` +
      `${int(r.dataset.distinctKeys)} distinct keys (~${Math.round(r.dataset.repeatShare * 100)} % repeats), ` +
      `~${r.dataset.payloadBytes}-byte JSON payloads in Kafka Connect's JSON envelope (~${r.dataset.valueBytes} bytes per value).`,
  );
  lines.push('');
  lines.push('| contender | records/s | vs limit | vs sluice | CPU-s per M records | peak RSS | p50 | p99 |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const l of r.limits) {
    const extra = l.kind === 'copy' ? ` (${int(l.rows)} final rows)` : '';
    lines.push(`| limit: ${l.name}${extra} | ${int(l.recordsPerSec)} | | | ${l.cpuSecondsPerMillion === null ? '—' : l.cpuSecondsPerMillion.toFixed(1)} | | | |`);
  }
  if (limit !== undefined) lines.push(`| **pipeline limit** (lower of consume and best upsert) | **${int(limit)}** | 100 % | | | | | |`);
  const shared = sharedCoreBound(r);
  if (shared !== undefined) {
    lines.push(`| pipeline limit on shared cores³ | ${int(shared)} | ${limit ? `${Math.round((shared / limit) * 100)} %` : ''} | | | | | |`);
  }
  const atHighestLoad = (linger: number) => r.latency.filter((l) => l.lingerMs === linger).sort((a, b) => b.loadShare - a.loadShare)[0];
  for (const c of r.contenders) {
    const share = limit === undefined ? '' : `${Math.round((c.recordsPerSec / limit) * 100)} %`;
    const vsSluice = sluice && c !== sluice ? `${(sluice.recordsPerSec / c.recordsPerSec).toFixed(1)}× slower` : '';
    let lat = ['', ''];
    if (c === sluice) {
      const l = atHighestLoad(50);
      if (l) lat = [`${ms(l.p50Ms)}¹`, `${ms(l.p99Ms)}¹`];
    }
    lines.push(
      `| ${c.name}${c.note ? `²` : ''} | ${int(c.recordsPerSec)} | ${share} | ${vsSluice} | ${c.cpuSecondsPerMillion === null ? '—' : c.cpuSecondsPerMillion.toFixed(1)} | ${mb(c.peakRssBytes)} | ${lat[0]} | ${lat[1]} |`,
    );
  }
  lines.push('');
  const highest = atHighestLoad(50);
  if (highest) lines.push(`¹ lingerMs 50 at ${Math.round(highest.loadShare * 100)} % of sluice's maximum rate; all latency runs below.`);
  for (const c of r.contenders) if (c.note) lines.push(`² ${c.name}: ${c.note}.`);
  if (shared !== undefined) {
    lines.push(
      `³ the ${r.machine.cpus} cores divided by the CPU that consuming and upserting one record cost when each was measured alone ` +
        '(fastest consume + fastest upsert, client, broker and PostgreSQL together): the rate at which both fit on this machine at once.',
    );
  }
  lines.push('');
  if (r.latency.length > 0) {
    lines.push('| lingerMs | load | records/s offered | p50 | p99 | max | p99 target (lingerMs + 100 ms) | sluice\'s share⁴: p50 | sluice\'s p99 | warm-up⁵: max |');
    lines.push('|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|');
    for (const l of r.latency) {
      const target = l.lingerMs + 100;
      lines.push(
        `| ${l.lingerMs} | ${Math.round(l.loadShare * 100)} % | ${int(l.achievedRate)} | ${ms(l.p50Ms)} | ${ms(l.p99Ms)} | ${ms(l.maxMs)} | ${l.p99Ms <= target ? 'met' : 'missed'} (${target} ms) | ${ms(l.p50FromAppendMs)} | ${ms(l.p99FromAppendMs)} | ${ms(l.warmupMaxMs)} |`,
      );
    }
    lines.push('');
    lines.push("⁴ from the broker's append time (the latency topic's `LogAppendTime`) to the row written: fetch, linger and flush, without the producer's own time.");
    const warmup = r.latency[0]?.warmupMs;
    if (warmup !== undefined) lines.push(`⁵ percentiles leave out records sent in each run's first ${fmtSeconds(warmup)} (a new process's first batches run in V8's interpreter, and new PostgreSQL connections fill their caches); this is their worst latency.`);
    lines.push('');
  }
  if ((r.rebalance ?? []).length > 0) {
    lines.push('Under rebalances (a second member joins and leaves every few seconds; lingerMs 200 for the latency run):');
    lines.push('');
    lines.push('| variant | drain records/s | rebalances in the drain | load offered | p50 | p99 | max | rebalances under load | p99 target (2 × lingerMs + 1 s) |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const b of r.rebalance) {
      const l = b.latency;
      const target = l ? 2 * l.lingerMs + 1_000 : undefined;
      lines.push(
        `| ${b.variant} | ${int(b.recordsPerSec)} | ${b.joins - 1} | ${l ? int(l.achievedRate) : '—'} | ${l ? ms(l.p50Ms) : '—'} | ${l ? ms(l.p99Ms) : '—'} | ${l ? ms(l.maxMs) : '—'} | ${l ? l.joins - 1 : '—'} | ${l && target ? `${l.p99Ms <= target ? 'met' : 'missed'} (${target} ms)` : ''} |`,
      );
    }
    lines.push('');
  }
  if (r.memory.length > 0) {
    lines.push('| backlog drained by sluice | peak RSS |');
    lines.push('|---:|---:|');
    for (const m of r.memory) lines.push(`| ${int(m.backlog)} records | ${mb(m.peakRssBytes)} |`);
    lines.push('');
  }
  return lines.join('\n');
}

async function latencyChart(r: BenchReport): Promise<string> {
  const values = r.latency.flatMap((l) =>
    (['p50Ms', 'p99Ms', 'maxMs'] as const).map((stat) => ({
      load: Math.round(l.achievedRate),
      latency: Math.round(l[stat]),
      series: `lingerMs ${l.lingerMs}, ${stat.replace('Ms', '')}`,
      linger: `lingerMs ${l.lingerMs}`,
      stat: stat.replace('Ms', ''),
    })),
  );
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: 'sluice end-to-end latency vs input rate', subtitle: `${r.machine.cpus} cores, ${r.run} run, ${r.startedAt.slice(0, 10)}` },
    width: 520,
    height: 300,
    background: 'white',
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'load', type: 'quantitative', title: 'input rate (records/s)' },
      y: { field: 'latency', type: 'quantitative', title: 'latency (ms): row written − record produced' },
      color: { field: 'linger', type: 'nominal', title: null },
      strokeDash: { field: 'stat', type: 'nominal', title: null, sort: ['p50', 'p99', 'max'] },
      detail: { field: 'series' },
    },
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

export async function writeReport(r: BenchReport, dir: string): Promise<{ markdown: string; files: string[] }> {
  let text = markdown(r);
  if (r.latency.length > 0) text += `\n![sluice latency vs input rate](${r.run}-latency.svg)\n`;
  const files = [join(dir, `${r.run}.md`), join(dir, `${r.run}.json`)];
  writeFileSync(files[0]!, `${text}\n`);
  writeFileSync(files[1]!, `${JSON.stringify({ ...r, pipelineLimit: pipelineLimit(r.limits) ?? null, sharedCoreBound: sharedCoreBound(r) ?? null }, null, 2)}\n`);
  if (r.latency.length > 0) {
    const chart = join(dir, `${r.run}-latency.svg`);
    writeFileSync(chart, await latencyChart(r));
    files.push(chart);
  }
  return { markdown: text, files };
}
