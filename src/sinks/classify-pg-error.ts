import { SinkError } from '../errors.js';

/**
 * PostgreSQL errors are classified by SQLSTATE class, never by message text
 * (https://www.postgresql.org/docs/current/errcodes-appendix.html).
 * Retriable: connection exceptions (08), insufficient resources (53), operator intervention (57P: admin shutdown,
 * crash shutdown, cannot connect now), serialization failure (40001) and deadlock (40P01), and the network errors
 * node raises before any SQLSTATE exists. The one exception to "never by message": node-postgres reports a
 * connection that died mid-query as a plain Error without any code ("Connection terminated unexpectedly").
 */
const retriableSqlStates = [/^08/, /^53/, /^57P/, /^40001$/, /^40P01$/];
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

interface PgLikeError {
  code?: unknown;
  message?: unknown;
}

export function classifyPgError(error: unknown, what: string): SinkError {
  const code = (error as PgLikeError | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
    const retriable = retriableSqlStates.some((re) => re.test(code));
    return new SinkError(`${what} failed: ${message} (SQLSTATE ${code})`, { retriable, cause: error, sqlState: code });
  }
  const retriable =
    (typeof code === 'string' && retriableNodeCodes.has(code)) ||
    /Connection terminated|connection timeout|Client has encountered a connection error/i.test(message);
  return new SinkError(`${what} failed: ${message}`, { retriable, cause: error });
}
