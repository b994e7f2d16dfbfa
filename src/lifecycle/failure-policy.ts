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

/** Work waiting to be tried again: a partition's batch, or the Kafka consumer's membership of the group. */
export interface Retrying {
  /** What is retrying, as messages name it: `orders[2]`, `the Kafka consumer`. */
  subject: string;
  /** When it first failed, in ms since the epoch. */
  sinceMs: number;
  /** Failed attempts so far. */
  attempts: number;
  /** Of those, the last ones in a row that only an operator can fix. */
  operatorFailures: number;
  lastError: unknown;
}

/** A fresh record of work that has just started failing. */
export function startRetrying(subject: string): Retrying {
  return { subject, sinceMs: Date.now(), attempts: 0, operatorFailures: 0, lastError: undefined };
}

/**
 * The one place that decides what a failure leads to (a flush, or the Kafka consumer leaving the group), for every
 * kind of error, and when waiting makes sluice unready. Errors carry their class (retriable or not, and whether an operator must act: see errors.ts); this
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
   * Another attempt at `retrying` (its record, which this counts in) failed with `error`. A retry waits at most
   * `maxDelayMs`.
   */
  decide(error: unknown, retrying: Retrying, maxDelayMs?: number): FailureDecision {
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
          `${retrying.subject}: ${errorMessage(error)}, ${operatorFailures} attempts in a row; ${fix}, then restart sluice`,
          { cause: error },
        ),
      };
    }
    return { action: 'retry', delayMs: backoffMs(attempt, undefined, maxDelayMs) };
  }

  /**
   * Why sluice is not ready because of work that has been retrying for too long, if any; with the last error's text
   * unless `withErrors` is false (it can quote record values).
   */
  unreadyReasons(retrying: readonly Retrying[], nowMs: number, withErrors = true): string[] {
    return retrying
      .filter((r) => nowMs - r.sinceMs > this.#settings.maxRetryingMs)
      .map(
        (r) =>
          `${r.subject} has been retrying for ${Math.round((nowMs - r.sinceMs) / 1000)} s (${r.attempts} attempts)` +
          (withErrors ? `: ${errorMessage(r.lastError)}` : ''),
      );
  }
}
