import { describe, expect, it } from 'vitest';
import { isRetriable } from '../../src/errors.js';
import { classifyPgError } from '../../src/sinks/classify-pg-error.js';

const pgError = (code: string) => Object.assign(new Error(`server said ${code}`), { code });

describe('classifyPgError', () => {
  it.each(['08006', '53300', '57P01', '57P03', '40001', '40P01'])('treats SQLSTATE %s as retriable', (code) => {
    const error = classifyPgError(pgError(code), 'writing');
    expect(error.retriable).toBe(true);
    expect(error.sqlState).toBe(code);
  });

  it.each(['23505', '23502', '22P02', '42P01', '42501', '28P01'])('treats SQLSTATE %s as not retriable', (code) => {
    expect(classifyPgError(pgError(code), 'writing').retriable).toBe(false);
  });

  it('treats refused and dropped connections as retriable, and keeps the cause', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const classified = classifyPgError(refused, 'connecting');
    expect(classified.retriable).toBe(true);
    expect(classified.cause).toBe(refused);
    expect(isRetriable(new Error('outer', { cause: classified }))).toBe(true);
    expect(classifyPgError(new Error('Connection terminated unexpectedly'), 'writing').retriable).toBe(true);
  });
});
