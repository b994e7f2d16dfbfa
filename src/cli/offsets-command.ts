/**
 * `sluice offsets show`: per partition of every routed topic, where the group is. Under exactly-once delivery the
 * offset that counts is the one stored with the data (sluice resumes there); the group's committed offset in Kafka
 * follows it for lag and autoscalers.
 */
import pg from 'pg';
import { routedTopics } from '../config/resolve-options.js';
import { pino } from 'pino';
import { KafkaInspector } from '../consumer/kafka-inspector.js';
import { ErrorCodes, SluiceError, errorMessage } from '../errors.js';
import { OffsetStore } from '../sinks/offset-store.js';
import { ExitCodes } from './exit-codes.js';
import type { Settings } from './settings.js';
import { table } from './table.js';
import { stdoutTerminal } from './terminal.js';

export interface PartitionPosition {
  topic: string;
  partition: number;
  /** Exactly-once: the next offset stored with the data; undefined when the group never wrote the partition. */
  stored: string | undefined;
  /** The group's committed offset in Kafka; undefined when none. */
  committed: string | undefined;
  logStart: string;
  logEnd: string;
  /** Records from where the group resumes to the log end. */
  lag: string;
}

export async function offsetPositions(settings: Settings, groupId: string): Promise<PartitionPosition[]> {
  const options = settings.resolved;
  const topics = routedTopics(options);
  const kafka = await KafkaInspector.connect(options, pino({ level: 'silent' }));
  const db = new pg.Client({ connectionString: options.database.url, application_name: 'sluice offsets' });
  try {
    await db.connect();
    const store = new OffsetStore(options.offsetsTable, groupId);
    const positions: PartitionPosition[] = [];
    for (const topic of topics) {
      const [logs, committed, stored] = await Promise.all([
        kafka.partitionOffsets(topic),
        kafka.committedOffsets(groupId, topic),
        options.delivery === 'exactly-once' ? store.stored(db, topic) : Promise.resolve(new Map<number, string | undefined>()),
      ]);
      for (const { partition, logStart, logEnd } of logs) {
        const resumeAt = (options.delivery === 'exactly-once' ? stored.get(partition) : undefined) ?? committed.get(partition) ?? logStart;
        const from = BigInt(resumeAt) < BigInt(logStart) ? BigInt(logStart) : BigInt(resumeAt);
        positions.push({
          topic,
          partition,
          stored: stored.get(partition),
          committed: committed.get(partition),
          logStart,
          logEnd,
          lag: String(BigInt(logEnd) > from ? BigInt(logEnd) - from : 0n),
        });
      }
    }
    return positions;
  } finally {
    await db.end();
    await kafka.close();
  }
}

export async function offsetsShowCommand(settings: Settings, groupId: string, json: boolean): Promise<number> {
  const positions = await offsetPositions(settings, groupId);
  if (json) {
    process.stdout.write(`${JSON.stringify({ groupId, delivery: settings.resolved.delivery, partitions: positions }, null, 2)}\n`);
    return ExitCodes.ok;
  }
  const header = ['topic', 'partition', 'stored', 'committed', 'log start', 'log end', 'lag'];
  const rows = positions.map((p) => [p.topic, String(p.partition), p.stored ?? '-', p.committed ?? '-', p.logStart, p.logEnd, p.lag]);
  process.stdout.write(`group ${groupId} (${settings.resolved.delivery})\n${table(stdoutTerminal(), header, rows)}`);
  return ExitCodes.ok;
}

export type RewindTarget = { to: 'earliest' } | { to: 'latest' } | { to: 'offset'; offset: string } | { to: 'time'; timestampMs: number };

export interface RewindRequest {
  groupId: string;
  target: RewindTarget;
  /** Only this topic (default: every routed topic). */
  topic?: string;
  /** Only these partitions of `topic`. */
  partitions?: number[];
  dryRun: boolean;
}

export interface RewoundPartition {
  topic: string;
  partition: number;
  /** Where the group would resume before: the stored offset (exactly-once) or the committed one. */
  before: string | undefined;
  after: string;
}

/**
 * Moves where the group resumes, in both places that count: the offsets stored with the data (exactly-once) and the
 * group's committed offsets in Kafka. Refused while the group has members: a running sluice would fence or overwrite
 * it. Answers each partition's before and after; `dryRun` changes nothing.
 */
export async function rewind(settings: Settings, request: RewindRequest): Promise<RewoundPartition[]> {
  const options = settings.resolved;
  const routed = routedTopics(options);
  if (request.topic !== undefined && !routed.includes(request.topic)) {
    throw new UsageError(`--topic ${request.topic} is not a topic of the routes (${routed.join(', ')})`);
  }
  const topics = request.topic !== undefined ? [request.topic] : routed;
  const kafka = await KafkaInspector.connect(options, pino({ level: 'silent' }));
  const db = new pg.Client({ connectionString: options.database.url, application_name: 'sluice offsets' });
  try {
    const group = await kafka.group(request.groupId);
    if (!['Empty', 'Dead'].includes(group.state)) {
      throw new RefusedError(
        `group ${request.groupId} has ${group.members} active member(s) (state ${group.state}): stop every sluice of the group first, then rewind`,
      );
    }
    await db.connect();
    const store = new OffsetStore(options.offsetsTable, request.groupId);
    const exactlyOnce = options.delivery === 'exactly-once';
    const result: RewoundPartition[] = [];
    const plans: Array<{ topic: string; offsets: Map<number, string> }> = [];
    for (const topic of topics) {
      const logs = await kafka.partitionOffsets(topic);
      const chosen = request.partitions ? logs.filter((l) => request.partitions!.includes(l.partition)) : logs;
      const missing = (request.partitions ?? []).filter((p) => !logs.some((l) => l.partition === p));
      if (missing.length > 0) throw new UsageError(`topic ${topic} has no partition(s) ${missing.join(', ')}`);
      const [committed, stored, atTime] = await Promise.all([
        kafka.committedOffsets(request.groupId, topic),
        exactlyOnce ? store.stored(db, topic) : Promise.resolve(new Map<number, string | undefined>()),
        request.target.to === 'time' ? kafka.offsetsAtTime(topic, request.target.timestampMs) : Promise.resolve(new Map<number, string>()),
      ]);
      const offsets = new Map<number, string>();
      for (const { partition, logStart, logEnd } of chosen) {
        const t = request.target;
        const after = t.to === 'earliest' ? logStart : t.to === 'latest' ? logEnd : t.to === 'time' ? atTime.get(partition)! : t.offset;
        if (BigInt(after) < BigInt(logStart) || BigInt(after) > BigInt(logEnd)) {
          throw new UsageError(`--to-offset ${after} is outside ${topic}[${partition}]'s log, ${logStart} to ${logEnd}`);
        }
        offsets.set(partition, after);
        result.push({ topic, partition, before: (exactlyOnce ? stored.get(partition) : undefined) ?? committed.get(partition), after });
      }
      plans.push({ topic, offsets });
    }
    if (!request.dryRun) {
      // The stored offsets first, all in one transaction: they are what sluice resumes from. Kafka's follow, for lag
      // and autoscalers; should that fail, the stored ones have moved, and running the command again is safe.
      if (exactlyOnce) {
        await db.query('BEGIN');
        try {
          for (const { topic, offsets } of plans) await store.set(db, topic, offsets);
          await db.query('COMMIT');
        } catch (error) {
          await db.query('ROLLBACK');
          throw error;
        }
      }
      try {
        for (const { topic, offsets } of plans) await kafka.setCommitted(request.groupId, topic, offsets);
      } catch (error) {
        const moved = exactlyOnce ? 'the offsets stored with the data (where sluice resumes) have moved; ' : '';
        throw new RefusedError(`setting the group's offsets in Kafka failed (${errorMessage(error)}): ${moved}run the same rewind again once the group has no members`);
      }
    }
    return result;
  } finally {
    await db.end();
    await kafka.close();
  }
}

/** The command line asked for something impossible (a topic not routed, an offset outside the log). */
export class UsageError extends SluiceError {
  constructor(message: string) {
    super(ErrorCodes.config, message);
  }
}

/** Refused as things stand (the group has active members). */
export class RefusedError extends SluiceError {
  constructor(message: string) {
    super(ErrorCodes.offsets, message, { retriable: true });
  }
}

export async function offsetsRewindCommand(settings: Settings, request: RewindRequest, json: boolean): Promise<number> {
  let rewound: RewoundPartition[];
  try {
    rewound = await rewind(settings, request);
  } catch (error) {
    if (error instanceof UsageError || error instanceof RefusedError) {
      process.stderr.write(`sluice: ${error.message}\n`);
      return error instanceof UsageError ? ExitCodes.usage : ExitCodes.failed;
    }
    throw error;
  }
  if (json) {
    process.stdout.write(`${JSON.stringify({ groupId: request.groupId, dryRun: request.dryRun, partitions: rewound }, null, 2)}\n`);
  } else {
    const rows = rewound.map((r) => [r.topic, String(r.partition), r.before ?? '-', r.after]);
    const what = request.dryRun ? 'would resume (dry run: nothing changed)' : 'resumes';
    process.stdout.write(`group ${request.groupId} ${what}:\n${table(stdoutTerminal(), ['topic', 'partition', 'before', 'after'], rows)}`);
  }
  return ExitCodes.ok;
}
