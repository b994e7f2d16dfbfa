import type { SluiceError } from '../errors.js';
import type { Assignment, SourceRecord } from '../record.js';
import type { FenceRefusal, PartitionClaim } from './offset-store.js';

/** Records of one topic-partition, in offset order, flushed together, and the offsets they cover. */
export interface Batch {
  topic: string;
  partition: number;
  /** Possibly none: a range of offsets that held only control records or aborted ones still moves the offsets. */
  records: SourceRecord[];
  /** The batch covers [fromOffset, toOffset): from where the previous batch of the partition ended. */
  fromOffset: string;
  toOffset: string;
  /** Assignment epoch the records were fetched under; see `Batcher.isCurrent`. */
  epoch: number;
  /** Exactly-once delivery: this member's claim on the partition, which the write's offset update must still hold. */
  claim?: string;
  /**
   * The topic whose routes write the records, when it is not `topic` (a DLQ replay into PostgreSQL: the offsets
   * fenced are the DLQ's, the routes those of the records' source topic).
   */
  routeTopic?: string;
}

/** A record of the batch that cannot be written, and the error that says why (a PoisonRecordError or a row-level SinkError). */
export interface PoisonRecord {
  record: SourceRecord;
  error: SluiceError;
}

export interface WriteContext {
  /** Asked just before COMMIT: false means the partition was revoked meanwhile and the write is rolled back. */
  isCurrent(): boolean;
  signal: AbortSignal;
  /** Records of this batch that an earlier attempt already dead-lettered: they are left out. */
  excluded: ReadonlySet<SourceRecord>;
  /**
   * Receives the batch's poison records (offset order), always with no transaction open: no lock is held while the
   * DLQ answers. The rows are written only once it has resolved; if it throws, nothing is written and the error is
   * passed on. So a record is never left out of the table without being in the dead-letter queue.
   */
  deadLetter(poison: PoisonRecord[]): Promise<void>;
}

export interface WriteResult {
  committed: boolean;
  upserted: number;
  deleted: number;
  /** Records that wrote nothing: tombstones under `ignore`, transforms that returned null, earlier duplicates of a key. */
  skipped: number;
  /**
   * Records of a versioned route that wrote nothing: the stored row, or another record of the batch with the same
   * key, has a newer version (or the same version at a later offset).
   */
  stale: number;
  /** Poison records handed to `deadLetter`. */
  deadLettered: number;
  /** Exactly-once delivery: the stored offsets refused the batch, which was rolled back. */
  fenced?: FenceRefusal;
}

export interface Sink {
  /** Checks (or creates, for landing) every route's table; throws naming what is missing. */
  start(): Promise<void>;
  write(batch: Batch, context: WriteContext): Promise<WriteResult>;
  /**
   * Exactly-once delivery: claims assigned partitions (topic → partitions) without waiting on a row lock. Undefined
   * once the assignment is over. `seen`: what an earlier round answered for busy partitions. `held`: partitions kept
   * through a rebalance, with the claim this member made before; where it is still the latest, it is answered
   * unchanged (see OffsetStore.claim).
   */
  claim?(assigned: Assignment[], isCurrent?: () => boolean, seen?: ClaimsSeen, held?: ClaimsSeen): Promise<ClaimRound | undefined>;
  close(): Promise<void>;
}

/** `topic:partition` → the claim a busy partition's row held when last seen. */
export type ClaimsSeen = ReadonlyMap<string, string>;

/** One round of claims. */
export interface ClaimRound {
  claims: PartitionClaim[];
  /** Rows another session holds: to be claimed again shortly, with `seen`. */
  busy: Assignment[];
  /** Claimed by another member since they were seen busy: this member's assignment of them is over. */
  taken: Assignment[];
  seen: Map<string, string>;
}
