import { partitionKey } from '../record.js';

/**
 * Per-partition positions for the lag figure: the end of the log as last fetched, and the offset last committed.
 * Lag = records in Kafka that are not yet durably in PostgreSQL and committed.
 */
export class Progress {
  readonly #highWatermarks = new Map<string, bigint>();
  readonly #committed = new Map<string, bigint>();
  readonly #firstSeen = new Map<string, bigint>();

  observeHighWatermark(topic: string, partition: number, highWatermark: string): void {
    this.#highWatermarks.set(partitionKey(topic, partition), BigInt(highWatermark));
  }

  /** The first offset seen for a partition stands in for "committed" until a commit happens. */
  observeFetched(topic: string, partition: number, firstOffset: string): void {
    const id = partitionKey(topic, partition);
    if (!this.#firstSeen.has(id)) this.#firstSeen.set(id, BigInt(firstOffset));
  }

  observeCommit(topic: string, partition: number, nextOffset: string): void {
    this.#committed.set(partitionKey(topic, partition), BigInt(nextOffset));
  }

  /** Forgets every partition but these (the member's assignment after a rebalance; none while it is in progress). */
  retain(assigned: ReadonlyArray<{ topic: string; partitions: number[] }>): void {
    const keep = new Set(assigned.flatMap(({ topic, partitions }) => partitions.map((p) => partitionKey(topic, p))));
    for (const map of [this.#highWatermarks, this.#committed, this.#firstSeen]) {
      for (const id of map.keys()) if (!keep.has(id)) map.delete(id);
    }
  }

  /** Per partition this member owns: the log end as fetched last, the offset committed, and the records between. */
  partitions(): PartitionProgress[] {
    return [...this.#highWatermarks].map(([id, end]) => {
      const committed = this.#committed.get(id);
      const position = committed ?? this.#firstSeen.get(id) ?? end;
      const at = id.lastIndexOf(':');
      return {
        topic: id.slice(0, at),
        partition: Number(id.slice(at + 1)),
        highWatermark: end.toString(),
        ...(committed !== undefined ? { committedOffset: committed.toString() } : {}),
        lag: Number(end > position ? end - position : 0n),
      };
    });
  }

  lag(): number {
    return this.partitions().reduce((sum, p) => sum + p.lag, 0);
  }

  committedOffsets(): Record<string, string> {
    return Object.fromEntries([...this.#committed].map(([id, offset]) => [id, offset.toString()]));
  }
}

export interface PartitionProgress {
  topic: string;
  partition: number;
  /** The end of the log as the last fetch saw it. */
  highWatermark: string;
  /** The next offset committed by this member; absent before its first commit. */
  committedOffset?: string;
  /** Records in Kafka not yet committed by sluice. */
  lag: number;
}
