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
  /** The topics it subscribes to; undefined: every topic. A partition only goes to a member subscribing to it. */
  topics?: readonly string[];
  /** The generation of that ownership: when two members claim one partition, the later generation keeps it. */
  generation: number;
}

const byPartition = (a: TopicPartition, b: TopicPartition) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition);
/** Partition 0 of every topic, then partition 1 of every topic, …: what a member keeps and hands out in this order spreads each topic. */
const spread = (a: TopicPartition, b: TopicPartition) => a.partition - b.partition || (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0);

/** memberId → its partitions, sorted; every member present (possibly with none), every partition given once. */
export function stickyAssignment(members: MemberOwnership[], partitions: TopicPartition[]): Map<string, TopicPartition[]> {
  const result = new Map<string, TopicPartition[]>();
  if (members.length === 0) return result;
  const memberIds = [...new Set(members.map((m) => m.memberId))].sort();
  for (const id of memberIds) result.set(id, []);
  const subscriptions = new Map(members.map((m) => [m.memberId, m.topics === undefined ? undefined : new Set(m.topics)]));
  const subscribes = (memberId: string, topic: string) => subscriptions.get(memberId)?.has(topic) ?? true;

  const all = [...partitions].sort(spread);
  const exists = new Set(all.map((p) => partitionKey(p.topic, p.partition)));

  // 1. Each member keeps what it owned (that still exists, that it still subscribes to, and that no later
  //    generation claims); step 3 takes away what balance needs, so an unchanged group moves nothing, even where
  //    subscriptions differ and a member must stay above the average.
  const taken = new Set<string>();
  const claimants = [...members].sort((a, b) => b.generation - a.generation || (a.memberId < b.memberId ? -1 : 1));
  for (const { memberId, owned } of claimants) {
    const kept = result.get(memberId)!;
    for (const p of [...owned].sort(spread)) {
      const key = partitionKey(p.topic, p.partition);
      if (!exists.has(key) || taken.has(key) || !subscribes(memberId, p.topic)) continue;
      taken.add(key);
      kept.push({ topic: p.topic, partition: p.partition });
    }
  }

  // 2. Partitions nobody kept go, one by one, to the subscribing member with the fewest (a partition no member
  //    subscribes to stays unassigned).
  const count = (id: string) => result.get(id)!.length;
  for (const p of all) {
    if (taken.has(partitionKey(p.topic, p.partition))) continue;
    const eligible = memberIds.filter((id) => subscribes(id, p.topic));
    if (eligible.length === 0) continue;
    result.get(eligible.reduce((best, id) => (count(id) < count(best) ? id : best)))!.push(p);
  }

  // 3. Balance: while a member has two more than another that could take one of its partitions, it hands over the
  //    last it keeps (in spread order, so each topic stays spread), one partition at a time from the fullest to the
  //    emptiest, so that nothing moves twice.
  for (let moved = true; moved; ) {
    moved = false;
    const byCount = [...memberIds].sort((a, b) => count(b) - count(a) || (a < b ? -1 : 1));
    for (const most of byCount) {
      for (const least of [...byCount].reverse()) {
        if (count(most) - count(least) <= 1) break;
        const list = result.get(most)!;
        const at = list.findLastIndex((p) => subscribes(least, p.topic));
        if (at < 0) continue;
        result.get(least)!.push(list.splice(at, 1)[0]!);
        moved = true;
        break;
      }
      if (moved) break;
    }
  }

  for (const list of result.values()) list.sort(byPartition);
  return result;
}
