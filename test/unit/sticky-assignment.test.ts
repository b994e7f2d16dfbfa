import { describe, expect, it } from 'vitest';
import { stickyAssignment, type MemberOwnership, type TopicPartition } from '../../src/consumer/sticky-assignment.js';

const partitions = (topic: string, count: number): TopicPartition[] => Array.from({ length: count }, (_, partition) => ({ topic, partition }));
const keys = (list: TopicPartition[]) => list.map((p) => `${p.topic}-${p.partition}`);

/** Every partition given exactly once, and no member with two more than another. */
function expectValid(result: Map<string, TopicPartition[]>, all: TopicPartition[]): void {
  const given = [...result.values()].flatMap(keys).sort();
  expect(given).toEqual(keys(all).sort());
  const counts = [...result.values()].map((l) => l.length);
  expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
}

/** How many partitions moved away from a member that is still in the group. */
function moved(before: Map<string, TopicPartition[]>, after: Map<string, TopicPartition[]>): number {
  const owner = new Map<string, string>();
  for (const [m, list] of before) for (const k of keys(list)) owner.set(k, m);
  let n = 0;
  for (const [m, list] of after) for (const k of keys(list)) if (owner.has(k) && owner.get(k) !== m && after.has(owner.get(k)!)) n++;
  return n;
}

const ownership = (result: Map<string, TopicPartition[]>, generation = 1): MemberOwnership[] =>
  [...result].map(([memberId, owned]) => ({ memberId, owned, generation }));

describe('sticky assignment', () => {
  it('spreads a fresh group evenly over every partition of every topic', () => {
    const all = [...partitions('a', 5), ...partitions('b', 3)];
    const result = stickyAssignment(['m1', 'm2', 'm3'].map((memberId) => ({ memberId, owned: [], generation: 0 })), all);
    expectValid(result, all);
    expect([...result.values()].map((l) => l.length).sort()).toEqual([2, 3, 3]);
  });

  it('a member joining takes only the partitions it needs; the others keep the rest', () => {
    const all = partitions('t', 12);
    const before = stickyAssignment(['m1', 'm2', 'm3'].map((memberId) => ({ memberId, owned: [], generation: 0 })), all);
    const after = stickyAssignment([...ownership(before), { memberId: 'm4', owned: [], generation: 0 }], all);
    expectValid(after, all);
    expect(after.get('m4')).toHaveLength(3);
    expect(moved(before, after)).toBe(3); // round-robin would move 9 of 12
  });

  it('a member leaving hands out only its own partitions', () => {
    const all = partitions('t', 12);
    const before = stickyAssignment(['m1', 'm2', 'm3', 'm4'].map((memberId) => ({ memberId, owned: [], generation: 0 })), all);
    const after = stickyAssignment(ownership(before).filter((m) => m.memberId !== 'm2'), all);
    expectValid(after, all);
    expect(moved(before, after)).toBe(0); // among the members that stayed, nothing moved
    for (const m of ['m1', 'm3', 'm4']) expect(keys(after.get(m)!)).toEqual(expect.arrayContaining(keys(before.get(m)!)));
  });

  it('a partition two members claim stays with the later generation; partitions gone are dropped, new ones given out', () => {
    const all = [...partitions('t', 3), { topic: 't', partition: 3 }];
    const result = stickyAssignment(
      [
        { memberId: 'old', owned: [{ topic: 't', partition: 0 }, { topic: 'gone', partition: 0 }], generation: 4 },
        { memberId: 'new', owned: [{ topic: 't', partition: 0 }], generation: 5 },
      ],
      all,
    );
    expectValid(result, all);
    expect(keys(result.get('new')!)).toContain('t-0');
    expect(keys(result.get('old')!)).not.toContain('gone-0');
  });

  it('spreads each topic over the members when one joins, instead of handing over whole topics', () => {
    const all = [...partitions('a', 4), ...partitions('b', 4)];
    const alone = stickyAssignment([{ memberId: 'm1', owned: [], generation: 0 }], all);
    const after = stickyAssignment([...ownership(alone), { memberId: 'm2', owned: [], generation: 0 }], all);
    expectValid(after, all);
    for (const member of ['m1', 'm2']) {
      expect(after.get(member)!.filter((p) => p.topic === 'a')).toHaveLength(2);
      expect(after.get(member)!.filter((p) => p.topic === 'b')).toHaveLength(2);
    }
  });

  it("gives a partition only to members subscribing to its topic, the other members' topics included", () => {
    const all = [...partitions('old', 4), ...partitions('new', 2)];
    const result = stickyAssignment(
      [
        { memberId: 'm1', owned: [], generation: 0, topics: ['old'] },
        { memberId: 'm2', owned: [], generation: 0, topics: ['old', 'new'] },
        { memberId: 'm3', owned: [{ topic: 'new', partition: 0 }], generation: 0, topics: ['old'] }, // unsubscribed since
      ],
      all,
    );
    expect(keys(result.get('m2')!)).toEqual(expect.arrayContaining(['new-0', 'new-1']));
    expect(keys(result.get('m1')!).some((k) => k.startsWith('new'))).toBe(false);
    expect(keys(result.get('m3')!).some((k) => k.startsWith('new'))).toBe(false);
    expect([...result.values()].flatMap(keys).sort()).toEqual(keys(all).sort());
  });

  it('an unchanged group moves nothing, mixed subscriptions included', () => {
    const all = [...partitions('t0', 1), ...partitions('t1', 3)];
    const members = [
      { memberId: 'm0', topics: ['t0', 't1'] },
      { memberId: 'm1', topics: ['t0', 't1'] },
      { memberId: 'm2', topics: ['t0'] },
      { memberId: 'm3', topics: ['t0'] },
    ];
    const first = stickyAssignment(members.map((m) => ({ ...m, owned: [], generation: 0 })), all);
    const again = stickyAssignment(members.map((m) => ({ ...m, owned: first.get(m.memberId)!, generation: 1 })), all);
    expect(again).toEqual(first);
  });

  it('stays valid and moves no more than balance needs, over many random groups', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 300; round++) {
      const all = partitions('t', 1 + random(40));
      const members = Array.from({ length: 1 + random(8) }, (_, i) => `m${i}`);
      const before = stickyAssignment(members.map((memberId) => ({ memberId, owned: [], generation: 0 })), all);
      // Some members leave, some join.
      const staying = ownership(before).filter(() => random(4) !== 0);
      const joining = Array.from({ length: random(3) }, (_, i) => ({ memberId: `n${i}`, owned: [], generation: 0 }));
      if (staying.length + joining.length === 0) continue;
      const after = stickyAssignment([...staying, ...joining], all);
      expectValid(after, all);
      // A staying member loses partitions only if it holds more than its share.
      const ceiling = Math.ceil(all.length / (staying.length + joining.length));
      for (const { memberId, owned } of staying) {
        const kept = keys(owned).filter((k) => keys(after.get(memberId)!).includes(k)).length;
        expect(kept).toBeGreaterThanOrEqual(Math.min(owned.length, ceiling) - 1);
      }
    }
  });
});
