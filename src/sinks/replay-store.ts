/**
 * DLQ replays as tasks, in PostgreSQL (`sluice_replays`): what a replay selects (its definition and the DLQ's end
 * offsets when it began: records dead-lettered later are not part of it), how many records that is, and how far it
 * got. Progress itself is the replay group's offsets, committed with the records in one Kafka transaction; the
 * counts here follow each transaction and are what `dlq replay --status` reports.
 */
import type pg from 'pg';
import { quoteTable } from './sql-identifiers.js';
import { createTableIfMissing, tableExists } from './table-catalog.js';

export interface ReplayTask {
  replayId: string;
  dlqTopic: string;
  /** What the replay selects and where it sends: filters, target, loop guard. */
  definition: Record<string, unknown>;
  /** DLQ partition → the end offset when the replay began. */
  endOffsets: Record<string, string>;
  selected: number;
  replayed: number;
  /** Reason → records not replayed (already replayed, duplicate, loop guard, unknown source). */
  skipped: Record<string, number>;
  state: 'running' | 'done';
  startedAt: string;
  updatedAt: string;
}

export class ReplayStore {
  readonly #tableName: string;
  readonly #table: string;

  constructor(table = 'sluice_replays') {
    this.#tableName = table;
    this.#table = quoteTable(table);
  }

  ensureTable(client: pg.ClientBase): Promise<void> {
    return createTableIfMissing(
      client,
      this.#tableName,
      `replay_id text PRIMARY KEY,
       dlq_topic text NOT NULL,
       definition jsonb NOT NULL,
       end_offsets jsonb NOT NULL,
       selected bigint NOT NULL,
       replayed bigint NOT NULL DEFAULT 0,
       skipped jsonb NOT NULL DEFAULT '{}',
       state text NOT NULL DEFAULT 'running',
       started_at timestamptz NOT NULL DEFAULT now(),
       updated_at timestamptz NOT NULL DEFAULT now()`,
    );
  }

  async load(client: pg.ClientBase, replayId: string): Promise<ReplayTask | undefined> {
    if (!(await tableExists(client, this.#tableName))) return undefined;
    const { rows } = await client.query(
      `SELECT replay_id, dlq_topic, definition, end_offsets, selected::int AS selected, replayed::int AS replayed, skipped, state,
              started_at, updated_at FROM ${this.#table} WHERE replay_id = $1`,
      [replayId],
    );
    const r = rows[0] as Record<string, unknown> | undefined;
    if (!r) return undefined;
    return {
      replayId: r.replay_id as string,
      dlqTopic: r.dlq_topic as string,
      definition: r.definition as Record<string, unknown>,
      endOffsets: r.end_offsets as Record<string, string>,
      selected: r.selected as number,
      replayed: r.replayed as number,
      skipped: r.skipped as Record<string, number>,
      state: r.state as 'running' | 'done',
      startedAt: (r.started_at as Date).toISOString(),
      updatedAt: (r.updated_at as Date).toISOString(),
    };
  }

  /** Records a new replay; answers false when one with this id exists already (a concurrent start). */
  async create(client: pg.ClientBase, task: Pick<ReplayTask, 'replayId' | 'dlqTopic' | 'definition' | 'endOffsets' | 'selected'>): Promise<boolean> {
    await this.ensureTable(client);
    const result = await client.query(
      `INSERT INTO ${this.#table} (replay_id, dlq_topic, definition, end_offsets, selected) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (replay_id) DO NOTHING`,
      [task.replayId, task.dlqTopic, JSON.stringify(task.definition), JSON.stringify(task.endOffsets), task.selected],
    );
    return result.rowCount === 1;
  }

  async update(client: pg.ClientBase, replayId: string, progress: Pick<ReplayTask, 'replayed' | 'skipped' | 'state'>): Promise<void> {
    await client.query(`UPDATE ${this.#table} SET replayed = $2, skipped = $3, state = $4, updated_at = now() WHERE replay_id = $1`, [
      replayId,
      progress.replayed,
      JSON.stringify(progress.skipped),
      progress.state,
    ]);
  }
}
