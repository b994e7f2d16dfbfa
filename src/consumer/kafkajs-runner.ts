/**
 * kafkajs' consumer Runner class, for the two places where sluice changes what one of its consumers does
 * (kafkajs-filtered-batches.ts, kafkajs-rejoin.ts). Only runners whose `eachBatch` handler sluice marked are changed;
 * every other kafkajs consumer in the process (an application's own, when sluice runs as a library) behaves as
 * kafkajs does.
 *
 * kafkajs 2.2.4 is its last release (package.json pins it); the shape is checked when first used, and sluice refuses
 * to start on any other version rather than silently change behaviour.
 */
import { createRequire } from 'node:module';
import type { EachBatchHandler } from 'kafkajs';
import { ErrorCodes, SluiceError } from '../errors.js';

const require = createRequire(import.meta.url);
const supportedVersion = '2.2.4';

/** What sluice relies on in a Runner (kafkajs/src/consumer/runner.js). */
export interface KafkajsRunner {
  eachBatch?: EachBatchHandler;
  consumerGroup: { memberId: string | null };
  start(): Promise<void>;
  handleBatch(batch: unknown): Promise<void>;
}

/** The Runner prototype, after checking kafkajs' version and that `methods` are there. */
export function runnerPrototype(methods: Array<keyof KafkajsRunner>, why: string): KafkajsRunner {
  const { version } = require('kafkajs/package.json') as { version: string };
  const Runner = require('kafkajs/src/consumer/runner.js') as { prototype: Partial<KafkajsRunner> } | undefined;
  const prototype = Runner?.prototype;
  if (version !== supportedVersion || !prototype || methods.some((m) => typeof prototype[m] !== 'function')) {
    throw new SluiceError(
      ErrorCodes.config,
      `sluice needs kafkajs ${supportedVersion} (found ${version}): it relies on its runner's internals ${why}; install the version in package-lock.json (npm ci)`,
    );
  }
  return prototype as KafkajsRunner;
}
