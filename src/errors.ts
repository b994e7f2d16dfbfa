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
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface SluiceErrorOptions {
  retriable?: boolean;
  cause?: unknown;
}

export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;

  constructor(code: ErrorCode, message: string, options: SluiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
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
    this.record = record;
    this.reason = reason;
  }
}

/** A flush failed. `retriable` says whether writing the same batch again may succeed. */
export class SinkError extends SluiceError {
  readonly sqlState: string | undefined;
  constructor(message: string, options: SluiceErrorOptions & { sqlState?: string }) {
    super(ErrorCodes.sink, message, options);
    this.sqlState = options.sqlState;
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

/** Walks `cause` chains; the first {@link SluiceError} found decides. Unknown errors are not retriable. */
export function isRetriable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e != null && depth < 16; depth++) {
    if (e instanceof SluiceError) return e.retriable;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
