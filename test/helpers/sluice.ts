import { Writable } from 'node:stream';
import { pino } from 'pino';
import { onTestFinished } from 'vitest';
import { createSluice, type Sluice, type SluiceOptions } from '../../src/index.js';
import { brokers, databaseUrl, uniqueName } from './stack.js';

export interface TestSluice {
  sluice: Sluice;
  groupId: string;
  /** Parsed JSON log lines, for assertions on what sluice reported. */
  logs: Array<Record<string, unknown>>;
}

/** A sluice on the test stack with a fresh group, stopped when the test ends; logs are captured, not printed. */
export function testSluice(
  options: Omit<Partial<SluiceOptions>, 'kafka' | 'database'> &
    Pick<SluiceOptions, 'routes'> & { groupId?: string; database?: Partial<SluiceOptions['database']>; kafka?: Partial<SluiceOptions['kafka']> },
): TestSluice {
  const { groupId = uniqueName('group'), ...rest } = options;
  const logs: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const sluice = createSluice(
    {
      ...rest,
      kafka: { ...rest.kafka, brokers: rest.kafka?.brokers ?? brokers(), groupId },
      database: { ...rest.database, url: rest.database?.url ?? databaseUrl() },
      http: { port: 0, host: '127.0.0.1', ...rest.http },
      shutdownGraceMs: rest.shutdownGraceMs ?? 30_000,
    },
    { logger: pino({ level: 'debug' }, stream) },
  );
  onTestFinished(async () => {
    // A halted sluice ends in `failed` when stopped (with the reason it halted), which its test has asserted.
    if (sluice.state === 'halted') await sluice.stop().catch(() => undefined);
    else if (!['stopped', 'failed'].includes(sluice.state)) await sluice.stop();
  });
  return { sluice, groupId, logs };
}
