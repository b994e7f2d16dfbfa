import type { ResolvedRoute, RouteOptions, TombstonePolicy } from './route-options.js';

export const StartPositions = ['earliest', 'latest'] as const;
export type StartPosition = (typeof StartPositions)[number];

/**
 * `exactly-once`: each flush stores the partition's next offset in PostgreSQL, in the same transaction as the rows,
 * and a member resumes from there; a record's effect is applied once, even by a route that is not idempotent.
 * `at-least-once`: offsets live only in the Kafka group; after a crash, records since the last commit are written
 * again (which upserts absorb and append routes do not).
 */
export const DeliveryModes = ['exactly-once', 'at-least-once'] as const;
export type DeliveryMode = (typeof DeliveryModes)[number];

export const StatusDetails = ['full', 'summary', 'off'] as const;
export type StatusDetail = (typeof StatusDetails)[number];

export const LogLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LogLevels)[number];

/**
 * TLS to the brokers. Verification is on: the brokers' certificates must be signed by `caFile` (or, without it, by
 * one of Node's bundled CAs) and name the host. Files are read again for every new connection, so a rotated
 * certificate or key is used without a restart.
 */
export interface KafkaTlsOptions {
  /** false turns TLS off (default: on when the object is given). */
  enabled?: boolean;
  /** PEM file of the CA (or CAs) that signed the brokers' certificates. */
  caFile?: string;
  /** PEM files of the client's certificate and key, for listeners that require one (mutual TLS). */
  certFile?: string;
  keyFile?: string;
  /** Passphrase of an encrypted key, or a file holding it (read again for every new connection). */
  keyPassword?: string;
  keyPasswordFile?: string;
  /** Accept any broker certificate. For a throwaway test cluster only: sluice warns at every start. */
  insecureSkipVerify?: boolean;
}

export const Assignors = ['sticky', 'round-robin'] as const;
export type Assignor = (typeof Assignors)[number];

export const SaslMechanisms = ['plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer'] as const;
export type SaslMechanism = (typeof SaslMechanisms)[number];

/** A token for SASL OAUTHBEARER, asked of the provider at every authentication (cache and refresh it there). */
export interface OauthBearerToken {
  value: string;
  /** SASL extensions sent with the token (Confluent Cloud's `logicalCluster` and `identityPoolId`, say). */
  extensions?: Record<string, string>;
}

/**
 * SASL authentication: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with a user and a password (or a password file, read
 * again for every new connection, so that a rotated password is used without a restart); OAUTHBEARER with a token
 * provider (library users).
 */
export type KafkaSaslOptions =
  | { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password?: string; passwordFile?: string }
  | { mechanism: 'oauthbearer'; oauthBearerProvider: () => Promise<OauthBearerToken> };

/** Options of `createSluice`. Everything but the broker list, the database URL and the routes has a default. */
/**
 * The schema registry that routes with `format: avro | protobuf | json-schema` read their schemas from (the
 * Confluent-compatible API). Basic auth (a user and a password, or a password file) or a bearer token (or a token
 * file); files are read at each request, so a rotated Secret is used without a restart. A private CA for an https
 * registry is given to Node with NODE_EXTRA_CA_CERTS.
 */
export interface SchemaRegistryOptions {
  /** The API's base URL: `http://registry:8081`, or Apicurio's `http://registry:8080/apis/ccompat/v7`. */
  url: string;
  username?: string;
  password?: string;
  passwordFile?: string;
  token?: string;
  tokenFile?: string;
  /** How long one request may take before it counts as the registry being unreachable (retried). */
  requestTimeoutMs?: number;
}

export interface SluiceOptions {
  kafka: {
    brokers: string[];
    clientId?: string;
    groupId?: string;
    /** Where a group with no committed offset starts. */
    startFrom?: StartPosition;
    sessionTimeoutMs?: number;
    heartbeatIntervalMs?: number;
    /**
     * How often the broker's topic metadata is read again: partitions added to a subscribed topic are consumed
     * within about this long (kafkajs' own default is 5 minutes).
     */
    metadataMaxAgeMs?: number;
    /**
     * The longest wait between two attempts at reaching Kafka (connecting, rejoining the group after the consumer
     * stopped): once the brokers are back, consuming resumes within about this long.
     */
    retryBackoffMaxMs?: number;
    /**
     * How the group's partitions are spread over its members at a rebalance. `sticky`: evenly, each partition staying
     * with its member unless the balance needs it elsewhere, so that a member joining or leaving moves only the
     * partitions it must and everything else keeps its buffers. `round-robin`: kafkajs' own, which moves almost every
     * partition at every change of membership. Members on different settings agree on round-robin.
     */
    assignor?: Assignor;
    /** TLS to the brokers: `true` for verification against Node's bundled CAs, or the details. */
    ssl?: boolean | KafkaTlsOptions;
    sasl?: KafkaSaslOptions;
  };
  database: {
    url: string;
    poolSize?: number;
    /** Upper bound for one flush's statements; a stuck query cannot hold a partition forever. */
    statementTimeoutMs?: number;
    /**
     * How long a sluice session may sit inside a transaction without a statement running before PostgreSQL ends it
     * (idle_in_transaction_session_timeout): a member frozen inside a flush (a long GC pause, SIGSTOP, a network
     * split) holds the offsets row and the batch's rows no longer than this after its statement ends.
     */
    idleInTransactionTimeoutMs?: number;
  };
  batching?: {
    /** Time from the first buffered record of a partition to its flush. */
    lingerMs?: number;
    maxBatchRecords?: number;
    maxBatchBytes?: number;
    /** Global cap over all partitions' buffers and in-flight batches; above it the fullest partitions pause. */
    maxBufferedBytes?: number;
  };
  delivery?: DeliveryMode;
  /** Where exactly-once delivery stores offsets (created if missing). */
  offsetsTable?: string;
  /** What makes a single record poison before any database sees it. */
  validation?: {
    /** A record whose key plus value is larger goes to the DLQ. */
    maxRecordBytes?: number;
    /** A JSON value that nests objects and arrays deeper goes to the DLQ. */
    maxJsonDepth?: number;
  };
  /** The dead-letter queue: one topic per source topic. */
  dlq?: {
    /** Topic name; `{topic}` is replaced by the source topic. */
    topic?: string;
    /** Create a missing DLQ topic at start-up (with the source topic's partition count). */
    createTopics?: boolean;
    /**
     * Attempts at a batch whose DLQ send the broker refuses in a way only an operator can fix (record too large for
     * the DLQ topic, authorization failed, topic deleted) before sluice halts with the fix.
     */
    maxAttempts?: number;
  };
  /** When sluice reports itself not ready. */
  readiness?: {
    /** A partition whose batch has been retrying for longer than this makes /readyz false, naming it. */
    maxRetryingMs?: number;
  };
  /** Stops consuming when too large a share of records goes to the DLQ. */
  breaker?: {
    /** Share of records, from 0 to 1, above which the breaker opens. */
    maxDlqRatio?: number;
    /** The sliding window the share is measured over. */
    windowMs?: number;
    /** The breaker does not judge fewer records than this. */
    minRecords?: number;
  };
  /** The health and status endpoints. */
  http?: {
    enabled?: boolean;
    /** 0 picks a free port (see `Sluice.httpAddress`). */
    port?: number;
    host?: string;
    /**
     * What /status and the status page show: `full` (default); `summary` (counts and offsets, without error texts,
     * which can quote record values, or the last DLQ records), for a port others can reach; `off` (neither is served).
     */
    status?: StatusDetail;
  };
  routes?: RouteOptions[];
  schemaRegistry?: SchemaRegistryOptions;
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
  heartbeatIntervalMs: 1_000,
  metadataMaxAgeMs: 30_000,
  retryBackoffMaxMs: 2_000,
  assignor: 'sticky',
  poolSize: 4,
  statementTimeoutMs: 30_000,
  idleInTransactionTimeoutMs: 10_000,
  lingerMs: 200,
  maxBatchRecords: 2_000,
  maxBatchBytes: 4 * 1024 * 1024,
  maxBufferedBytes: 16 * 1024 * 1024,
  landingTable: 'sluice_landing',
  delivery: 'exactly-once',
  offsetsTable: 'sluice_offsets',
  maxRecordBytes: 1024 * 1024,
  maxJsonDepth: 100,
  dlqTopic: '{topic}.dlq',
  dlqMaxAttempts: 10,
  maxRetryingMs: 60_000,
  maxDlqRatio: 0.05,
  breakerWindowMs: 60_000,
  breakerMinRecords: 500,
  httpPort: 8080,
  httpHost: '0.0.0.0',
  shutdownGraceMs: 30_000,
  statsIntervalMs: 10_000,
  logLevel: 'info',
  schemaRegistryRequestTimeoutMs: 10_000,
} as const satisfies Record<string, string | number>;

type Defined<T> = Required<NonNullable<T>>;

/** Options with every default applied; what the rest of sluice reads. */
export interface ResolvedOptions {
  kafka: Required<Omit<SluiceOptions['kafka'], 'ssl' | 'sasl'>> & {
    /** TLS to the brokers, or undefined for plaintext. */
    tls: Omit<KafkaTlsOptions, 'enabled'> | undefined;
    sasl: KafkaSaslOptions | undefined;
  };
  database: Required<SluiceOptions['database']>;
  batching: Defined<SluiceOptions['batching']>;
  validation: Defined<SluiceOptions['validation']>;
  dlq: Defined<SluiceOptions['dlq']>;
  readiness: Defined<SluiceOptions['readiness']>;
  breaker: Defined<SluiceOptions['breaker']>;
  http: Defined<SluiceOptions['http']>;
  delivery: DeliveryMode;
  offsetsTable: string;
  routes: ResolvedRoute[];
  schemaRegistry: (SchemaRegistryOptions & { requestTimeoutMs: number }) | undefined;
  landing: { topics: string[]; table: string } | undefined;
  tombstones: TombstonePolicy | undefined;
  shutdownGraceMs: number;
  statsIntervalMs: number;
  logLevel: LogLevel;
}
