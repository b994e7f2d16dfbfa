/**
 * A record sent to a DLQ topic, as /status shows it. A type of its own: /status (a public type) shows it without
 * reaching the DLQ's or the sink's internals.
 */
export interface DeadLetteredRecord {
  topic: string;
  partition: number;
  offset: string;
  dlqTopic: string;
  code: string;
  sqlState?: string;
  reason: string;
  /** When the DLQ acknowledged it, ms since the epoch. */
  atMs: number;
}
