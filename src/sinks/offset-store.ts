import type pg from 'pg';
import { quoteTable } from './sql-identifiers.js';
import { createTableIfMissing, tableExists } from './table-catalog.js';

/** A partition claimed by this member: the claim number that fences older owners, and where to resume. */
export interface PartitionClaim {
  topic: string;
  partition: number;
  claim: string;
  /** The next offset stored with the data, or undefined if this group never wrote the partition. */
  nextOffset: string | undefined;
}

/** Why a fenced write was refused. */
export type FenceRefusal =
  /**
   * Another member claimed the partition since (`storedClaim`, this member's being older), or its row is gone
   * (`storedClaim` undefined: deleted by hand): this member must not write it.
   */
  | { reason: 'claimed'; storedClaim?: string }
  /**
   * The batch does not start where the stored offsets end (they were changed under this member): the fetch position
   * must move to `nextOffset`.
   */
  | { reason: 'position'; nextOffset: string };

/**
 * Offsets stored with the data (exactly-once delivery). One row per (group, topic, partition) holds the next offset
 * to write and a claim number. A member that is assigned a partition claims it, which increments the number; every
 * flush first updates the row on the condition that its claim is still the latest and that the batch starts at the
 * stored next offset, in the same transaction as the rows. The row lock serializes writers of a partition, so of two
 * members that both believe they own it, only the one holding the latest claim can commit, and only the records
 * right after the last committed ones.
 */
export class OffsetStore {
  readonly #tableName: string;
  readonly #table: string;
  readonly #groupId: string;

  constructor(table: string, groupId: string) {
    this.#tableName = table;
    this.#table = quoteTable(table);
    this.#groupId = groupId;
  }

  /** Creates the table if it is missing. */
  ensureTable(client: pg.ClientBase): Promise<void> {
    return createTableIfMissing(
      client,
      this.#tableName,
      `group_id text NOT NULL,
       topic text NOT NULL,
       partition integer NOT NULL,
       next_offset bigint,
       claim bigint NOT NULL,
       claimed_at timestamptz NOT NULL DEFAULT now(),
       updated_at timestamptz,
       PRIMARY KEY (group_id, topic, partition)`,
    );
  }

  /**
   * Claims the partitions of one topic for this member, in one statement that waits on no lock: a partition whose
   * row another session holds (a member frozen inside its flush, until its transaction ends) is left out, and the
   * others are claimed. Answers each claimed partition's claim and stored next offset, and the partitions left out,
   * to be claimed again shortly. A row held by a transaction that then commits is claimed after it, with the offset
   * it stored; one that is rolled back (idle_in_transaction_session_timeout) leaves the row as it was.
   *
   * `seen` (partition → claim), for partitions found busy before: they are claimed only if their claim is still the
   * one seen then. A partition claimed by someone else meanwhile is answered in `taken`, not claimed: its new owner
   * came after this member's assignment, which is then over, and claiming it again would fence that owner.
   * Answers, for busy partitions, the claim they hold now (read without a lock), for the next attempt's `seen`.
   *
   * `held` (partition → claim), for partitions this member kept through a rebalance under the claim it made before:
   * where the row still holds that claim, nobody has claimed the partition since, so there is nothing to fence. It
   * is answered as claimed, unchanged, with the next offset read without a lock, and without waiting for this
   * member's own flush of it, which may hold the row right now.
   */
  async claim(
    client: pg.ClientBase,
    topic: string,
    partitions: number[],
    seen: ReadonlyMap<number, string> = new Map(),
    held: ReadonlyMap<number, string> = new Map(),
  ): Promise<{ claims: PartitionClaim[]; busy: Map<number, string | undefined>; taken: number[] }> {
    const result = await client.query<{ partition: number; outcome: 'claimed' | 'busy' | 'taken'; claim: string; next_offset: string | null }>(
      `WITH seen AS (
         SELECT * FROM unnest($4::int[], $5::bigint[]) AS s(partition, claim)
       ), held AS (
         SELECT * FROM unnest($6::int[], $7::bigint[]) AS h(partition, claim)
       ), present AS (
         SELECT partition, claim, next_offset FROM ${this.#table} WHERE group_id = $1 AND topic = $2 AND partition = ANY($3::int[])
       ), kept AS (
         -- KEY SHARE does not wait for this member's own flush (which updates no key), but skips a row whose claim
         -- another session is changing right now: that row is then busy, and taken if the change commits.
         SELECT o.partition, o.claim, o.next_offset FROM ${this.#table} AS o JOIN held ON held.partition = o.partition AND held.claim = o.claim
          WHERE o.group_id = $1 AND o.topic = $2 AND o.partition = ANY($3::int[])
         FOR KEY SHARE OF o SKIP LOCKED
       ), free AS (
         SELECT o.partition FROM ${this.#table} AS o
          WHERE o.group_id = $1 AND o.topic = $2 AND o.partition = ANY($3::int[])
            AND NOT EXISTS (SELECT 1 FROM seen WHERE seen.partition = o.partition AND seen.claim <> o.claim)
            AND o.partition NOT IN (SELECT partition FROM kept)
         FOR UPDATE OF o SKIP LOCKED
       ), claimed AS (
         UPDATE ${this.#table} AS o SET claim = o.claim + 1, claimed_at = now() FROM free
          WHERE o.group_id = $1 AND o.topic = $2 AND o.partition = free.partition
         RETURNING o.partition, o.claim, o.next_offset
       ), created AS (
         INSERT INTO ${this.#table} (group_id, topic, partition, claim)
         SELECT $1, $2, p, 1 FROM unnest($3::int[]) AS p WHERE p NOT IN (SELECT partition FROM present)
         ON CONFLICT (group_id, topic, partition) DO NOTHING
         RETURNING partition, claim, next_offset
       )
       SELECT partition, 'claimed' AS outcome, claim::text AS claim, next_offset::text AS next_offset FROM claimed
       UNION ALL
       SELECT partition, 'claimed', claim::text, next_offset::text FROM created
       UNION ALL
       SELECT partition, 'claimed', claim::text, next_offset::text FROM kept
       UNION ALL
       SELECT present.partition, CASE WHEN seen.claim IS NOT NULL AND seen.claim <> present.claim THEN 'taken' ELSE 'busy' END,
              present.claim::text, NULL
         FROM present LEFT JOIN seen ON seen.partition = present.partition
        WHERE present.partition NOT IN (SELECT partition FROM claimed) AND present.partition NOT IN (SELECT partition FROM kept)`,
      [this.#groupId, topic, partitions, [...seen.keys()], [...seen.values()], [...held.keys()], [...held.values()]],
    );
    const claims: PartitionClaim[] = [];
    const busy = new Map<number, string | undefined>();
    const taken: number[] = [];
    for (const r of result.rows) {
      if (r.outcome === 'claimed') claims.push({ topic, partition: r.partition, claim: r.claim, nextOffset: r.next_offset ?? undefined });
      else if (r.outcome === 'taken') taken.push(r.partition);
      else busy.set(r.partition, r.claim);
    }
    // A row inserted by another session since this statement's snapshot: neither claimed nor seen; try again.
    const answered = new Set([...claims.map((c) => c.partition), ...busy.keys(), ...taken]);
    for (const p of partitions) if (!answered.has(p)) busy.set(p, seen.get(p));
    return { claims, busy, taken };
  }

  /**
   * Outside any transaction, before a batch's poison records go to the DLQ: whether this member still holds the
   * latest claim and the batch starts where the stored offsets end. A read without a lock (the fence in the batch's
   * transaction still decides); it keeps a member that lost the partition from sending records that are no longer
   * its own to the DLQ.
   */
  async check(
    query: (config: pg.QueryConfig) => Promise<pg.QueryResult>,
    at: { topic: string; partition: number; claim: string; fromOffset: string },
  ): Promise<FenceRefusal | undefined> {
    const row = await this.#read(query, at);
    if (!row) return { reason: 'claimed' };
    if (row.claim !== at.claim) return { reason: 'claimed', storedClaim: row.claim };
    if (row.next_offset !== null && row.next_offset !== at.fromOffset) return { reason: 'position', nextOffset: row.next_offset };
    return undefined;
  }

  /**
   * Inside the batch's transaction: moves the stored next offset from `fromOffset` to `toOffset` (the batch's covered
   * range, which may hold offsets without records: control records, aborted or compacted ones) if `claim` is still
   * the latest. A partition the group never wrote (no stored offset) accepts any start. Resolves undefined when it did, or why not (the caller then rolls back).
   */
  async advance(
    query: (config: pg.QueryConfig) => Promise<pg.QueryResult>,
    at: { topic: string; partition: number; claim: string; fromOffset: string; toOffset: string },
  ): Promise<FenceRefusal | undefined> {
    const moved = await query({
      name: 'sluice-offsets-advance',
      text: `UPDATE ${this.#table} SET next_offset = $5, updated_at = now()
              WHERE group_id = $1 AND topic = $2 AND partition = $3 AND claim = $4
                AND (next_offset = $6 OR next_offset IS NULL)`,
      values: [this.#groupId, at.topic, at.partition, at.claim, at.toOffset, at.fromOffset],
    });
    if (moved.rowCount === 1) return undefined;
    const row = await this.#read(query, at);
    if (!row) return { reason: 'claimed' };
    if (row.claim !== at.claim || row.next_offset === null) return { reason: 'claimed', storedClaim: row.claim };
    return { reason: 'position', nextOffset: row.next_offset };
  }

  /** Partition → the next offset stored with the data for `topic`, for every partition this group has a row for. */
  async stored(client: pg.ClientBase, topic: string): Promise<Map<number, string | undefined>> {
    if (!(await tableExists(client, this.#tableName))) return new Map();
    const rows = await client.query<{ partition: number; next_offset: string | null }>(
      `SELECT partition, next_offset::text AS next_offset FROM ${this.#table} WHERE group_id = $1 AND topic = $2`,
      [this.#groupId, topic],
    );
    return new Map(rows.rows.map((r) => [r.partition, r.next_offset ?? undefined]));
  }

  /**
   * Sets where partitions of `topic` resume (an operator's rewind, with sluice stopped): the next offset, and a new
   * claim, so that a member that did not notice it was stopped cannot write over it.
   */
  async set(client: pg.ClientBase, topic: string, offsets: ReadonlyMap<number, string>): Promise<void> {
    await this.ensureTable(client);
    await client.query(
      `INSERT INTO ${this.#table} AS o (group_id, topic, partition, next_offset, claim, updated_at)
         SELECT $1, $2, p, n, 1, now() FROM unnest($3::int[], $4::bigint[]) AS s(p, n)
       ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, claim = o.claim + 1, updated_at = now()`,
      [this.#groupId, topic, [...offsets.keys()], [...offsets.values()]],
    );
  }

  /** The partition's row: its latest claim and where its stored offsets end. */
  async #read(
    query: (config: pg.QueryConfig) => Promise<pg.QueryResult>,
    at: { topic: string; partition: number },
  ): Promise<{ claim: string; next_offset: string | null } | undefined> {
    const stored = await query({
      name: 'sluice-offsets-read',
      text: `SELECT claim::text AS claim, next_offset::text AS next_offset FROM ${this.#table}
              WHERE group_id = $1 AND topic = $2 AND partition = $3`,
      values: [this.#groupId, at.topic, at.partition],
    });
    return stored.rows[0] as { claim: string; next_offset: string | null } | undefined;
  }
}
