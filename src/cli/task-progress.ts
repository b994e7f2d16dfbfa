/**
 * Progress of a long command (reading a DLQ, a replay), written to stderr so that stdout holds only the result. On a
 * person's terminal: a bar redrawn in place, with the count, the rate and the time left (cli-progress). In a pipe or
 * a log: a plain line every `intervalMs`, with the same facts, and no escape codes.
 */
import cliProgress from 'cli-progress';
import type { Terminal } from './terminal.js';

export interface TaskProgress {
  /** A new task of `total` units (records), `done` of them already (a resumed replay). */
  begin(label: string, total: number, done?: number): void;
  /** `done` units in all so far. */
  advance(done: number): void;
  /** A line of its own, above the bar on a terminal. */
  note(line: string): void;
  /** The task is over: the bar stays as it was last drawn. */
  end(): void;
}

export interface TaskProgressOptions {
  /** Between two plain lines (default 5 s). */
  intervalMs?: number;
  now?: () => number;
}

/** What a task has done: the rate over this run, and the time left at that rate. */
class Pace {
  private readonly startedAt: number;
  done: number;

  constructor(
    readonly label: string,
    readonly total: number,
    private readonly startDone: number,
    private readonly now: () => number,
  ) {
    this.startedAt = now();
    this.done = startDone;
  }

  /** Units per second in this run; undefined before a first unit or a first millisecond. */
  rate(): number | undefined {
    const seconds = (this.now() - this.startedAt) / 1000;
    const moved = this.done - this.startDone;
    return seconds > 0 && moved > 0 ? moved / seconds : undefined;
  }

  /** Seconds left at the current rate. */
  secondsLeft(): number | undefined {
    const rate = this.rate();
    return rate === undefined ? undefined : Math.max(0, this.total - this.done) / rate;
  }
}

const count = new Intl.NumberFormat('en-US');

/** 75 s → "1 min 15 s". */
export function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A progress line: "replay r-1: 12,000 of 100,000 records (12%), 8,900 records/s, about 10 s left". */
export function progressLine(label: string, done: number, total: number, rate: number | undefined, secondsLeft: number | undefined): string {
  const percent = total > 0 ? Math.floor((done / total) * 100) : 100;
  const parts = [`${label}: ${count.format(done)} of ${count.format(total)} records (${percent}%)`];
  if (rate !== undefined) parts.push(`${count.format(Math.round(rate))} records/s`);
  if (secondsLeft !== undefined && done < total) parts.push(`about ${duration(secondsLeft)} left`);
  return parts.join(', ');
}

/** A scan's `onProgress` shown as a task: the offsets it covers, begun when it knows how many. */
export function scanProgress(progress: TaskProgress, label: string): (passed: number, total: number) => void {
  let begun = false;
  return (passed, total) => {
    if (!begun) progress.begin(label, total);
    begun = true;
    progress.advance(passed);
  };
}

export function taskProgress(terminal: Terminal, options: TaskProgressOptions = {}): TaskProgress {
  return terminal.interactive ? new BarProgress(terminal, options.now ?? Date.now) : new LineProgress(terminal, options.intervalMs ?? 5_000, options.now ?? Date.now);
}

/** Plain lines, at most one per interval. */
class LineProgress implements TaskProgress {
  private pace: Pace | undefined;
  private lastLineAt = 0;

  constructor(
    private readonly terminal: Terminal,
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  begin(label: string, total: number, done = 0): void {
    this.pace = new Pace(label, total, done, this.now);
    this.lastLineAt = this.now();
  }

  advance(done: number): void {
    const pace = this.pace;
    if (!pace) return;
    pace.done = done;
    if (this.now() - this.lastLineAt < this.intervalMs) return;
    this.lastLineAt = this.now();
    this.terminal.write(`${progressLine(pace.label, pace.done, pace.total, pace.rate(), pace.secondsLeft())}\n`);
  }

  note(line: string): void {
    this.terminal.write(`${line}\n`);
  }

  end(): void {
    this.pace = undefined;
  }
}

/** A bar redrawn in place, a few times a second at most. */
class BarProgress implements TaskProgress {
  private bar: cliProgress.SingleBar | undefined;
  private pace: Pace | undefined;

  constructor(
    private readonly terminal: Terminal,
    private readonly now: () => number,
  ) {}

  begin(label: string, total: number, done = 0): void {
    this.end();
    this.pace = new Pace(label, total, done, this.now);
    const t = this.terminal;
    this.bar = new cliProgress.SingleBar({
      stream: t.stream as NodeJS.WritableStream,
      format: `${t.paint('bold', label)} ${t.paint('cyan', '{bar}')} {percentage}% | {done} of {all} records | {rate} | ETA {left}`,
      barCompleteChar: '█',
      barIncompleteChar: '░',
      barsize: 30,
      hideCursor: true,
      fps: 5,
    });
    this.bar.start(Math.max(total, 1), Math.min(done, Math.max(total, 1)), this.payload());
  }

  advance(done: number): void {
    if (!this.bar || !this.pace) return;
    this.pace.done = done;
    this.bar.update(Math.min(done, Math.max(this.pace.total, 1)), this.payload());
  }

  note(line: string): void {
    // Over the bar's line; the bar is drawn again below it.
    this.terminal.write(`\r\x1b[K${line}\n`);
    this.bar?.render();
  }

  end(): void {
    this.bar?.stop();
    this.bar = undefined;
    this.pace = undefined;
  }

  private payload(): Record<string, string> {
    const pace = this.pace!;
    const rate = pace.rate();
    const left = pace.secondsLeft();
    // The rate and the time left over the whole run, as the plain lines give them: steady through a --rate replay's
    // pauses, and no estimate before there is a rate.
    return {
      done: count.format(pace.done),
      all: count.format(pace.total),
      rate: rate === undefined ? '- records/s' : `${count.format(Math.round(rate))} records/s`,
      left: left === undefined ? '-' : duration(left),
    };
  }
}
