import { z } from 'zod';
import { ColumnSources, Envelopes, KeyFormats, TombstonePolicies, ValueFormats, WriteModes } from './route-options.js';
import { Assignors, DeliveryModes, LogLevels, SaslMechanisms, StartPositions, StatusDetails } from './options.js';

/** Allowed ranges, in one place so that messages and checks agree. */
export const limits = {
  lingerMs: [50, 500],
  maxBatchRecords: [1, 100_000],
  maxBatchBytes: [1024, 256 * 1024 * 1024],
  maxBufferedBytes: [1024 * 1024, 4 * 1024 * 1024 * 1024],
  poolSize: [1, 64],
  statementTimeoutMs: [100, 3_600_000],
  idleInTransactionTimeoutMs: [1_000, 3_600_000],
  sessionTimeoutMs: [6_000, 300_000],
  heartbeatIntervalMs: [100, 60_000],
  metadataMaxAgeMs: [1_000, 3_600_000],
  retryBackoffMaxMs: [100, 60_000],
  shutdownGraceMs: [1_000, 600_000],
  statsIntervalMs: [100, 3_600_000],
  maxRecordBytes: [1, 256 * 1024 * 1024],
  maxJsonDepth: [1, 10_000],
  windowMs: [1_000, 86_400_000],
  minRecords: [1, 100_000_000],
  port: [0, 65_535],
  maxAttempts: [1, 1_000_000],
  maxRetryingMs: [1_000, 86_400_000],
  requestTimeoutMs: [100, 600_000],
} as const;

const int = (name: keyof typeof limits) => {
  const [min, max] = limits[name];
  const allowed = `an integer from ${min} to ${max}`;
  return z.coerce.number(allowed).int(allowed).min(min, allowed).max(max, allowed);
};

const ratio = z.coerce
  .number('a number from 0 to 1, such as 0.05 for 5 %')
  .min(0, 'a number from 0 to 1, such as 0.05 for 5 %')
  .max(1, 'a number from 0 to 1, such as 0.05 for 5 %');
/** One of a fixed set of values; the message lists them. */
const choice = <const T extends readonly [string, ...string[]]>(values: T) => z.enum(values, `one of ${values.join(', ')}`);

/** true/false, also as the text of an environment variable. */
const flag = z.union([z.boolean(), z.stringbool()], 'true or false');

const identifier = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;
const tableName = z
  .string()
  .refine(
    (s) => s.split('.').length <= 2 && s.split('.').every((part) => identifier.test(part)),
    'a table name or schema.table, each part letters, digits, _ or $ (63 characters at most)',
  );
const columnName = z.string().regex(identifier, 'a column name of letters, digits, _ or $ (63 characters at most)');
/** Type names travel into SQL text, so only plain type syntax is accepted: `numeric(10,2)`, `text[]`, `timestamp with time zone`. */
export const pgTypeName = /^[a-z_][a-z0-9_]*( [a-z_][a-z0-9_]*)*( ?\(\s*\d+\s*(,\s*\d+\s*)?\))?(\[\])*$/;
const typeName = z
  .string()
  .transform((s) => s.trim().toLowerCase())
  .refine((s) => pgTypeName.test(s), 'a PostgreSQL type name such as text, bigint, numeric(10,2), jsonb or text[]');

const columnMapping = z.union([
  z.string().min(1).transform((field) => ({ from: 'field' as const, field })),
  z
    .object({
      from: choice(ColumnSources).default('field'),
      field: z.string().min(1).optional(),
      type: typeName.optional(),
    })
    .strict(),
]);

const route = z
  .object({
    topic: z.string().min(1, 'a topic name'),
    table: tableName,
    mode: choice(WriteModes).optional(),
    key: z.array(columnName).min(1, 'at least one key column').optional(),
    version: columnName.optional(),
    columns: z.record(columnName, columnMapping).optional(),
    tombstones: choice(TombstonePolicies).optional(),
    format: choice(ValueFormats).optional(),
    envelope: choice(Envelopes).optional(),
    keyFormat: choice(KeyFormats).optional(),
    transform: z.function().optional(),
  })
  .strict();

export const optionsSchema = z
  .object({
    kafka: z
      .object({
        brokers: z
          .array(z.string().regex(/^[^\s:,]+:\d{1,5}$/, 'host:port'))
          .min(1, 'at least one broker as host:port'),
        clientId: z.string().min(1).optional(),
        groupId: z.string().min(1).optional(),
        startFrom: choice(StartPositions).optional(),
        sessionTimeoutMs: int('sessionTimeoutMs').optional(),
        heartbeatIntervalMs: int('heartbeatIntervalMs').optional(),
        metadataMaxAgeMs: int('metadataMaxAgeMs').optional(),
        retryBackoffMaxMs: int('retryBackoffMaxMs').optional(),
        assignor: choice(Assignors).optional(),
        ssl: z
          .union([
            flag,
            z
              .object({
                enabled: flag.optional(),
                caFile: z.string().min(1).optional(),
                certFile: z.string().min(1).optional(),
                keyFile: z.string().min(1).optional(),
                keyPassword: z.string().min(1).optional(),
                keyPasswordFile: z.string().min(1).optional(),
                insecureSkipVerify: flag.optional(),
              })
              .strict()
              .refine((tls) => tls.keyPassword === undefined || tls.keyPasswordFile === undefined, {
                path: ['keyPassword'],
                message: 'a key password or a key password file, not both (the file, for a mounted secret)',
              }),
          ])
          .optional(),
        sasl: z
          .object({
            mechanism: choice(SaslMechanisms),
            username: z.string().min(1).optional(),
            password: z.string().min(1).optional(),
            passwordFile: z.string().min(1).optional(),
            oauthBearerProvider: z.function().optional(),
          })
          .strict()
          .superRefine((sasl, ctx) => {
            if (sasl.mechanism === 'oauthbearer') {
              if (!sasl.oauthBearerProvider) ctx.addIssue({ code: 'custom', path: ['oauthBearerProvider'], message: 'a token provider (an option of the library) for oauthbearer' });
              return;
            }
            if (!sasl.username) ctx.addIssue({ code: 'custom', path: ['username'], message: `a user name for ${sasl.mechanism}` });
            if ((sasl.password === undefined) === (sasl.passwordFile === undefined)) {
              ctx.addIssue({ code: 'custom', path: ['password'], message: 'a password or a password file (one of them)' });
            }
          })
          .optional(),
      })
      .strict()
      .refine(
        (k) => {
          const tls = typeof k.ssl === 'object' ? k.ssl : undefined;
          return (tls?.certFile === undefined) === (tls?.keyFile === undefined);
        },
        { path: ['ssl', 'keyFile'], message: 'ssl.certFile and ssl.keyFile go together (a client certificate and its key)' },
      ),
    database: z
      .object({
        url: z
          .string('a PostgreSQL connection URL such as postgres://user@host:5432/db')
          .regex(/^postgres(ql)?:\/\//, 'a PostgreSQL connection URL such as postgres://user@host:5432/db'),
        poolSize: int('poolSize').optional(),
        statementTimeoutMs: int('statementTimeoutMs').optional(),
        idleInTransactionTimeoutMs: int('idleInTransactionTimeoutMs').optional(),
      })
      .strict(),
    batching: z
      .object({
        lingerMs: int('lingerMs').optional(),
        maxBatchRecords: int('maxBatchRecords').optional(),
        maxBatchBytes: int('maxBatchBytes').optional(),
        maxBufferedBytes: int('maxBufferedBytes').optional(),
      })
      .strict()
      .optional(),
    delivery: choice(DeliveryModes).optional(),
    offsetsTable: tableName.optional(),
    validation: z
      .object({ maxRecordBytes: int('maxRecordBytes').optional(), maxJsonDepth: int('maxJsonDepth').optional() })
      .strict()
      .optional(),
    dlq: z
      .object({
        topic: z
          .string()
          .regex(/^[A-Za-z0-9._{}-]{1,249}$/, 'a topic name of letters, digits, . _ -, where {topic} stands for the source topic')
          .optional(),
        createTopics: flag.optional(),
        maxAttempts: int('maxAttempts').optional(),
      })
      .strict()
      .optional(),
    readiness: z.object({ maxRetryingMs: int('maxRetryingMs').optional() }).strict().optional(),
    breaker: z
      .object({ maxDlqRatio: ratio.optional(), windowMs: int('windowMs').optional(), minRecords: int('minRecords').optional() })
      .strict()
      .optional(),
    http: z
      .object({ enabled: flag.optional(), port: int('port').optional(), host: z.string().min(1).optional(), status: choice(StatusDetails).optional() })
      .strict()
      .optional(),
    routes: z.array(route).optional(),
    schemaRegistry: z
      .object({
        url: z.string('an http:// or https:// URL').regex(/^https?:\/\/[^\s]+$/, 'an http:// or https:// URL'),
        username: z.string().min(1).optional(),
        password: z.string().optional(),
        passwordFile: z.string().min(1).optional(),
        token: z.string().min(1).optional(),
        tokenFile: z.string().min(1).optional(),
        requestTimeoutMs: int('requestTimeoutMs').optional(),
      })
      .strict()
      .superRefine((r, ctx) => {
        if (r.password !== undefined && r.passwordFile !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['password'], message: 'a password or a password file, not both (the file, for a mounted secret)' });
        }
        if (r.token !== undefined && r.tokenFile !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['token'], message: 'a token or a token file, not both (the file, for a mounted secret)' });
        }
        if ((r.token !== undefined || r.tokenFile !== undefined) && r.username !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['username'], message: 'basic auth (username and password) or a bearer token, not both' });
        }
        if ((r.password !== undefined || r.passwordFile !== undefined) && r.username === undefined) {
          ctx.addIssue({ code: 'custom', path: ['username'], message: 'a user name to go with the password' });
        }
      })
      .optional(),
    landing: z
      .object({ topics: z.array(z.string().min(1)).min(1, 'at least one topic'), table: tableName.optional() })
      .strict()
      .optional(),
    tombstones: choice(TombstonePolicies).optional(),
    shutdownGraceMs: int('shutdownGraceMs').optional(),
    statsIntervalMs: int('statsIntervalMs').optional(),
    logLevel: choice(LogLevels).optional(),
  })
  .strict();
