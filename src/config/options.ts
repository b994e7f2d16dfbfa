import type { ResolvedRoute, RouteOptions, TombstonePolicy } from './route-options.js';

export const StartPositions = ['earliest', 'latest'] as const;
export type StartPosition = (typeof StartPositions)[number];

export const LogLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LogLevels)[number];

/** Options of `createSluice`. Everything but the broker list, the database URL and the routes has a default. */
export interface SluiceOptions {
  kafka: {
    brokers: string[];
    clientId?: string;
    groupId?: string;
    /** Where a group with no committed offset starts. */
    startFrom?: StartPosition;
    sessionTimeoutMs?: number;
    heartbeatIntervalMs?: number;
  };
  database: {
    url: string;
    poolSize?: number;
    /** Upper bound for one flush's statements; a stuck query cannot hold a partition forever. */
    statementTimeoutMs?: number;
  };
  batching?: {
    /** Time from the first buffered record of a partition to its flush. */
    lingerMs?: number;
    maxBatchRecords?: number;
    maxBatchBytes?: number;
    /** Global cap over all partitions' buffers and in-flight batches; above it the fullest partitions pause. */
    maxBufferedBytes?: number;
  };
  routes?: RouteOptions[];
  /** Zero-config mode: these topics land in `landing.table` (created if missing) as key, jsonb value and coordinates. */
  landing?: { topics: string[]; table?: string };
  tombstones?: TombstonePolicy;
  shutdownGraceMs?: number;
  statsIntervalMs?: number;
  logLevel?: LogLevel;
}

export const defaults = {
  clientId: 'sluice',
  groupId: 'sluice',
  startFrom: 'earliest',
  sessionTimeoutMs: 30_000,
  heartbeatIntervalMs: 3_000,
  poolSize: 4,
  statementTimeoutMs: 30_000,
  lingerMs: 200,
  maxBatchRecords: 2_000,
  maxBatchBytes: 4 * 1024 * 1024,
  maxBufferedBytes: 16 * 1024 * 1024,
  landingTable: 'sluice_landing',
  shutdownGraceMs: 30_000,
  statsIntervalMs: 10_000,
  logLevel: 'info',
} as const satisfies Record<string, string | number>;

/** Options with every default applied; what the rest of sluice reads. */
export interface ResolvedOptions {
  kafka: Required<SluiceOptions['kafka']>;
  database: Required<SluiceOptions['database']>;
  batching: Required<NonNullable<SluiceOptions['batching']>>;
  routes: ResolvedRoute[];
  landing: { topics: string[]; table: string } | undefined;
  tombstones: TombstonePolicy | undefined;
  shutdownGraceMs: number;
  statsIntervalMs: number;
  logLevel: LogLevel;
}
