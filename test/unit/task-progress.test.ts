import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { duration, progressLine, taskProgress } from '../../src/cli/task-progress.js';
import { Terminal } from '../../src/cli/terminal.js';

/** A stream that keeps what is written to it; `tty` makes it look like a person's terminal. */
function output(tty: boolean): { stream: PassThrough & { isTTY?: boolean; columns?: number }; text: () => string } {
  const stream = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number };
  if (tty) Object.assign(stream, { isTTY: true, columns: 120 });
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  return { stream, text: () => text };
}

describe('Terminal', () => {
  it('colours on a terminal only, unless NO_COLOR or FORCE_COLOR say otherwise; TERM=dumb is not interactive', () => {
    const tty = output(true).stream;
    const pipe = output(false).stream;
    expect(new Terminal(tty, {}).paint('red', 'x')).toBe('\x1b[31mx\x1b[39m');
    expect(new Terminal(pipe, {}).paint('red', 'x')).toBe('x');
    expect(new Terminal(tty, { NO_COLOR: '1' }).paint('red', 'x')).toBe('x');
    expect(new Terminal(pipe, { FORCE_COLOR: '1' }).paint('red', 'x')).toBe('\x1b[31mx\x1b[39m');
    expect(new Terminal(tty, { FORCE_COLOR: '0' }).paint('red', 'x')).toBe('x');
    expect(new Terminal(tty, { TERM: 'dumb' }).interactive).toBe(false);
  });
});

describe('task progress', () => {
  it('in a pipe: a plain line per interval with the count, the rate and the time left', () => {
    const out = output(false);
    let now = 0;
    const progress = taskProgress(new Terminal(out.stream, {}), { intervalMs: 5_000, now: () => now });
    progress.begin('replay r-1', 100_000, 10_000);
    now = 2_000;
    progress.advance(20_000);
    expect(out.text()).toBe(''); // not yet an interval
    now = 5_000;
    progress.advance(50_000);
    now = 6_000;
    progress.advance(55_000);
    now = 10_000;
    progress.advance(90_000);
    progress.note('stopping');
    progress.end();
    // The rate over this run (resumed at 10,000): 40,000 in 5 s, then 80,000 in 10 s.
    expect(out.text()).toBe(
      'replay r-1: 50,000 of 100,000 records (50%), 8,000 records/s, about 6 s left\n' +
        'replay r-1: 90,000 of 100,000 records (90%), 8,000 records/s, about 1 s left\n' +
        'stopping\n',
    );
    expect(out.text()).not.toContain('\x1b');
  });

  it('on a terminal: a bar drawn in place, the cursor hidden while it is and given back at the end', () => {
    const out = output(true);
    let now = 0;
    const progress = taskProgress(new Terminal(out.stream, {}), { now: () => now });
    progress.begin('selecting', 400);
    now = 1_000;
    progress.advance(100);
    progress.end();
    const plain = out.text().replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    expect(plain).toContain('selecting ░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░ 0% | 0 of 400 records | - records/s | ETA -');
    expect(plain).toContain('selecting ████████░░░░░░░░░░░░░░░░░░░░░░ 25% | 100 of 400 records | 100 records/s | ETA 3 s');
    expect(out.text()).toContain('\x1b[?25l');
    expect(out.text()).toContain('\x1b[?25h');
  });

  it('says how long in a readable unit', () => {
    expect(duration(0.4)).toBe('0 s');
    expect(duration(75)).toBe('1 min 15 s');
    expect(duration(7_260)).toBe('2 h 1 min');
    expect(progressLine('reading dlq', 0, 0, undefined, undefined)).toBe('reading dlq: 0 of 0 records (100%)');
  });
});
