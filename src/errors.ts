/**
 * Typed errors. Every error sluice raises carries a stable `code`, a `retriable` flag decided when it is built
 * (never from message text), and the original `cause`. Callers classify with {@link isRetriable}, which walks the
 * cause chain.
 */
export const ErrorCodes = {
  config: 'SLUICE_CONFIG',
  schema: 'SLUICE_SCHEMA',
  poisonRecord: 'SLUICE_POISON_RECORD',
  sink: 'SLUICE_SINK',
  kafka: 'SLUICE_KAFKA',
  shutdownTimeout: 'SLUICE_SHUTDOWN_TIMEOUT',
  lifecycle: 'SLUICE_LIFECYCLE',
  deadLetter: 'SLUICE_DEAD_LETTER',
  breakerOpen: 'SLUICE_BREAKER_OPEN',
  offsets: 'SLUICE_OFFSETS',
  schemaRegistry: 'SLUICE_SCHEMA_REGISTRY',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface SluiceErrorOptions {
  retriable?: boolean;
  cause?: unknown;
  /**
   * What an operator must do: the condition is retried (it may be fixed while sluice waits), but only a bounded
   * number of times, since waiting alone will not fix it (a DLQ topic too small, a missing ACL, a deleted topic).
   */
  operatorFix?: string;
}

export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;

  constructor(code: ErrorCode, message: string, options: SluiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options.retriable ?? false;
    if (options.operatorFix !== undefined) this.operatorFix = options.operatorFix;
  }

  /** See {@link SluiceErrorOptions.operatorFix}. */
  readonly operatorFix?: string;
}

/** A setting has a value that is not allowed. The message names the setting, the value and what is allowed. */
export class ConfigError extends SluiceError {
  readonly setting: string;
  constructor(setting: string, message: string) {
    super(ErrorCodes.config, message);
    this.setting = setting;
  }
}

/** A route's target does not match the database (missing table, column or unique key). */
export class SchemaError extends SluiceError {
  readonly table: string;
  constructor(table: string, message: string, cause?: unknown) {
    super(ErrorCodes.schema, message, { cause });
    this.table = table;
  }
}

/** Where a record came from; enough to find it again in Kafka. */
export interface RecordCoordinates {
  topic: string;
  partition: number;
  offset: string;
}

/** One record cannot be written by its route (undecodable value, missing key, a transform that threw). */
export class PoisonRecordError extends SluiceError {
  readonly record: RecordCoordinates;
  readonly reason: string;
  constructor(record: RecordCoordinates, reason: string, cause?: unknown) {
    super(
      ErrorCodes.poisonRecord,
      `record ${record.topic}[${record.partition}]@${record.offset} cannot be written: ${reason}`,
      { cause },
    );
    // Coordinates only: the error is logged, and must not carry the record's bytes along.
    this.record = { topic: record.topic, partition: record.partition, offset: record.offset };
    this.reason = reason;
  }
}

/**
 * How a failure is handled (the failure model in the README):
 * - transient: the same write may succeed later (database unreachable, deadlock): retry, never dead-letter;
 * - poison: one record cannot be written: dead-letter it and write the rest;
 * - systemic: every record would fail (missing table, permission denied): stop consuming until an operator acts.
 */
export type FailureClass = 'transient' | 'poison' | 'systemic';

/** A flush failed. `retriable` says whether writing the same batch again may succeed. */
export class SinkError extends SluiceError {
  readonly sqlState: string | undefined;
  /** The database could not be reached at all (as opposed to a conflict inside it): readiness goes false. */
  readonly unavailable: boolean;
  constructor(message: string, options: SluiceErrorOptions & { sqlState?: string; unavailable?: boolean }) {
    super(ErrorCodes.sink, message, options);
    this.sqlState = options.sqlState;
    this.unavailable = options.unavailable ?? false;
  }

  /**
   * Caused by some row rather than by the batch: a data error (SQLSTATE class 22), an integrity violation (23), or
   * a program limit (54, e.g. a value nested too deeply for the server's stack).
   */
  get rowLevel(): boolean {
    return this.sqlState !== undefined && /^(22|23|54)/.test(this.sqlState);
  }
}

/** Dead-lettered records could not be written to the DLQ topic; the batch waits and is retried. */
export class DeadLetterError extends SluiceError {
  readonly topic: string;
  constructor(topic: string, message: string, cause?: unknown, options: { retriable?: boolean } = {}) {
    const operatorFix = operatorFixOf(cause);
    super(ErrorCodes.deadLetter, message, { retriable: options.retriable ?? true, cause, ...(operatorFix ? { operatorFix } : {}) });
    this.topic = topic;
  }
}

/** The share of dead-lettered records went over the breaker's limit; consumption stopped. */
export class BreakerOpenError extends SluiceError {
  constructor(message: string) {
    super(ErrorCodes.breakerOpen, message);
  }
}

/**
 * The schema registry did not give a schema sluice needs to read a record. Unreachable, a timeout or a server error:
 * retriable, like an unreachable database (the batch waits, nothing is dead-lettered). Refused credentials: retriable
 * with an operator fix. A schema id the registry does not know is not this error: it makes the record poison.
 */
export class SchemaRegistryError extends SluiceError {
  /** The HTTP status, when the registry answered. */
  readonly status: number | undefined;
  constructor(message: string, options: SluiceErrorOptions & { status?: number } = {}) {
    super(ErrorCodes.schemaRegistry, message, { retriable: true, ...options });
    this.status = options.status;
  }
}

export class KafkaError extends SluiceError {
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super(ErrorCodes.kafka, message, options);
  }
}

export class ShutdownTimeoutError extends SluiceError {
  constructor(graceMs: number) {
    super(ErrorCodes.shutdownTimeout, `shutdown did not finish within shutdownGraceMs=${graceMs}`);
  }
}

/** The failure class of an error, decided by its type and flags (see {@link FailureClass}). */
export function failureClass(error: unknown): FailureClass {
  if (error instanceof PoisonRecordError) return 'poison';
  if (error instanceof SinkError && error.rowLevel) return 'poison';
  return isRetriable(error) ? 'transient' : 'systemic';
}

/** Walks `cause` chains; the first {@link SluiceError} found decides. Unknown errors are not retriable. */
export function isRetriable(error: unknown): boolean {
  for (const e of causeChain(error)) if (e instanceof SluiceError) return e.retriable;
  return false;
}

/** Walks `cause` chains for what an operator must do (see {@link SluiceErrorOptions.operatorFix}). */
export function operatorFixOf(error: unknown): string | undefined {
  for (const e of causeChain(error)) if (e instanceof SluiceError && e.operatorFix !== undefined) return e.operatorFix;
  return undefined;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The SQLSTATE anywhere on the cause chain: a SinkError's, or that of the PostgreSQL error itself. */
export function sqlStateOf(error: unknown): string | undefined {
  for (const e of causeChain(error)) {
    if (e instanceof SinkError && e.sqlState) return e.sqlState;
    // pg's DatabaseError: a five-character code and a severity.
    const { code, severity } = e as { code?: unknown; severity?: unknown };
    if (typeof code === 'string' && typeof severity === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/** `error`, then its `cause`, and so on (at most 16 deep: a cycle of causes ends there). */
export function* causeChain(error: unknown): Generator<object> {
  for (let e: unknown = error, depth = 0; e != null && typeof e === 'object' && depth < 16; depth++) {
    yield e;
    e = (e as { cause?: unknown }).cause;
  }
}
