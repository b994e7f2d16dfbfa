/**
 * `sluice dlq replay <dlq-topic>`: puts dead-lettered records back on their source topic (or `--to`), deliberately,
 * once their cause is fixed.
 *
 * - Bounded: the DLQ's end offsets are captured when a replay begins and kept with the task (replay-store.ts);
 *   records dead-lettered later are not part of it, however often it is resumed.
 * - Exactly once per replay: records and the replay group's offsets go in one Kafka transaction
 *   (replay-publisher.ts). Run again, or resumed after a crash or SIGTERM, it goes on from those offsets.
 * - Duplicates in the DLQ (a crash between a DLQ write and an offset commit can write a record twice) are published
 *   once: a record whose source coordinates were met before in this replay is skipped. On resume the part already
 *   done is read again (without publishing) to know them, and to count exactly what was replayed and skipped.
 * - Loop guard: a record replayed `--max-replays` times already is not replayed again (parked with `--park`).
 * - Targets must be topics of the routes unless `--allow-any-topic`.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { routedTopics } from '../config/resolve-options.js';
import { pino } from 'pino';
import { closeKafkaClient, createKafkaClient } from '../consumer/kafka-client.js';
import { KafkaInspector } from '../consumer/kafka-inspector.js';
import { scanTopic, type ScannedRecord } from '../consumer/topic-scan.js';
import { selected, type DlqEntry, type DlqFilter } from '../dlq/dlq-filter.js';
import { DlqHeaders } from '../dlq/dlq-headers.js';
import { sourceCoordinates } from '../dlq/replay-record.js';
import { Attr, messagingSystem } from '../observability/semconv.js';
import { linkToRecords } from '../observability/trace-links.js';
import { startTelemetry } from '../observability/telemetry.js';
import { SpanKind, withSpan } from '../observability/tracing.js';
import { ReplayStore, type ReplayTask } from '../sinks/replay-store.js';
import { ConfigError, ErrorCodes, SluiceError, errorMessage } from '../errors.js';
import { ExitCodes } from './exit-codes.js';
import { escapeControls } from './dlq-command.js';
import { kafkaReplayWriter, postgresReplayWriter, type ReplayItem } from './replay-writers.js';
import type { Settings } from './settings.js';
import { scanProgress, taskProgress, type TaskProgress } from './task-progress.js';
import { stderrTerminal, stdoutTerminal } from './terminal.js';

export interface ReplayRequest {
  dlqTopic: string;
  filter: DlqFilter;
  /** Publish here instead of each record's source topic. */
  to?: string;
  allowAnyTopic: boolean;
  maxReplays: number;
  park?: string;
  /** Records per second, at most. */
  rate?: number;
  /** Replay at most this many records in this run. */
  limit?: number;
  replayId?: string;
  dryRun: boolean;
  /** Write the records through their routes straight into PostgreSQL, instead of publishing them again. */
  intoPostgres?: boolean;
  /** Only report the replay's task: selected, done, remaining. */
  statusOnly?: boolean;
}

export type SkipReason = 'duplicate' | 'loop-guard' | 'unknown-source' | 'failed-again';

export interface ReplaySummary {
  replayId: string;
  dlqTopic: string;
  state: 'running' | 'done' | 'dry-run';
  selected: number;
  replayed: number;
  /** Of `replayed`, in this run. */
  replayedNow: number;
  skipped: Partial<Record<SkipReason, number>>;
  parked: number;
  remaining: number;
  /** Target topic → records (the whole selection for a dry run). */
  targets: Record<string, number>;
  reasons: Record<string, number>;
  recordsPerSecond?: number;
  /** Stopped by SIGTERM or SIGINT before the end: run the same command again to resume. */
  interrupted?: boolean;
  /** Into PostgreSQL: records that failed again (in this run), reported, and parked with --park. */
  failed: number;
  /** The first of them, as DLQ `partition:offset`. */
  failedRecords: string[];
}

/** A replay's id: given, or derived from what it selects and where it sends, so that running it again resumes it. */
export function replayIdOf(request: ReplayRequest): string {
  if (request.replayId) return request.replayId;
  return `r-${createHash('sha256').update(JSON.stringify(definitionOf(request))).digest('hex').slice(0, 12)}`;
}

/** What a replay selects and where it sends, as JSON (offset ranges as text). */
function definitionOf(request: ReplayRequest): Record<string, unknown> {
  const definition = {
    dlqTopic: request.dlqTopic,
    filter: request.filter,
    to: request.to ?? null,
    maxReplays: request.maxReplays,
    park: request.park ?? null,
    ...(request.intoPostgres ? { into: 'postgres' } : {}),
  };
  return JSON.parse(JSON.stringify(definition, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Record<string, unknown>;
}

/** What a replay does with one selected record, given the source coordinates met so far (which this adds to). */
function decide(entry: DlqEntry, request: ReplayRequest, seen: Set<string>): { target: string } | { skip: SkipReason; park: boolean } {
  const coordinates = sourceCoordinates(entry);
  if (coordinates !== undefined) {
    if (seen.has(coordinates)) return { skip: 'duplicate', park: false };
    seen.add(coordinates);
  }
  if (entry.origin.replayCount >= request.maxReplays) return { skip: 'loop-guard', park: request.park !== undefined };
  const target = request.to ?? entry.origin.topic;
  return target === undefined ? { skip: 'unknown-source', park: false } : { target };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function replay(settings: Settings, request: ReplayRequest, progress: TaskProgress): Promise<ReplaySummary> {
  const options = settings.resolved;
  const quiet = pino({ level: 'silent' });
  const replayId = replayIdOf(request);
  const kafka = createKafkaClient(options, `${options.kafka.clientId}-replay`, quiet, 'error');
  const inspector = await KafkaInspector.connect(options, quiet);
  const db = new pg.Client({ connectionString: options.database.url, application_name: `sluice replay ${replayId}` });
  const store = new ReplayStore();
  const entriesOf = (records: ScannedRecord[]) => records.flatMap((r) => selected(request.filter, r) ?? []);
  try {
    await db.connect();
    let task = await store.load(db, replayId);
    if (request.statusOnly) {
      if (!task) throw new ReplayRefused(`no replay ${replayId} has started (pass the filters it was started with, or --replay-id)`);
      return finish({ replayId, dlqTopic: request.dlqTopic, state: task.state, selected: 0, replayed: 0, replayedNow: 0, skipped: {}, parked: 0, remaining: 0, targets: {}, reasons: {}, failed: 0, failedRecords: [] }, task, task.state);
    }
    const summary: ReplaySummary = {
      replayId,
      dlqTopic: request.dlqTopic,
      state: 'running',
      selected: 0,
      replayed: 0,
      replayedNow: 0,
      skipped: {},
      parked: 0,
      remaining: 0,
      targets: {},
      reasons: {},
      failed: 0,
      failedRecords: [],
    };
    if (!task) {
      // A new replay: capture the DLQ's end, and go through the selection once (a dry run stops here).
      const endOffsets = Object.fromEntries((await inspector.partitionOffsets(request.dlqTopic)).map((p) => [String(p.partition), p.logEnd]));
      const seen = new Set<string>();
      const sources = new Set<string>();
      const onProgress = scanProgress(progress, `selecting from ${request.dlqTopic}`);
      await scanTopic(kafka, request.dlqTopic, { to: toMap(endOffsets), onProgress }, (records) => {
        for (const entry of entriesOf(records)) {
          summary.selected++;
          if (entry.origin.topic !== undefined) sources.add(entry.origin.topic);
          const { errorCode, errorClass, sqlState } = entry.origin;
          const reason = [errorCode ?? errorClass ?? '(none)', sqlState].filter(Boolean).join(' ');
          summary.reasons[reason] = (summary.reasons[reason] ?? 0) + 1;
          const decision = decide(entry, request, seen);
          if ('target' in decision) summary.targets[decision.target] = (summary.targets[decision.target] ?? 0) + 1;
          else summary.skipped[decision.skip] = (summary.skipped[decision.skip] ?? 0) + 1;
        }
      });
      progress.end();
      if (request.intoPostgres && request.to !== undefined && sources.size > 1) {
        throw new ReplayRefused(
          `--into-postgres --to ${request.to}: the selection comes from ${sources.size} source topics (${[...sources].join(', ')}), whose partitions and offsets ` +
            'would collide in one route; select one source topic (--source-topic)',
        );
      }
      const routed = new Set(routedTopics(options));
      const refused = Object.keys(summary.targets).filter((t) => !routed.has(t));
      if (refused.length > 0 && request.intoPostgres) {
        throw new ReplayRefused(`no route writes ${refused.join(', ')}: --into-postgres writes through the routes (they read ${[...routed].join(', ') || 'nothing'})`);
      }
      if (refused.length > 0 && !request.allowAnyTopic) {
        throw new ReplayRefused(
          `the selection would publish to ${refused.join(', ')}, which no route reads (routes read ${[...routed].join(', ') || 'nothing'}): ` +
            'check the selection, or pass --allow-any-topic',
        );
      }
      if (request.park !== undefined && (await inspector.topics([request.park]))[0]!.partitions === undefined) {
        throw new ReplayRefused(`--park ${request.park}: the topic does not exist; create it first`);
      }
      if (request.dryRun) {
        summary.state = 'dry-run';
        summary.remaining = summary.selected;
        return summary;
      }
      await store.create(db, { replayId, dlqTopic: request.dlqTopic, definition: definitionOf(request), endOffsets, selected: summary.selected });
      task = (await store.load(db, replayId))!;
    }
    // A replay id names one selection: resuming it with another would go on from offsets that mean something else.
    const asked = definitionOf(request);
    if (canonical(task.definition) !== canonical(asked)) {
      throw new ReplayRefused(
        `replay ${replayId} was started as ${JSON.stringify(task.definition)}; this command asks for ${JSON.stringify(asked)}: ` +
          'run it with the same topic, filters and options, or give another --replay-id',
      );
    }
    summary.selected = task.selected;
    if (request.dryRun || task.state === 'done') {
      return finish(summary, task, request.dryRun ? 'dry-run' : 'done');
    }

    const writer = request.intoPostgres
      ? await postgresReplayWriter(options, replayId, request.dlqTopic, request.park, quiet)
      : await kafkaReplayWriter(options, replayId, request.dlqTopic, inspector, quiet);
    try {
      const end = toMap(task.endOffsets);
      // Fenced first: a run of the same replay still going can commit nothing more, so where it resumes is final.
      // Everything before was written (or skipped) in a committed transaction.
      const resume = await writer.start([...end.keys()]);
      const from = new Map([...end.keys()].map((p) => [p, resume.get(p) ?? '0']));
      const position = new Map(from);
      const seen = new Set<string>();
      const counts = { replayed: 0, skipped: {} as Partial<Record<SkipReason, number>> };
      const count = (decision: ReturnType<typeof decide>) => {
        if ('target' in decision) counts.replayed++;
        else counts.skipped[decision.skip] = (counts.skipped[decision.skip] ?? 0) + 1;
      };
      // The part already done, read again: its source coordinates (for duplicates later on) and exact counts.
      if ([...from.values()].some((o) => o !== '0')) {
        const onProgress = scanProgress(progress, 'reading the part already done');
        await scanTopic(kafka, request.dlqTopic, { to: from, onProgress }, (records) => {
          for (const entry of entriesOf(records)) count(decide(entry, request, seen));
        });
        progress.end();
        // Reading again tells what was sent, not what failed to write: that count comes from the task, as the
        // earlier runs left it (a run killed between a commit and this update undercounts that commit's failures).
        const failedBefore = task.skipped['failed-again'] ?? 0;
        counts.replayed -= failedBefore;
        if (failedBefore > 0) counts.skipped['failed-again'] = failedBefore;
      }
      const done = () => counts.replayed + Object.values(counts.skipped).reduce((a, b) => a + b, 0);

      let stopping = false;
      let stoppedEarly = false;
      const onSignal = () => {
        stopping = true;
        progress.note('stopping after the transaction in flight; run the same command again to resume');
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
      const startedAt = Date.now();
      /** Records sent in this run, failed ones included: what --limit counts. */
      let sentNow = 0;
      progress.begin(`replay ${replayId}`, task.selected, { done: done() });
      try {
        await scanTopic(kafka, request.dlqTopic, { from, to: end }, async (records, heartbeat) => {
          // Every record of the fetch moves the group's offset, selected or not. A transaction costs a few round trips:
          // chunks of a few thousand records, or a second's worth under --rate.
          const chunkSize = Math.max(1, Math.min(5_000, request.rate ?? 5_000));
          for (let i = 0; i < records.length; i += chunkSize) {
            if (stopping || (request.limit !== undefined && sentNow >= request.limit)) {
              stoppedEarly = true;
              return 'stop';
            }
            const chunk = records.slice(i, i + chunkSize);
            const items: ReplayItem[] = [];
            let through: (typeof chunk)[number] | undefined;
            let parked = 0;
            let published = 0;
            // The limit cuts the chunk: the run ends with it, since records after the cut are not written (a later
            // chunk's commit would move the progress past them).
            let cut = false;
            for (const raw of chunk) {
              if (request.limit !== undefined && sentNow + published >= request.limit) {
                cut = true;
                break;
              }
              through = raw;
              const entry = selected(request.filter, raw);
              if (!entry) continue;
              const decision = decide(entry, request, seen);
              count(decision);
              if ('target' in decision) {
                items.push({ entry, target: decision.target });
                published++;
              } else if (decision.park) {
                items.push({ entry, park: request.park! });
                parked++;
              }
            }
            if (!through) {
              stoppedEarly = true;
              return 'stop';
            }
            const partition = through.partition;
            const next = String(BigInt(through.offset) + 1n);
            const stamp = { replayId, dlqTopic: request.dlqTopic, replayedAt: new Date() };
            const { failed } = await traceReplayCommit(request, replayId, items, () => writer.commit(partition, position.get(partition) ?? '0', next, items, stamp));
            position.set(partition, next);
            sentNow += published;
            summary.replayedNow += published - failed.length;
            if (failed.length > 0) {
              counts.replayed -= failed.length;
              counts.skipped['failed-again'] = (counts.skipped['failed-again'] ?? 0) + failed.length;
            }
            summary.failed += failed.length;
            for (const f of failed) if (summary.failedRecords.length < 20) summary.failedRecords.push(`${f.partition}:${f.offset}`);
            summary.parked += parked + (request.park ? failed.length : 0);
            await store.update(db, replayId, { replayed: counts.replayed, skipped: counts.skipped, state: 'running' });
            progress.advance(done());
            if (cut) {
              stoppedEarly = true;
              return 'stop';
            }
            if (request.rate !== undefined) {
              // Paced: no faster than --rate on average since the start, with heartbeats while waiting.
              for (let wait = startedAt + (summary.replayedNow / request.rate) * 1000 - Date.now(); wait > 0; wait -= 1000) {
                await sleep(Math.min(wait, 1000));
                await heartbeat();
              }
            }
          }
          return undefined;
        });
      } finally {
        progress.end();
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
      const seconds = (Date.now() - startedAt) / 1000;
      summary.recordsPerSecond = seconds > 0 ? Math.round(summary.replayedNow / seconds) : 0;
      // Done when the scan reached the end offsets the replay began with, whatever the counts say (retention may
      // have removed records of the selection meanwhile).
      const state = stoppedEarly ? 'running' : 'done';
      summary.interrupted = stopping;
      await store.update(db, replayId, { replayed: counts.replayed, skipped: counts.skipped, state });
      return finish(summary, (await store.load(db, replayId))!, state);
    } finally {
      await writer.close();
    }
  } finally {
    await db.end();
    await inspector.close();
    await closeKafkaClient(kafka); // every scan disconnected its consumer and admin
  }
}

/**
 * One transaction of a replay, traced when tracing is on: a `replay <dlq topic>` span linked to each record's own
 * producer context (its `traceparent`) and to the flush that dead-lettered it (`sluice.error.traceparent`).
 */
function traceReplayCommit<T>(request: ReplayRequest, replayId: string, items: ReplayItem[], commit: () => Promise<T>): Promise<T> {
  return withSpan(
    `replay ${request.dlqTopic}`,
    {
      kind: request.intoPostgres ? SpanKind.INTERNAL : SpanKind.PRODUCER,
      attributes: { [Attr.messagingSystem]: messagingSystem, [Attr.replayId]: replayId, [Attr.dlqTopic]: request.dlqTopic, [Attr.batchMessageCount]: items.length },
    },
    (span) => {
      linkToRecords(
        span,
        items.map((i) => i.entry),
        ['traceparent', DlqHeaders.traceparent],
      );
      return commit();
    },
  );
}

function finish(summary: ReplaySummary, task: ReplayTask, state: ReplaySummary['state']): ReplaySummary {
  summary.state = state;
  summary.selected = task.selected;
  summary.replayed = task.replayed;
  summary.skipped = task.skipped as ReplaySummary['skipped'];
  const skipped = Object.values(task.skipped).reduce((a, b) => a + b, 0);
  summary.remaining = Math.max(0, task.selected - task.replayed - skipped);
  return summary;
}

/** JSON with keys in order: PostgreSQL's jsonb keeps its own order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function toMap(offsets: Record<string, string>): Map<number, string> {
  return new Map(Object.entries(offsets).map(([p, o]) => [Number(p), o]));
}

/** The replay would do something not asked for (publish to a topic no route reads). */
export class ReplayRefused extends SluiceError {
  constructor(message: string) {
    super(ErrorCodes.deadLetter, message);
  }
}

export async function replayCommand(settings: Settings, request: ReplayRequest, json: boolean): Promise<number> {
  let summary: ReplaySummary;
  const progress = taskProgress(stderrTerminal());
  // Traces of the replay's transactions, when the OTEL_* variables ask for them (as for the service).
  let telemetry;
  try {
    telemetry = await startTelemetry(pino({ level: 'silent' }), { serveMetrics: false });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`sluice: ${error.message}\n`);
    return ExitCodes.usage;
  }
  try {
    summary = await replay(settings, request, progress);
  } catch (error) {
    if (error instanceof ReplayRefused) {
      process.stderr.write(`sluice: ${error.message}\n`);
      return ExitCodes.usage;
    }
    throw error;
  } finally {
    progress.end();
    await telemetry.shutdown().catch((error: unknown) => process.stderr.write(`sluice: exporting the replay's traces failed: ${errorMessage(error)}\n`));
  }
  if (json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  else {
    const out = stdoutTerminal();
    const skipped = Object.entries(summary.skipped).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
    const lines = [
      `replay ${out.paint('bold', summary.replayId)} of ${summary.dlqTopic}: ${out.paint(summary.state === 'done' ? 'green' : 'yellow', summary.state)}`,
      `  selected ${summary.selected}, replayed ${summary.replayed} (${summary.replayedNow} in this run${summary.recordsPerSecond !== undefined ? `, ${summary.recordsPerSecond} records/s` : ''}), skipped: ${skipped}, parked ${summary.parked}, remaining ${summary.remaining}`,
    ];
    if (summary.failed > 0) lines.push(`  ${out.paint('red', 'failed again')}: ${summary.failed} (DLQ ${summary.failedRecords.join(', ')}${summary.failed > summary.failedRecords.length ? ', …' : ''})`);
    if (Object.keys(summary.targets).length > 0) lines.push(`  to: ${Object.entries(summary.targets).map(([t, n]) => `${t} ${n}`).join(', ')}`);
    if (Object.keys(summary.reasons).length > 0) lines.push(`  reasons: ${escapeControls(Object.entries(summary.reasons).map(([r, n]) => `${r} ${n}`).join(', '))}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  // A replay stopped by a signal is not done: a job runner must not take it for finished.
  return summary.interrupted ? ExitCodes.failed : ExitCodes.ok;
}
