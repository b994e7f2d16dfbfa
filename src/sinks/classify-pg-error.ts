import { SinkError } from '../errors.js';

/**
 * PostgreSQL errors are classified by SQLSTATE, never by message text
 * (https://www.postgresql.org/docs/current/errcodes-appendix.html):
 * - transient, the database unreachable (readiness goes false): connection exceptions (08), insufficient resources
 *   (53, e.g. too many connections), operator intervention (57P: admin shutdown, crash shutdown, cannot connect
 *   now), a read-only transaction (25006: connected to a standby during a failover), and the network errors node
 *   raises before any SQLSTATE exists;
 * - transient, a conflict inside a working database: serialization failure (40001), deadlock (40P01), lock not
 *   available (55P03), a statement cancelled by `statement_timeout` (57014), and a transaction ended by
 *   `idle_in_transaction_session_timeout` (25P03);
 * - row-level (22 data exception, 23 integrity violation, 54 program limit): some record of the batch is poison;
 * - everything else is systemic: retrying the same batch cannot help (missing table or column, permission denied,
 *   authentication).
 * The exceptions to "never by message": node-postgres reports a connection that died mid-query as a plain Error
 * without any code ("Connection terminated unexpectedly"), and pg-pool a wait for a free connection that ran out
 * ("timeout exceeded when trying to connect"), which is transient but leaves the database available.
 */
const unavailableSqlStates = [/^08/, /^53/, /^57P/, /^25006$/];
// 25P03: this session sat in a transaction longer than idle_in_transaction_session_timeout (it was frozen, and the
// server ended it so that its locks do not block the partition's new owner); retrying on a new session is right.
const conflictSqlStates = [/^40001$/, /^40P01$/, /^55P03$/, /^57014$/, /^25P03$/];
const retriableNodeCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/** What an operator should do about a systemic error, by SQLSTATE. */
const fixes: Array<[RegExp, string]> = [
  [/^42P01$/, 'create the table, or correct the route'],
  [/^42703$/, 'add the column, or correct the route\'s columns'],
  [/^42501$/, 'grant the database user INSERT, UPDATE and DELETE on the table'],
  [/^28/, 'check the user and password in the database URL'],
  [/^3D000$/, 'create the database, or correct the database URL'],
  [/^42/, 'the statement does not fit the table: correct the route or the table'],
];

/** Node's TLS error codes met connecting: the fix, in terms of the database URL's libpq parameters. */
const untrustedCertificate = "the server's TLS certificate is not signed by the CA in the database URL's sslrootcert";
const tlsFixes: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: untrustedCertificate,
  SELF_SIGNED_CERT_IN_CHAIN: untrustedCertificate,
  DEPTH_ZERO_SELF_SIGNED_CERT: "the server's TLS certificate is self-signed: put it (or its CA) in the database URL's sslrootcert",
  ERR_TLS_CERT_ALTNAME_INVALID: "the server's TLS certificate does not name the host of the database URL: connect by a name it holds",
  CERT_HAS_EXPIRED: "the server's TLS certificate has expired",
};

interface PgLikeError {
  code?: unknown;
  message?: unknown;
}

export function classifyPgError(error: unknown, what: string): SinkError {
  const code = (error as PgLikeError | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
    const unavailable = unavailableSqlStates.some((re) => re.test(code));
    const retriable = unavailable || conflictSqlStates.some((re) => re.test(code));
    const fix = retriable ? undefined : fixes.find(([re]) => re.test(code))?.[1];
    return new SinkError(`${what} failed: ${message} (SQLSTATE ${code})${fix ? `; ${fix}` : ''}`, {
      retriable,
      unavailable,
      cause: error,
      sqlState: code,
    });
  }
  const unavailable =
    (typeof code === 'string' && retriableNodeCodes.has(code)) ||
    /Connection terminated|connection timeout|Client has encountered a connection error/i.test(message);
  // pg-pool's wait for a free connection ran out: every connection is busy (a slow database), not gone.
  const poolBusy = /timeout exceeded when trying to connect/i.test(message);
  const tlsFix = typeof code === 'string' ? tlsFixes[code] : undefined;
  return new SinkError(`${what} failed: ${message}${tlsFix ? `; ${tlsFix}` : ''}`, { retriable: unavailable || poolBusy, unavailable, cause: error });
}
