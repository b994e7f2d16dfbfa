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
 * Scope: only consumers whose `eachBatch` handler was passed through {@link deliverFilteredBatches} are affected
 * (kafkajs-runner.ts). Their runner's batches answer "not empty" when the fetch returned any record at all, so kafkajs
 * hands them over with no messages, and the handler resolves `batch.lastOffset()` as for any batch.
 */
import type { EachBatchHandler } from 'kafkajs';
import { runnerPrototype } from './kafkajs-runner.js';

const marked = new WeakSet<EachBatchHandler>();

interface KafkajsBatch {
  rawMessages: unknown[];
  isEmpty(): boolean;
  isEmptyDueToFiltering(): boolean;
}

let installed = false;

function install(): void {
  if (installed) return;
  const prototype = runnerPrototype(['handleBatch'], 'to see fetches made only of control records');
  const { handleBatch } = prototype;
  prototype.handleBatch = function (batch: unknown) {
    if (this.eachBatch && marked.has(this.eachBatch)) {
      // Own properties of this one batch object: the Batch class and other runners are untouched.
      const b = batch as KafkajsBatch;
      b.isEmpty = () => b.rawMessages.length === 0;
      b.isEmptyDueToFiltering = () => false;
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
