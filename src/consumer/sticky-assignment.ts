/**
 * Sticky, balanced assignment of partitions to group members: the rule the group leader applies at every rebalance.
 *
 * Every member ends with ⌊n/m⌋ or ⌈n/m⌉ of the n partitions, and a partition stays with the member that owned it
 * unless the balance needs it elsewhere. A member joining takes only the partitions it needs from the fullest
 * members; a member leaving hands only its own partitions out. Each partition moves at most once per rebalance.
 *
 * Pure: kafkajs-sticky-assigner.ts feeds it what each member says it owned and the partitions the metadata shows.
 */
import { partitionKey } from '../record.js';

export interface TopicPartition {
  topic: string;
  partition: number;
}

/** What a member said it owned in the previous generation (empty for a new member). */
export interface MemberOwnership {
  memberId: string;
  owned: TopicPartition[];
  /** The generation of that ownership: when two members claim one partition, the later generation keeps it. */
  generation: number;
}

const byPartition = (a: TopicPartition, b: TopicPartition) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition);

/** memberId → its partitions, sorted; every member present (possibly with none), every partition given once. */
export function stickyAssignment(members: MemberOwnership[], partitions: TopicPartition[]): Map<string, TopicPartition[]> {
  const result = new Map<string, TopicPartition[]>();
  if (members.length === 0) return result;
  const memberIds = [...new Set(members.map((m) => m.memberId))].sort();
  for (const id of memberIds) result.set(id, []);

  const all = [...partitions].sort(byPartition);
  const exists = new Set(all.map((p) => partitionKey(p.topic, p.partition)));
  const ceiling = Math.ceil(all.length / memberIds.length);

  // 1. Each member keeps what it owned (that still exists, and that no later generation claims), up to ⌈n/m⌉.
  const taken = new Set<string>();
  const claimants = [...members].sort((a, b) => b.generation - a.generation || (a.memberId < b.memberId ? -1 : 1));
  for (const { memberId, owned } of claimants) {
    const kept = result.get(memberId)!;
    for (const p of [...owned].sort(byPartition)) {
      const key = partitionKey(p.topic, p.partition);
      if (kept.length >= ceiling || !exists.has(key) || taken.has(key)) continue;
      taken.add(key);
      kept.push({ topic: p.topic, partition: p.partition });
    }
  }

  // 2. Partitions nobody kept go, one by one, to the member with the fewest.
  const fewest = () => memberIds.reduce((best, id) => (result.get(id)!.length < result.get(best)!.length ? id : best), memberIds[0]!);
  for (const p of all) {
    if (taken.has(partitionKey(p.topic, p.partition))) continue;
    result.get(fewest())!.push(p);
  }

  // 3. Balance: while one member has two more than another, the fullest hands one partition to the emptiest.
  for (;;) {
    const most = memberIds.reduce((best, id) => (result.get(id)!.length > result.get(best)!.length ? id : best), memberIds[0]!);
    const least = fewest();
    if (result.get(most)!.length - result.get(least)!.length <= 1) break;
    result.get(least)!.push(result.get(most)!.pop()!);
  }

  for (const list of result.values()) list.sort(byPartition);
  return result;
}
