/**
 * Progress of a long command (reading a DLQ, a replay), written to stderr so that stdout holds only the result. On a
 * person's terminal: a bar redrawn in place, with the count, the rate and the time left (cli-progress). In a pipe or
 * a log: a plain line every `intervalMs`, with the same facts, and no escape codes.
 *
 * The bar changes no terminal mode (the cursor stays visible, lines wrap as usual; cli-progress trims the bar to
 * the width instead), so a command killed by a signal mid-bar leaves the terminal as it found it.
 */
import cliProgress from 'cli-progress';
import { duration, formatCount, progressLine } from './progress-text.js';
import type { Terminal } from './terminal.js';

export interface TaskProgress {
  /** A new task of `total` units, `done` of them already (a resumed replay); `unit` names them (records, offsets). */
  begin(label: string, total: number, options?: { done?: number; unit?: string }): void;
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
  nowMs?: () => number;
}

/**
 * What a task has done, and its rate: measured from its first step forward, so that connecting and joining a group
 * before the first records arrive does not count as slowness.
 */
class Pace {
  done: number;
  #firstStep: { atMs: number; done: number } | undefined;

  constructor(
    readonly label: string,
    readonly total: number,
    readonly unit: string,
    done: number,
    private readonly nowMs: () => number,
  ) {
    this.done = done;
  }

  advance(done: number): void {
    if (this.#firstStep === undefined && done > this.done) this.#firstStep = { atMs: this.nowMs(), done };
    this.done = done;
  }

  /** Units per second after the first step; undefined until there is a second one to measure. */
  rate(): number | undefined {
    if (!this.#firstStep) return undefined;
    const seconds = (this.nowMs() - this.#firstStep.atMs) / 1000;
    const moved = this.done - this.#firstStep.done;
    return seconds > 0 && moved > 0 ? moved / seconds : undefined;
  }

  /** Seconds left at the current rate. */
  secondsLeft(): number | undefined {
    const rate = this.rate();
    return rate === undefined ? undefined : Math.max(0, this.total - this.done) / rate;
  }
}

/** A scan's `onProgress` (offsets passed, offsets in all) shown as a task, begun when it knows how many. */
export function scanProgress(progress: TaskProgress, label: string): (passedOffsets: number, totalOffsets: number) => void {
  let begun = false;
  return (passed, total) => {
    if (!begun) progress.begin(label, total, { unit: 'offsets' });
    begun = true;
    progress.advance(passed);
  };
}

export function taskProgress(terminal: Terminal, options: TaskProgressOptions = {}): TaskProgress {
  const nowMs = options.nowMs ?? Date.now;
  return terminal.interactive ? new BarProgress(terminal, nowMs) : new LineProgress(terminal, options.intervalMs ?? 5_000, nowMs);
}

/** Plain lines, at most one per interval; nothing for an empty task. */
class LineProgress implements TaskProgress {
  #pace: Pace | undefined;
  #lastLineAtMs = 0;

  constructor(
    private readonly terminal: Terminal,
    private readonly intervalMs: number,
    private readonly nowMs: () => number,
  ) {}

  begin(label: string, total: number, options: { done?: number; unit?: string } = {}): void {
    this.#pace = total > 0 ? new Pace(label, total, options.unit ?? 'records', options.done ?? 0, this.nowMs) : undefined;
    this.#lastLineAtMs = this.nowMs();
  }

  advance(done: number): void {
    const pace = this.#pace;
    if (!pace) return;
    pace.advance(done);
    if (this.nowMs() - this.#lastLineAtMs < this.intervalMs) return;
    this.#lastLineAtMs = this.nowMs();
    this.terminal.write(`${progressLine(pace.label, pace.unit, pace.done, pace.total, pace.rate(), pace.secondsLeft())}\n`);
  }

  note(line: string): void {
    this.terminal.write(`${line}\n`);
  }

  end(): void {
    this.#pace = undefined;
  }
}

/** A bar redrawn in place, a few times a second at most; none for an empty task. */
class BarProgress implements TaskProgress {
  #bar: cliProgress.SingleBar | undefined;
  #pace: Pace | undefined;

  constructor(
    private readonly terminal: Terminal,
    private readonly nowMs: () => number,
  ) {}

  begin(label: string, total: number, options: { done?: number; unit?: string } = {}): void {
    this.end();
    if (total <= 0) return;
    this.#pace = new Pace(label, total, options.unit ?? 'records', options.done ?? 0, this.nowMs);
    this.#draw();
  }

  advance(done: number): void {
    if (!this.#bar || !this.#pace) return;
    this.#pace.advance(done);
    this.#bar.update(Math.min(done, this.#pace.total), this.#payload());
  }

  note(line: string): void {
    // The bar stops where it is, the line goes below it, and a bar carries on below that.
    const bar = this.#bar;
    this.#bar = undefined;
    bar?.stop();
    this.terminal.write(`${line}\n`);
    if (bar) this.#draw();
  }

  end(): void {
    this.#bar?.stop();
    this.#bar = undefined;
    this.#pace = undefined;
  }

  #draw(): void {
    const pace = this.#pace!;
    // Every token from the payload: a label (a replay id) is never read as a format token.
    this.#bar = new cliProgress.SingleBar({
      stream: this.terminal.stream as NodeJS.WritableStream,
      // No colours: cli-progress trims the line to the terminal's width by its length, escape codes included.
      format: '{label} {bar} {percentage}% | {done} of {all} {unit} | {rate} | ETA {left}',
      barCompleteChar: '█',
      barIncompleteChar: '░',
      barsize: 30,
      hideCursor: false,
      linewrap: true,
      fps: 5,
    });
    this.#bar.start(pace.total, Math.min(pace.done, pace.total), this.#payload());
  }

  #payload(): Record<string, string> {
    const pace = this.#pace!;
    const rate = pace.rate();
    const left = pace.secondsLeft();
    // The rate and the time left since the first step, as the plain lines give them: steady through a --rate
    // replay's pauses, and no estimate before there is a rate.
    return {
      label: pace.label,
      unit: pace.unit,
      done: formatCount(pace.done),
      all: formatCount(pace.total),
      rate: rate === undefined ? `- ${pace.unit}/s` : `${formatCount(Math.round(rate))} ${pace.unit}/s`,
      left: left === undefined ? '-' : duration(left),
    };
  }
}
