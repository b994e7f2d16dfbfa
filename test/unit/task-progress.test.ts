import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { duration, progressLine } from '../../src/cli/progress-text.js';
import { taskProgress } from '../../src/cli/task-progress.js';
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
    expect(new Terminal(pipe, { FORCE_COLOR: '' }).colour).toBe(true);
    expect(new Terminal(tty, { TERM: 'dumb' }).interactive).toBe(false);
  });
});

describe('task progress', () => {
  it('in a pipe: a plain line per interval with the count, the rate from the first step, and the time left', () => {
    const out = output(false);
    let now = 0;
    const progress = taskProgress(new Terminal(out.stream, {}), { intervalMs: 5_000, nowMs: () => now });
    progress.begin('replay r-1', 100_000, { done: 10_000 });
    now = 1_000; // connecting: not counted against the rate
    progress.advance(10_000);
    now = 2_000;
    progress.advance(20_000); // the first step
    expect(out.text()).toBe(''); // not yet an interval
    now = 6_000;
    progress.advance(52_000);
    now = 7_000;
    progress.advance(60_000);
    now = 12_000;
    progress.advance(92_000);
    progress.note('stopping');
    progress.end();
    // From the first step (20,000 at 2 s): 32,000 in 4 s, then 72,000 in 10 s.
    expect(out.text()).toBe(
      'replay r-1: 52,000 of 100,000 records (52%), 8,000 records/s, about 6 s left\n' +
        'replay r-1: 92,000 of 100,000 records (92%), 7,200 records/s, about 1 s left\n' +
        'stopping\n',
    );
    expect(out.text()).not.toContain('\x1b');
  });

  it('on a terminal: a bar drawn in place, that changes no terminal mode; a note goes above a new bar', () => {
    const out = output(true);
    let now = 0;
    const progress = taskProgress(new Terminal(out.stream, {}), { nowMs: () => now });
    progress.begin('reading {bar}', 400, { unit: 'offsets' });
    now = 500;
    progress.advance(100);
    now = 1_500;
    progress.advance(200);
    progress.note('stopping');
    progress.advance(300);
    progress.end();
    const plain = out.text().replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '');
    // The label is text, never a format token.
    expect(plain).toContain('reading {bar} ░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░ 0% | 0 of 400 offsets | - offsets/s | ETA -');
    expect(plain).toContain('reading {bar} ███████████████░░░░░░░░░░░░░░░ 50% | 200 of 400 offsets | 100 offsets/s | ETA 2 s');
    expect(plain).toMatch(/50% \| 200 of 400 offsets[^\n]*\nstopping\nreading \{bar\} /);
    expect(plain).toContain('75% | 300 of 400 offsets');
    expect(out.text()).not.toMatch(/\x1b\[\?(25|7)[lh]/); // cursor and line wrapping left alone
  });

  it('shows nothing for an empty task', () => {
    for (const tty of [true, false]) {
      const out = output(tty);
      const progress = taskProgress(new Terminal(out.stream, {}), { intervalMs: 0 });
      progress.begin('reading dlq', 0);
      progress.advance(0);
      progress.end();
      expect(out.text()).toBe('');
    }
  });

  it('says how long in a readable unit', () => {
    expect(duration(0.4)).toBe('0 s');
    expect(duration(75)).toBe('1 min 15 s');
    expect(duration(7_260)).toBe('2 h 1 min');
    expect(progressLine('reading dlq', 'offsets', 0, 0, undefined, undefined)).toBe('reading dlq: 0 of 0 offsets (100%)');
  });
});
