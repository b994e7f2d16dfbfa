import type { Logger } from 'pino';
import { ErrorCodes, SluiceError } from '../errors.js';

/**
 * starting → running → draining → stopped, and failed from anywhere. `stopped` and `failed` are final.
 * draining: fetching has stopped; buffered records are being flushed and committed.
 * halted: consumption stopped by a systemic error or the failure-rate breaker; the process stays up (live, not
 * ready) until an operator restarts it. Stopping a halted sluice ends in `failed`, with the reason it halted.
 */
export const LifecycleStates = ['starting', 'running', 'halted', 'draining', 'stopped', 'failed'] as const;
export type LifecycleState = (typeof LifecycleStates)[number];

const allowed: Record<LifecycleState, readonly LifecycleState[]> = {
  starting: ['running', 'halted', 'draining', 'failed'],
  running: ['halted', 'draining', 'failed'],
  halted: ['draining', 'failed'],
  draining: ['stopped', 'failed'],
  stopped: [],
  failed: [],
};

export class Lifecycle {
  #state: LifecycleState = 'starting';
  #error: Error | undefined;
  readonly #log: Logger;
  readonly #onChange: (from: LifecycleState, to: LifecycleState, error?: Error) => void;

  constructor(log: Logger, onChange: (from: LifecycleState, to: LifecycleState, error?: Error) => void) {
    this.#log = log;
    this.#onChange = onChange;
  }

  get state(): LifecycleState {
    return this.#state;
  }

  /** The error that moved sluice to `halted` or `failed`, if one did. */
  get error(): Error | undefined {
    return this.#error;
  }

  isFinal(): boolean {
    return this.#state === 'stopped' || this.#state === 'failed';
  }

  canTransition(to: LifecycleState): boolean {
    return allowed[this.#state].includes(to);
  }

  /** The one place state changes; every transition is logged. */
  transition(to: LifecycleState, error?: Error): void {
    const from = this.#state;
    if (!this.canTransition(to)) {
      throw new SluiceError(ErrorCodes.lifecycle, `cannot go from ${from} to ${to}`);
    }
    this.#state = to;
    if (to === 'failed' || to === 'halted') this.#error = error ?? this.#error;
    if (error) this.#log.error({ err: error, from, to }, `sluice ${to}`);
    else this.#log.info({ from, to }, `sluice ${to}`);
    this.#onChange(from, to, error);
  }
}
