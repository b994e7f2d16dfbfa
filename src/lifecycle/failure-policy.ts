import { errorMessage, isRetriable, operatorFixOf, SluiceError, ErrorCodes } from '../errors.js';
import { backoffMs } from './backoff.js';

export interface FailurePolicySettings {
  /** Attempts at a batch whose failure only an operator can fix (a DLQ topic too small, a missing ACL) before halting. */
  maxOperatorAttempts: number;
  /** A partition retrying for longer than this makes sluice unready, with the partition and the error as the reason. */
  maxRetryingMs: number;
}

/** What to do after a failed attempt at a batch. */
export type FailureDecision = { action: 'retry'; delayMs: number } | { action: 'halt'; error: Error };

/** A partition whose batch is waiting to be tried again. */
export interface RetryingPartition {
  topic: string;
  partition: number;
  /** When its batch first failed, in ms since the epoch. */
  sinceMs: number;
  /** Failed attempts at the batch so far. */
  attempts: number;
  /** Of those, the last ones in a row that only an operator can fix. */
  operatorFailures: number;
  lastError: unknown;
}

/**
 * The one place that decides what a failed flush leads to, for every kind of error, and when waiting makes sluice
 * unready. Errors carry their class (retriable or not, and whether an operator must act: see errors.ts); this
 * policy turns that into retry-with-backoff, halt, or an unready reason:
 * - not retriable (a missing table, a permission, an open breaker): halt;
 * - retriable but only an operator can fix it: retry while the operator may be at it, at most
 *   `maxOperatorAttempts` attempts, then halt with the error and the fix;
 * - otherwise retriable (database or broker unreachable, a lock, a timeout): retry with capped, jittered backoff,
 *   for as long as it takes; past `maxRetryingMs` the partition makes sluice unready, naming itself and the error.
 */
export class FailurePolicy {
  readonly #settings: FailurePolicySettings;

  constructor(settings: FailurePolicySettings) {
    this.#settings = settings;
  }

  /**
   * Another attempt at the batch of `retrying` (its partition's record, which this counts in) failed with `error`.
   */
  decide(error: unknown, retrying: RetryingPartition): FailureDecision {
    const attempt = retrying.attempts++;
    retrying.lastError = error;
    const failure = error instanceof Error ? error : new Error(String(error));
    if (!isRetriable(error)) return { action: 'halt', error: failure };
    const fix = operatorFixOf(error);
    // Only failures in a row count towards maxOperatorAttempts: any other failure in between resets them.
    retrying.operatorFailures = fix === undefined ? 0 : retrying.operatorFailures + 1;
    const { operatorFailures } = retrying;
    if (fix !== undefined && operatorFailures >= this.#settings.maxOperatorAttempts) {
      return {
        action: 'halt',
        error: new SluiceError(
          ErrorCodes.deadLetter,
          `${retrying.topic}[${retrying.partition}]: ${errorMessage(error)}, ${operatorFailures} attempts in a row; ${fix}, then restart sluice`,
          { cause: error },
        ),
      };
    }
    return { action: 'retry', delayMs: backoffMs(attempt) };
  }

  /** Why sluice is not ready because of partitions that have been retrying for too long, if any. */
  unreadyReasons(retrying: readonly RetryingPartition[], nowMs: number): string[] {
    return retrying
      .filter((r) => nowMs - r.sinceMs > this.#settings.maxRetryingMs)
      .map(
        (r) =>
          `${r.topic}[${r.partition}] has been retrying for ${Math.round((nowMs - r.sinceMs) / 1000)} s (${r.attempts} attempts): ` +
          errorMessage(r.lastError),
      );
  }
}
