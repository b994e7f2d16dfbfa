import { describe, expect, it } from 'vitest';
import { FailurePolicy } from '../../src/lifecycle/failure-policy.js';
import { DeadLetterError, KafkaError, SchemaError, SinkError } from '../../src/errors.js';

const policy = new FailurePolicy({ maxOperatorAttempts: 3, maxRetryingMs: 60_000 });
/** A partition's retry record, as the batcher keeps it for the batch in flight. */
const retrying = (attempts = 0, operatorFailures = 0) => ({ subject: 'orders[2]', sinceMs: 0, attempts, operatorFailures, lastError: undefined });

describe('FailurePolicy', () => {
  it('halts on what no retry fixes, and retries what passes by itself for as long as it takes', () => {
    expect(policy.decide(new SchemaError('t', 'table t does not exist'), retrying()).action).toBe('halt');
    const unreachable = new SinkError('connection refused', { retriable: true });
    expect(policy.decide(unreachable, retrying())).toMatchObject({ action: 'retry' });
    expect(policy.decide(unreachable, retrying(500))).toMatchObject({ action: 'retry' });
  });

  it('retries what only an operator can fix a bounded number of times, then halts naming the error and the fix', () => {
    const refused = new DeadLetterError(
      'orders.dlq',
      'writing 1 poison record(s) of orders to DLQ topic orders.dlq failed: The request included a message larger than the max message size the server will accept',
      new KafkaError('too large', { retriable: true, operatorFix: 'raise max.message.bytes of DLQ topic orders.dlq' }),
    );
    const record = retrying(6); // earlier attempts failed for other reasons: they do not count
    expect(policy.decide(refused, record).action).toBe('retry');
    expect(policy.decide(refused, record).action).toBe('retry');
    const halt = policy.decide(refused, record);
    expect([record.attempts, record.operatorFailures, record.lastError]).toEqual([9, 3, refused]);
    expect(halt.action).toBe('halt');
    expect(halt.action === 'halt' && halt.error.message).toBe(
      'orders[2]: writing 1 poison record(s) of orders to DLQ topic orders.dlq failed: The request included a message larger than the ' +
        'max message size the server will accept, 3 attempts in a row; raise max.message.bytes of DLQ topic orders.dlq, then restart sluice',
    );
  });

  it('names the partitions that have been retrying for longer than maxRetryingMs, and only those', () => {
    const now = 1_000_000;
    const reasons = policy.unreadyReasons(
      [
        { subject: 'orders[0]', sinceMs: now - 61_000, attempts: 9, operatorFailures: 0, lastError: new Error('database unreachable') },
        { subject: 'orders[1]', sinceMs: now - 1_000, attempts: 2, operatorFailures: 0, lastError: new Error('a lock') },
      ],
      now,
    );
    expect(reasons).toEqual(['orders[0] has been retrying for 61 s (9 attempts): database unreachable']);
  });
});
