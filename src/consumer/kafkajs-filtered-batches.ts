/**
 * Lets one kafkajs consumer see every fetched batch in `eachBatch`, including one whose records were all filtered out.
 *
 * kafkajs drops such a batch itself (runner.js `handleBatch`, `batch.isEmptyDueToFiltering()`): a fetch that
 * returned only a transaction's control record, or only an aborted transaction's records under read_committed, moves
 * kafkajs' own fetch position and is never shown to the application. sluice must see it: its offsets are stored
 * with the data and committed to the group only up to the end of what it has seen, so an unseen tail of control
 * records would leave a transactional topic's lag above zero for ever. The Java consumer has the same rule (its
 * Fetcher moves the position past control batches; kafkajs' runner.js cites the line).
 *
 * Scope: only consumers whose `eachBatch` handler was passed through {@link deliverFilteredBatches} are affected.
 * Their runner's batches answer "not empty" when the fetch returned any record at all, so kafkajs hands them over
 * with no messages, and the handler resolves `batch.lastOffset()` as for any batch. Every other kafkajs consumer in
 * the process (an application's own, when sluice runs as a library) behaves as kafkajs does.
 *
 * kafkajs 2.2.4 is its last release (package.json pins it); the patch checks that shape when installed and refuses
 * to start on any other rather than silently change behaviour.
 */
import { createRequire } from 'node:module';
import type { EachBatchHandler } from 'kafkajs';
import { ErrorCodes, SluiceError } from '../errors.js';

const require = createRequire(import.meta.url);
const supportedVersion = '2.2.4';
const marked = new WeakSet<EachBatchHandler>();

interface KafkajsBatch {
  rawMessages: unknown[];
  isEmpty(): boolean;
  isEmptyDueToFiltering(): boolean;
}

interface RunnerPrototype {
  handleBatch(this: { eachBatch?: EachBatchHandler }, batch: KafkajsBatch): Promise<void>;
}

let installed = false;

function install(): void {
  if (installed) return;
  const { version } = require('kafkajs/package.json') as { version: string };
  const Runner = require('kafkajs/src/consumer/runner.js') as { prototype: Partial<RunnerPrototype> } | undefined;
  const handleBatch = Runner?.prototype.handleBatch;
  if (version !== supportedVersion || typeof handleBatch !== 'function') {
    throw new SluiceError(
      ErrorCodes.config,
      `sluice needs kafkajs ${supportedVersion} (found ${version}): it relies on its runner's internals to see fetches made only of ` +
        'control records; install the version in package-lock.json (npm ci)',
    );
  }
  Runner!.prototype.handleBatch = function (batch: KafkajsBatch) {
    if (this.eachBatch && marked.has(this.eachBatch)) {
      // Own properties of this one batch object: the Batch class and other runners are untouched.
      batch.isEmpty = () => batch.rawMessages.length === 0;
      batch.isEmptyDueToFiltering = () => false;
    }
    return handleBatch.call(this, batch);
  };
  installed = true;
}

/** Marks `eachBatch` so that its consumer is also handed batches whose records were all filtered out. */
export function deliverFilteredBatches(eachBatch: EachBatchHandler): EachBatchHandler {
  install();
  marked.add(eachBatch);
  return eachBatch;
}
