/**
 * `sluice dlq stats | list | show`: what is in a DLQ topic, in any dialect (dlq-origin.ts), read up to the end it
 * had when the command began. Nothing is consumed for good and nothing is committed: sluice never consumes its own
 * DLQ on its own, and these commands only look.
 */
import { pino } from 'pino';
import { closeKafkaClient, createKafkaClient } from '../consumer/kafka-client.js';
import { scanTopic, type ScannedRecord } from '../consumer/topic-scan.js';
import { selected, type DlqEntry, type DlqFilter } from '../dlq/dlq-filter.js';
import { truncateUtf8 } from '../dlq/dlq-headers.js';
import { ExitCodes } from './exit-codes.js';
import type { Settings } from './settings.js';
import { scanProgress, taskProgress, type TaskProgress } from './task-progress.js';
import { stderrTerminal, stdoutTerminal } from './terminal.js';

/**
 * Reads the DLQ topic and hands over every record the filter selects, batch by batch; `progress` (when given) shows
 * how far the reading is.
 */
async function scanDlq(
  settings: Settings,
  topic: string,
  filter: DlqFilter,
  onEntries: (entries: DlqEntry[]) => void | Promise<void>,
  options: { from?: Map<number, string>; to?: Map<number, string>; progress?: TaskProgress } = {},
): Promise<void> {
  const kafka = createKafkaClient(settings.resolved, `${settings.resolved.kafka.clientId}-dlq-tools`, pino({ level: 'silent' }), 'error');
  const { progress, ...range } = options;
  const onProgress = progress && scanProgress(progress, `reading ${topic}`);
  try {
    await scanTopic(kafka, topic, { ...range, ...(onProgress ? { onProgress } : {}) }, (records) => deliver(records));
  } finally {
    progress?.end();
    await closeKafkaClient(kafka); // the scan disconnected its consumer and admin
  }
  async function deliver(records: ScannedRecord[]): Promise<void> {
    const entries: DlqEntry[] = [];
    for (const r of records) {
      const entry = selected(filter, r);
      if (entry) entries.push(entry);
    }
    if (entries.length > 0) await onEntries(entries);
  }
}

export interface DlqStats {
  topic: string;
  records: number;
  /** When the first and the last selected record were dead-lettered (ISO 8601). */
  first: string | undefined;
  last: string | undefined;
  byErrorCode: Record<string, number>;
  byErrorClass: Record<string, number>;
  bySqlState: Record<string, number>;
  bySource: Record<string, number>;
  byDialect: Record<string, number>;
  byAge: Record<string, number>;
  byReplayCount: Record<string, number>;
}

const ageBuckets: Array<[string, number]> = [
  ['< 1 h', 3_600_000],
  ['< 1 d', 86_400_000],
  ['< 7 d', 7 * 86_400_000],
  ['< 30 d', 30 * 86_400_000],
];

export async function dlqStats(settings: Settings, topic: string, filter: DlqFilter, options: { progress?: TaskProgress; nowMs?: number } = {}): Promise<DlqStats> {
  const nowMs = options.nowMs ?? Date.now();
  const stats: DlqStats = {
    topic,
    records: 0,
    first: undefined,
    last: undefined,
    byErrorCode: {},
    byErrorClass: {},
    bySqlState: {},
    bySource: {},
    byDialect: {},
    byAge: {},
    byReplayCount: {},
  };
  let firstMs = Infinity;
  let lastMs = -Infinity;
  const count = (into: Record<string, number>, key: string) => (into[key] = (into[key] ?? 0) + 1);
  await scanDlq(settings, topic, filter, (entries) => {
    for (const { origin, timestamp } of entries) {
      stats.records++;
      const ms = Number(timestamp);
      firstMs = Math.min(firstMs, ms);
      lastMs = Math.max(lastMs, ms);
      count(stats.byErrorCode, origin.errorCode ?? '(none)');
      count(stats.byErrorClass, origin.errorClass ?? '(none)');
      count(stats.bySqlState, origin.sqlState ?? '(none)');
      count(stats.bySource, origin.topic === undefined ? '(unknown)' : `${origin.topic}[${origin.partition ?? '?'}]`);
      count(stats.byDialect, origin.dialect);
      count(stats.byAge, ageBuckets.find(([, limit]) => nowMs - ms < limit)?.[0] ?? '≥ 30 d');
      count(stats.byReplayCount, String(origin.replayCount));
    }
  }, options.progress ? { progress: options.progress } : {});
  if (stats.records > 0) {
    stats.first = new Date(firstMs).toISOString();
    stats.last = new Date(lastMs).toISOString();
  }
  return stats;
}

export async function dlqStatsCommand(settings: Settings, topic: string, filter: DlqFilter, json: boolean): Promise<number> {
  const stats = await dlqStats(settings, topic, filter, { progress: taskProgress(stderrTerminal()) });
  if (json) {
    process.stdout.write(`${JSON.stringify(stats, null, 2)}\n`);
    return ExitCodes.ok;
  }
  const out = stdoutTerminal();
  const lines = [`${out.paint('bold', stats.topic)}: ${stats.records} record(s)${stats.first ? `, dead-lettered from ${stats.first} to ${stats.last}` : ''}`];
  const section = (title: string, counts: Record<string, number>) => {
    const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
    if (entries.length === 0) return;
    lines.push(out.paint('bold', `${title}:`));
    const width = Math.max(...entries.map(([k]) => k.length));
    const most = entries[0]![1];
    for (const [key, n] of entries) {
      const bar = '█'.repeat(Math.max(1, Math.round((n / most) * 30)));
      lines.push(`  ${escapeControls(key).padEnd(width)}  ${String(n).padStart(7)}  ${out.paint('cyan', bar)}`);
    }
  };
  section('by error code', stats.byErrorCode);
  section('by error class', stats.byErrorClass);
  section('by SQLSTATE', stats.bySqlState);
  section('by source', stats.bySource);
  section('by age', stats.byAge);
  section('by times replayed', stats.byReplayCount);
  section('by dialect', stats.byDialect);
  process.stdout.write(`${lines.join('\n')}\n`);
  return ExitCodes.ok;
}

/** A record as `list` and `show` print it: provenance, and key and value readable and cut to `maxBytes`. */
export function describeEntry(entry: DlqEntry, maxBytes: number): Record<string, unknown> {
  return {
    dlq: `${entry.partition}:${entry.offset}`,
    deadLetteredAt: new Date(Number(entry.timestamp)).toISOString(),
    ...entry.origin,
    key: readable(entry.key, maxBytes),
    value: readable(entry.value, maxBytes),
  };
}

/**
 * Text an operator's terminal can show safely: UTF-8 when the bytes are valid UTF-8, cut to `maxBytes` at a character
 * boundary, with control characters escaped (a record's bytes must not drive the terminal); hex otherwise. null stays
 * null.
 */
export function readable(bytes: Buffer | null, maxBytes: number): string | null {
  if (bytes === null) return null;
  const isText = Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes);
  if (!isText) {
    const shown = bytes.subarray(0, Math.floor(maxBytes / 2));
    return `0x${shown.toString('hex')}${shown.length < bytes.length ? `… (${bytes.length} bytes)` : ''}`;
  }
  const cut = truncateUtf8(bytes.toString('utf8'), maxBytes);
  const escaped = escapeControls(cut);
  return bytes.length > maxBytes ? `${escaped} (${bytes.length} bytes)` : escaped;
}

/** C0 and C1 control characters (tab aside) as \u escapes. */
export function escapeControls(text: string): string {
  return text.replace(/[\u0000-\u0008\u000A-\u001F\u007F-\u009F]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export async function dlqListCommand(settings: Settings, topic: string, filter: DlqFilter, limit: number, json: boolean): Promise<number> {
  const shown: DlqEntry[] = [];
  let selected = 0;
  const order = (a: DlqEntry, b: DlqEntry) => Number(a.timestamp) - Number(b.timestamp) || a.partition - b.partition || (BigInt(a.offset) < BigInt(b.offset) ? -1 : 1);
  await scanDlq(settings, topic, filter, (entries) => {
    selected += entries.length;
    // The oldest `limit` across partitions, whatever order the partitions are read in; memory stays at `limit`.
    shown.push(...entries);
    if (shown.length > limit) shown.sort(order).splice(limit);
  }, { progress: taskProgress(stderrTerminal()) });
  shown.sort(order);
  if (json) {
    process.stdout.write(`${JSON.stringify({ topic, selected, shown: shown.map((e) => describeEntry(e, 1024)) }, null, 2)}\n`);
    return ExitCodes.ok;
  }
  const out = stdoutTerminal();
  const lines = shown.map((e) => {
    const o = e.origin;
    const source = o.topic === undefined ? '(unknown source)' : `${o.topic}[${o.partition ?? '?'}]@${o.offset ?? '?'}`;
    const why = [o.errorCode, o.sqlState].filter(Boolean).join(' ');
    const message = escapeControls((o.errorMessage ?? '').replace(/[ \t\r\n]+/g, ' ').slice(0, 100).trimEnd());
    const at = `${out.paint('bold', `${e.partition}:${e.offset}`)}  ${new Date(Number(e.timestamp)).toISOString()}`;
    const value = `${out.paint('dim', 'key')} ${readable(e.key, 60)}  ${out.paint('dim', 'value')} ${readable(e.value, 120)}`;
    return `${at}  ${escapeControls(source)}  ${out.paint('red', escapeControls(why))}  ${message}\n    ${value}`;
  });
  lines.push(`${shown.length} of ${selected} selected record(s) shown${selected > shown.length ? ` (--limit ${limit})` : ''}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return ExitCodes.ok;
}

export async function dlqShowCommand(settings: Settings, topic: string, partition: number, offset: string, json: boolean): Promise<number> {
  let found: DlqEntry | undefined;
  await scanDlq(settings, topic, {}, (entries) => {
    found ??= entries.find((e) => e.partition === partition && e.offset === offset);
  }, { from: new Map([[partition, offset]]), to: new Map([[partition, String(BigInt(offset) + 1n)]]) });
  if (!found) {
    process.stderr.write(`sluice: ${topic} has no record at partition ${partition}, offset ${offset}\n`);
    return ExitCodes.failed;
  }
  const described = { ...describeEntry(found, 64 * 1024), headers: headerTexts(found) };
  if (json) process.stdout.write(`${JSON.stringify(described, null, 2)}\n`);
  else {
    const out = stdoutTerminal();
    const lines = Object.entries(described)
      .filter(([name]) => name !== 'headers')
      .map(([name, value]) => `${out.paint('bold', name.padEnd(16))} ${value === undefined ? '-' : escapeControls(String(value))}`);
    lines.push(out.paint('bold', 'headers:'));
    for (const [name, value] of Object.entries(described.headers)) lines.push(`  ${escapeControls(name)}: ${value}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return ExitCodes.ok;
}

function headerTexts(entry: DlqEntry): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(entry.headers)) {
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    out[name] = values.map((v) => (v === null ? '(null)' : Buffer.isBuffer(v) ? (readable(v, 2048) ?? '') : escapeControls(v))).join(' | ');
  }
  return out;
}
