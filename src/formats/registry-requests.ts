/**
 * The requests one batch makes to the schema registry: at most `maxAtOnce` are sent at a time, the rest wait their
 * turn. A batch asks for every schema id it does not know together, and a batch of garbage that happens to start
 * with the wire format's magic byte names a different id in almost every record: without a bound, that is a request
 * per record. Waiting between requests (the second ask for an id a replica may not have yet) holds no turn.
 *
 * Once the batch is done (it failed, say, on a registry that cannot be reached), `close` ends it: requests still
 * waiting are not sent, and fail; those already sent finish.
 */
import { SchemaRegistryError } from '../errors.js';

export class RegistryRequests {
  readonly #maxAtOnce: number;
  #inFlight = 0;
  /** Requests waiting for a turn: called with true when it is theirs, false when the batch is over. */
  readonly #waiting: Array<(go: boolean) => void> = [];
  #closed = false;

  constructor(maxAtOnce: number) {
    this.#maxAtOnce = maxAtOnce;
  }

  /** Sends `request` when a turn is free (its timeout starts then). Throws a retriable error once closed. */
  async send<T>(what: string, request: () => Promise<T>): Promise<T> {
    if (this.#inFlight >= this.#maxAtOnce || this.#closed) {
      const go = this.#closed ? false : await new Promise<boolean>((resolve) => this.#waiting.push(resolve));
      // Not sent: the batch that asked is over; whoever shares this lookup asks again with its own next batch.
      if (!go) throw new SchemaRegistryError(`${what} was not asked: the batch that needed it had already failed`);
    } else this.#inFlight++;
    try {
      return await request();
    } finally {
      // The turn passes to the next request waiting, if any.
      const next = this.#waiting.shift();
      if (next) next(true);
      else this.#inFlight--;
    }
  }

  close(): void {
    this.#closed = true;
    for (const stop of this.#waiting.splice(0)) stop(false);
  }
}
