/**
 * Lets one kafkajs consumer rejoin its group under the member id it had before it crashed.
 *
 * A consumer whose retries run out (the brokers unreachable for a few seconds) crashes, and kafkajs' LeaveGroup
 * fails with the brokers away, so the coordinator still counts the old member when they are back. kafkajs runs the
 * consumer again as a new member (consumer/index.js builds a new ConsumerGroup, memberId null), and the coordinator
 * then holds the rebalance until the old member's session times out: up to `sessionTimeoutMs` (30 s by default)
 * with nothing consumed, after the brokers have come back. Joining with the old member id is the same member
 * returning: the rebalance completes as soon as it has joined. A member id the coordinator no longer knows is
 * answered with UNKNOWN_MEMBER_ID, which kafkajs handles by joining afresh (consumerGroup.js joinAndSync).
 *
 * Scope: only consumers whose `eachBatch` handler was passed through {@link rejoinWithMemberId} (kafkajs-runner.ts).
 */
import type { EachBatchHandler } from 'kafkajs';
import { runnerPrototype, type KafkajsRunner } from './kafkajs-runner.js';

const memberIds = new WeakMap<EachBatchHandler, () => string | undefined>();
let installed = false;

function install(): void {
  if (installed) return;
  const prototype = runnerPrototype(['start'], 'to rejoin the group under the same member id after a crash');
  const { start } = prototype;
  prototype.start = function (this: KafkajsRunner) {
    const memberId = this.eachBatch ? memberIds.get(this.eachBatch)?.() : undefined;
    // Only a new group member (a run after a crash) takes it: kafkajs' own state wins otherwise.
    if (memberId !== undefined && this.consumerGroup.memberId == null) this.consumerGroup.memberId = memberId;
    return start.call(this);
  };
  installed = true;
}

/** Marks `eachBatch` so that its consumer, when run again, joins as `memberId()` (the id it last had, if any). */
export function rejoinWithMemberId(eachBatch: EachBatchHandler, memberId: () => string | undefined): EachBatchHandler {
  install();
  memberIds.set(eachBatch, memberId);
  return eachBatch;
}
