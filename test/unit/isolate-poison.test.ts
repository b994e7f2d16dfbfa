import { describe, expect, it } from 'vitest';
import { isolatePoison } from '../../src/sinks/isolate-poison.js';

/** A write that rejects any subset holding a bad item, and records what it wrote. */
function fakeWrite(bad: Set<number>) {
  const written: number[] = [];
  let attempts = 0;
  const attempt = async (subset: readonly number[]) => {
    attempts++;
    const found = subset.find((i) => bad.has(i));
    if (found !== undefined) return new Error(`bad ${found}`);
    written.push(...subset);
    return undefined;
  };
  return { attempt, written, attempts: () => attempts };
}

describe('isolatePoison', () => {
  it('finds every bad item, writes every good item exactly once and in order', async () => {
    const items = Array.from({ length: 1_000 }, (_, i) => i);
    const bad = new Set([0, 17, 18, 500, 999]);
    const write = fakeWrite(bad);
    const isolated = await isolatePoison(items, write.attempt);
    expect(isolated.map((p) => p.item)).toEqual([...bad]);
    expect(isolated.map((p) => p.error.message)).toEqual([...bad].map((i) => `bad ${i}`));
    expect(write.written).toEqual(items.filter((i) => !bad.has(i)));
  });

  it('needs about k·log2(n) attempts, far fewer than one per item: 10 bad in 5,000', async () => {
    const items = Array.from({ length: 5_000 }, (_, i) => i);
    const bad = new Set(Array.from({ length: 10 }, (_, k) => 37 + k * 491));
    const write = fakeWrite(bad);
    const isolated = await isolatePoison(items, write.attempt);
    expect(isolated).toHaveLength(10);
    expect(write.written).toHaveLength(4_990);
    // 10 · log2(5,000) ≈ 123; bisection with the "left half written, so the right half fails" shortcut stays near it.
    expect(write.attempts()).toBeLessThan(2 * 10 * Math.log2(5_000));
  });

  it('handles a batch of one, and a batch where everything is bad', async () => {
    const one = fakeWrite(new Set([7]));
    expect((await isolatePoison([7], one.attempt)).map((p) => p.item)).toEqual([7]);
    const all = fakeWrite(new Set([1, 2, 3, 4]));
    expect((await isolatePoison([1, 2, 3, 4], all.attempt)).map((p) => p.item)).toEqual([1, 2, 3, 4]);
    expect(all.attempts()).toBeLessThanOrEqual(2 * 4 - 1);
  });

  it('stops at the first failure that is not row-level', async () => {
    const attempt = async (subset: readonly number[]) => {
      if (subset.length < 4) throw new Error('connection lost');
      return new Error('row');
    };
    await expect(isolatePoison([1, 2, 3, 4, 5, 6, 7, 8], attempt)).rejects.toThrow('connection lost');
  });
});
