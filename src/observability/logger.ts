import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config/options.js';

/**
 * JSON logs on stdout. Connection strings are never logged as they are: `redactUrl` strips the password, and
 * these paths are censored wherever they appear.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      name: 'sluice',
      level,
      base: { pid: process.pid },
      redact: { paths: ['password', '*.password', 'url', '*.url', 'connectionString', '*.connectionString'], censor: '[redacted]' },
    },
    destination,
  );
}

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}
