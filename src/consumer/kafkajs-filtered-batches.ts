/**
 * Makes kafkajs hand every fetched batch to `eachBatch`, including one whose records were all filtered out.
 *
 * kafkajs drops such a batch itself (runner.js, `batch.isEmptyDueToFiltering()`): a fetch that returned only a
 * transaction's control record, or only an aborted transaction's records under read_committed, moves kafkajs' own
 * fetch position and is never shown to the application. sluice must see it: its offsets are stored with the data
 * and committed to the group only up to the end of what it has seen, so an unseen tail of control records would
 * leave a transactional topic's lag above zero for ever. The Java consumer has the same rule (Fetcher advances the
 * position past control batches: apache/kafka clients/.../internals/Fetcher.java, cited by kafkajs' runner.js).
 *
 * kafkajs 2.2.4 is the last release and its Batch is stable; the patch is checked against that shape when applied
 * and refuses to start on any other, rather than silently changing behaviour. Every consumer in the process sees
 * the change: one using `eachMessage` would never resolve such a batch, so sluice's own consumers all use
 * `eachBatch`, which resolves `batch.lastOffset()` (kafkajs does that itself with `eachBatchAutoResolve`).
 */
import { createRequire } from 'node:module';
import { ErrorCodes, SluiceError } from '../errors.js';

const require = createRequire(import.meta.url);
const supportedVersion = '2.2.4';

interface BatchPrototype {
  isEmpty(this: { rawMessages: unknown[] }): boolean;
  isEmptyDueToFiltering(): boolean;
  lastOffset(): string;
}

let applied = false;

export function deliverFilteredBatches(): void {
  if (applied) return;
  const { version } = require('kafkajs/package.json') as { version: string };
  const Batch = require('kafkajs/src/consumer/batch.js') as { prototype: Partial<BatchPrototype> } | undefined;
  const proto = Batch?.prototype;
  if (version !== supportedVersion || typeof proto?.isEmpty !== 'function' || typeof proto.isEmptyDueToFiltering !== 'function') {
    throw new SluiceError(
      ErrorCodes.lifecycle,
      `sluice needs kafkajs ${supportedVersion} (found ${version}): it relies on its fetched-batch internals to see batches made only of ` +
        'control records; install the version in package-lock.json',
    );
  }
  // A batch is empty only when the fetch returned nothing at all; one whose records were all filtered out goes to
  // eachBatch with no messages, and the consumer resolves batch.lastOffset() like any other.
  proto.isEmpty = function isEmpty() {
    return this.rawMessages.length === 0;
  };
  proto.isEmptyDueToFiltering = () => false;
  applied = true;
}
