/**
 * `sluice offsets show`: per partition of every routed topic, where the group is. Under exactly-once delivery the
 * offset that counts is the one stored with the data (sluice resumes there); the group's committed offset in Kafka
 * follows it for lag and autoscalers.
 */
import pg from 'pg';
import { pino } from 'pino';
import { KafkaInspector } from '../consumer/kafka-inspector.js';
import { OffsetStore } from '../sinks/offset-store.js';
import { ExitCodes } from './exit-codes.js';
import type { Settings } from './settings.js';

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
  const topics = [...new Set([...options.routes.map((r) => r.topic), ...(options.landing?.topics ?? [])])];
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
  process.stdout.write(`group ${groupId} (${settings.resolved.delivery})\n${table(header, rows)}`);
  return ExitCodes.ok;
}

/** Columns aligned with two spaces; numbers right-aligned. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}
