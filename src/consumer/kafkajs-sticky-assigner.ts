/**
 * The sticky assignment (sticky-assignment.ts) as a kafkajs partition assigner.
 *
 * kafkajs speaks the eager protocol: at every rebalance each member rejoins and the leader assigns everything anew.
 * For the leader to keep partitions where they were, each member sends, in its JoinGroup metadata, the partitions it
 * owned and when it got them; the leader reads every member's and assigns with stickyAssignment. Metadata that cannot
 * be read (another client's, a corrupt one) counts as owning nothing.
 */
import kafkajs, { type PartitionAssigner } from 'kafkajs';
import { stickyAssignment, type MemberOwnership, type TopicPartition } from './sticky-assignment.js';

const { AssignerProtocol } = kafkajs;

export const stickyAssignerName = 'SluiceStickyAssigner';
const version = 1;

/** What this member owns now, for its next JoinGroup. */
export interface Ownership {
  partitions: TopicPartition[];
  /** When it joined the generation that gave it these (ms since the epoch): the later claim wins a conflict. */
  joinedAtMs: number;
}

/** Partitions grouped by topic, as the assignment protocol carries them. */
function byTopic(partitions: TopicPartition[]): Record<string, number[]> {
  const grouped: Record<string, number[]> = {};
  for (const { topic, partition } of partitions) (grouped[topic] ??= []).push(partition);
  return grouped;
}

function ownershipOf(memberId: string, metadata: Buffer): MemberOwnership {
  try {
    const decoded = AssignerProtocol.MemberMetadata.decode(metadata);
    const userData = JSON.parse(decoded?.userData?.toString('utf8') || '{}') as { owned?: Record<string, number[]>; joinedAtMs?: number };
    const owned = Object.entries(userData.owned ?? {}).flatMap(([topic, partitions]) =>
      Array.isArray(partitions) ? partitions.filter((p) => Number.isInteger(p)).map((partition) => ({ topic, partition })) : [],
    );
    const topics = Array.isArray(decoded?.topics) ? decoded.topics : undefined;
    return { memberId, owned, generation: typeof userData.joinedAtMs === 'number' ? userData.joinedAtMs : 0, ...(topics ? { topics } : {}) };
  } catch {
    // Not sluice's metadata: a member that owns nothing it can tell of, taken to subscribe to every topic.
    return { memberId, owned: [], generation: 0 };
  }
}

export function stickyAssigner(ownership: () => Ownership): PartitionAssigner {
  return ({ cluster }) => ({
    name: stickyAssignerName,
    version,
    async assign({ members, topics }) {
      // The leader's own topics (its client holds metadata for no others): a topic only other members subscribe to
      // (a rolling deploy adding a route) waits for a leader that subscribes to it. Fetching metadata for other
      // members' topics would add them to the leader's consumer for good. Within these topics, a partition only
      // goes to members subscribing to it.
      const ownership = members.map(({ memberId, memberMetadata }) => ownershipOf(memberId, memberMetadata));
      const partitions = topics.flatMap((topic) => cluster.findTopicPartitionMetadata(topic).map((m) => ({ topic, partition: m.partitionId })));
      const assignment = stickyAssignment(ownership, partitions);
      return [...assignment].map(([memberId, assigned]) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({ version, assignment: byTopic(assigned), userData: Buffer.alloc(0) }),
      }));
    },
    protocol({ topics }) {
      const { partitions, joinedAtMs } = ownership();
      const userData = Buffer.from(JSON.stringify({ owned: byTopic(partitions), joinedAtMs }));
      return { name: stickyAssignerName, metadata: AssignerProtocol.MemberMetadata.encode({ version, topics, userData }) };
    },
  });
}
