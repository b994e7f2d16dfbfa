import { Writable } from 'node:stream';
import kafkajs from 'kafkajs';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { kafkajsLogCreator } from '../../src/consumer/kafkajs-log.js';

const { logLevel } = kafkajs;

function capture() {
  const lines: Array<{ level: number; msg: string }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  return { lines, log: pino({ level: 'debug' }, stream) };
}

describe('kafkajs log lines', () => {
  it('a condition kafkajs retries by itself is not an error: routine ones are debug, others warn; real errors stay errors', () => {
    const { lines, log } = capture();
    const write = kafkajsLogCreator(log)(logLevel.ERROR);
    const entry = (level: number, error: string) => ({ namespace: 'Connection', level, label: 'ERROR', log: { message: 'Response', timestamp: '', error } });
    write(entry(logLevel.ERROR, "The coordinator is loading and hence can't process requests for this group"));
    write(entry(logLevel.ERROR, 'The group coordinator is not available'));
    write(entry(logLevel.ERROR, 'There is no leader for this topic-partition as we are in the middle of a leadership election'));
    write(entry(logLevel.ERROR, 'Not authorized to access topics: [Topic authorization failed]'));
    expect(lines.map((l) => l.level)).toEqual([20, 20, 40, 50]);
  });
});
