/**
 * Which DLQ records an operator's command selects. The same filters for every `sluice dlq` command, so that what
 * `list` shows is what `stats` counts and what a replay would take.
 */
import { readOrigin, type DlqOrigin } from './dlq-origin.js';
import type { RecordHeaders } from '../record.js';

/** A DLQ record with its origin read from its headers. */
export interface DlqEntry {
  partition: number;
  offset: string;
  /** When it was written to the DLQ (the DLQ record's own timestamp), ms since the epoch, as text. */
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeaders;
  origin: DlqOrigin;
}

/** An inclusive range of offsets. */
export interface OffsetRange {
  from: bigint;
  to: bigint;
}

export interface DlqFilter {
  sourceTopic?: string;
  sourcePartition?: number;
  sourceOffsets?: OffsetRange;
  /** Dead-lettered at or after (ms since the epoch). */
  sinceMs?: number;
  /** Dead-lettered before. */
  untilMs?: number;
  errorCode?: string;
  sqlState?: string;
  /** The record's key, as UTF-8 text. */
  key?: string;
  dlqOffsets?: OffsetRange;
}

const inRange = (value: string | undefined, range: OffsetRange) => value !== undefined && BigInt(value) >= range.from && BigInt(value) <= range.to;

export function matches(filter: DlqFilter, entry: DlqEntry): boolean {
  const { origin } = entry;
  if (filter.sourceTopic !== undefined && origin.topic !== filter.sourceTopic) return false;
  if (filter.sourcePartition !== undefined && origin.partition !== filter.sourcePartition) return false;
  if (filter.sourceOffsets && !inRange(origin.offset, filter.sourceOffsets)) return false;
  if (filter.sinceMs !== undefined && Number(entry.timestamp) < filter.sinceMs) return false;
  if (filter.untilMs !== undefined && Number(entry.timestamp) >= filter.untilMs) return false;
  if (filter.errorCode !== undefined && origin.errorCode !== filter.errorCode) return false;
  if (filter.sqlState !== undefined && origin.sqlState !== filter.sqlState) return false;
  if (filter.key !== undefined && (entry.key === null || entry.key.toString('utf8') !== filter.key)) return false;
  if (filter.dlqOffsets && !inRange(entry.offset, filter.dlqOffsets)) return false;
  return true;
}

/** `A-B` (inclusive), or a single offset `A`; undefined when it is neither. */
export function parseOffsetRange(text: string): OffsetRange | undefined {
  const match = /^(\d+)(?:-(\d+))?$/.exec(text.trim());
  if (!match) return undefined;
  const from = BigInt(match[1]!);
  const to = BigInt(match[2] ?? match[1]!);
  return to >= from ? { from, to } : undefined;
}

/** A record read from a DLQ topic, with its origin, if the filter selects it. */
export function selected(
  filter: DlqFilter,
  record: { partition: number; offset: string; timestamp: string; key: Buffer | null; value: Buffer | null; headers: RecordHeaders },
): DlqEntry | undefined {
  const entry: DlqEntry = { ...record, origin: readOrigin(record.headers) };
  return matches(filter, entry) ? entry : undefined;
}
