import { describe, expect, it } from 'vitest';
import { PoisonRecordError, failureClass, isRetriable } from '../../src/errors.js';
import { classifyPgError } from '../../src/sinks/classify-pg-error.js';

const pgError = (code: string) => Object.assign(new Error(`server said ${code}`), { code });

describe('classifyPgError', () => {
  it.each(['08006', '53300', '57P01', '57P03', '25006'])('treats SQLSTATE %s as transient, the database unavailable', (code) => {
    const error = classifyPgError(pgError(code), 'writing');
    expect(failureClass(error)).toBe('transient');
    expect(error.unavailable).toBe(true);
    expect(error.sqlState).toBe(code);
  });

  it.each(['40001', '40P01', '55P03', '57014'])('treats SQLSTATE %s as transient, the database still available', (code) => {
    const error = classifyPgError(pgError(code), 'writing');
    expect(failureClass(error)).toBe('transient');
    expect(error.unavailable).toBe(false);
  });

  it.each(['23505', '23502', '23514', '22P02', '22P05', '22001'])('treats SQLSTATE %s as a row-level (poison) error', (code) => {
    const error = classifyPgError(pgError(code), 'writing');
    expect(error.retriable).toBe(false);
    expect(error.rowLevel).toBe(true);
    expect(failureClass(error)).toBe('poison');
  });

  it.each([
    ['42P01', 'create the table'],
    ['42703', 'add the column'],
    ['42501', 'grant the database user'],
    ['28P01', 'check the user and password'],
    ['42804', 'the statement does not fit the table'],
  ])('treats SQLSTATE %s as systemic and says what to fix', (code, fix) => {
    const error = classifyPgError(pgError(code), 'writing');
    expect(failureClass(error)).toBe('systemic');
    expect(error.message).toContain(`(SQLSTATE ${code}); ${fix}`);
  });

  it('treats refused and dropped connections as transient, and keeps the cause', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const classified = classifyPgError(refused, 'connecting');
    expect(classified.retriable).toBe(true);
    expect(classified.unavailable).toBe(true);
    expect(classified.cause).toBe(refused);
    expect(isRetriable(new Error('outer', { cause: classified }))).toBe(true);
    expect(classifyPgError(new Error('Connection terminated unexpectedly'), 'writing').retriable).toBe(true);
  });

  it('treats a pool whose connections are all busy as transient, with the database still available', () => {
    const busy = classifyPgError(new Error('timeout exceeded when trying to connect'), 'connecting');
    expect(failureClass(busy)).toBe('transient');
    expect(busy.unavailable).toBe(false);
  });

  it('classifies a record sluice itself rejects as poison, and an unknown error as systemic', () => {
    expect(failureClass(new PoisonRecordError({ topic: 't', partition: 0, offset: '1' }, 'bad'))).toBe('poison');
    expect(failureClass(new Error('something else'))).toBe('systemic');
  });
});
