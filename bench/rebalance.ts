/**
 * The rebalance section: sluice draining the pre-loaded topic, and then taking a fixed load, while a second member
 * joins and leaves the group every `periodMs`: every change of membership is a rebalance for both (kafkajs speaks the
 * eager protocol). Each variant runs the same way; the baseline is a build of sluice from before rebalances kept
 * anything (round-robin assignor, every buffer dropped and every flush in flight rolled back at each rebalance).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Child } from './child.js';

export interface RebalanceResult {
  variant: string;
  /** The drain under churn. */
  recordsPerSec: number;
  seconds: number;
  /** Times the first member joined the group during the drain (its first join included). */
  joins: number;
  /** The fixed load under churn. */
  latency: { rate: number; achievedRate: number; lingerMs: number; p50Ms: number; p99Ms: number; maxMs: number; joins: number } | undefined;
}

/** A second member coming and going: started, given `periodMs` in the group, stopped, `periodMs` away, and again. */
export interface Churn {
  /** Stops the loop (and the member, if it is in); resolves to how many times it joined. */
  stop(): Promise<number>;
}

export function churn(startMember: (n: number) => Child, periodMs: number): Churn {
  let stopped = false;
  let wake: (() => void) | undefined;
  let current: Child | undefined;
  let joined = 0;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const loop = (async () => {
    for (let n = 1; !stopped; n++) {
      current = startMember(n);
      await current.waitForLine(/joined the group/, 60_000).then(
        () => joined++,
        () => undefined, // a member stopped while joining
      );
      await pause(periodMs);
      await current.stop();
      current = undefined;
      if (!stopped) await pause(periodMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      wake?.();
      await loop;
      return joined;
    },
  };
}

/**
 * sluice as it was at `ref`, built once into .local/bench/baseline/<ref> (the sources from git, this checkout's
 * node_modules): the path of its CLI.
 */
export function baselineCli(root: string, ref: string): string {
  const dir = join(root, '.local/bench/baseline', ref);
  const cli = join(dir, 'dist/cli.js');
  if (existsSync(cli)) return cli;
  mkdirSync(dir, { recursive: true });
  execFileSync('bash', ['-c', `git -C "${root}" archive "${ref}" | tar -x -C "${dir}"`], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (!existsSync(join(dir, 'node_modules'))) symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', dir], { stdio: ['ignore', 'inherit', 'inherit'] });
  return cli;
}
