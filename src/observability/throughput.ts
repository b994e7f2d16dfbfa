/**
 * Records flushed per second over a recent window, for /status and the status page: counts kept in one-second
 * buckets for the last minute (bounded memory, whatever the rate).
 */
const bucketMs = 1_000;
const keptBuckets = 60;

export class Throughput {
  readonly #counts = new Array<number>(keptBuckets).fill(0);
  /** The second (ms since the epoch / 1000) each bucket holds. */
  readonly #seconds = new Array<number>(keptBuckets).fill(-1);

  add(records: number, nowMs: number): void {
    const second = Math.floor(nowMs / bucketMs);
    const i = second % keptBuckets;
    if (this.#seconds[i] !== second) {
      this.#seconds[i] = second;
      this.#counts[i] = 0;
    }
    this.#counts[i]! += records;
  }

  /** Records per second over the last `windowMs` (at most a minute), the current second included. */
  perSecond(nowMs: number, windowMs = 10_000): number {
    const now = Math.floor(nowMs / bucketMs);
    const span = Math.min(keptBuckets, Math.max(1, Math.round(windowMs / bucketMs)));
    let total = 0;
    for (let i = 0; i < keptBuckets; i++) {
      const second = this.#seconds[i]!;
      if (second > now - span && second <= now) total += this.#counts[i]!;
    }
    return total / span;
  }
}
