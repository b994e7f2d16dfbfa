export interface BreakerSettings {
  /** Share of records (0–1) sent to the DLQ above which the breaker opens. */
  maxDlqRatio: number;
  windowMs: number;
  /** Fewer records than this in the window are not judged. */
  minRecords: number;
}

export interface BreakerWindow {
  records: number;
  deadLettered: number;
  ratio: number;
}

const bucketsPerWindow = 10;

/**
 * Watches the share of records that go to the DLQ over a sliding time window (ten buckets), and opens before that
 * share would go over `maxDlqRatio` with at least `minRecords` in the window. It judges a batch before its poison
 * records are dead-lettered (`admit`), so a burst is refused rather than drained into the DLQ. It never closes by
 * itself: resuming is an operator's decision.
 */
export class FailureRateBreaker {
  readonly #settings: BreakerSettings;
  readonly #now: () => number;
  readonly #bucketMs: number;
  /** [bucket start, records, dead-lettered], oldest first. */
  readonly #buckets: Array<[number, number, number]> = [];
  #open = false;

  constructor(settings: BreakerSettings, now: () => number = Date.now) {
    this.#settings = settings;
    this.#now = now;
    this.#bucketMs = Math.max(1, Math.floor(settings.windowMs / bucketsPerWindow));
  }

  get open(): boolean {
    return this.#open;
  }

  /**
   * Before `deadLettered` records of a batch (of `records` not yet counted) go to the DLQ: counts them and answers
   * undefined, or, when the window would then be over the limit (or the breaker is open already), opens the breaker,
   * counts nothing, and answers the window the batch would have made.
   */
  admit(records: number, deadLettered: number): BreakerWindow | undefined {
    const window = this.window();
    const after = { records: window.records + records, deadLettered: window.deadLettered + deadLettered, ratio: 0 };
    after.ratio = after.records === 0 ? 0 : after.deadLettered / after.records;
    if (this.#open || (after.records >= this.#settings.minRecords && after.ratio > this.#settings.maxDlqRatio)) {
      this.#open = true;
      return after;
    }
    this.record(records, deadLettered);
    return undefined;
  }

  /** Counts a flushed batch that sent nothing to the DLQ (or records `admit` has not counted). */
  record(records: number, deadLettered = 0): void {
    const now = this.#now();
    const start = now - (now % this.#bucketMs);
    const last = this.#buckets.at(-1);
    if (last && last[0] === start) {
      last[1] += records;
      last[2] += deadLettered;
    } else {
      this.#buckets.push([start, records, deadLettered]);
    }
  }

  /** The records and DLQ share in the current window. */
  window(): BreakerWindow {
    const oldest = this.#now() - this.#settings.windowMs;
    while (this.#buckets.length > 0 && this.#buckets[0]![0] + this.#bucketMs <= oldest) this.#buckets.shift();
    let records = 0;
    let deadLettered = 0;
    for (const [, r, d] of this.#buckets) {
      records += r;
      deadLettered += d;
    }
    return { records, deadLettered, ratio: records === 0 ? 0 : deadLettered / records };
  }
}
