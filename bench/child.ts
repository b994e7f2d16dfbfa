/** A contender as a child process: its output goes to a log file, the last lines are kept for error messages. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface Child {
  name: string;
  process: ChildProcess;
  pid: number;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
  hasExited(): boolean;
  /** Everything written to stdout, as lines (kept in full: a contender's stdout is short, its logs go to the file). */
  stdoutLines: string[];
  tail(): string;
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string>;
  /** Calls `onMatch` for every later line that matches. */
  watch(pattern: RegExp, onMatch: (line: string) => void): void;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<number | string>;
}

export function startChild(name: string, command: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): Child {
  mkdirSync(dirname(logFile), { recursive: true });
  const log = createWriteStream(logFile);
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  const recent: string[] = [];
  const stdoutLines: string[] = [];
  const watchers = new Set<{ pattern: RegExp; resolve: (line: string) => void }>();
  const permanent: Array<{ pattern: RegExp; onMatch: (line: string) => void }> = [];
  let exitedWith: number | string | undefined;
  const onLine = (line: string, fromStdout: boolean) => {
    recent.push(line);
    if (recent.length > 30) recent.shift();
    if (fromStdout) stdoutLines.push(line);
    for (const w of permanent) if (w.pattern.test(line)) w.onMatch(line);
    for (const w of watchers) {
      if (w.pattern.test(line)) {
        watchers.delete(w);
        w.resolve(line);
      }
    }
  };
  for (const [stream, fromStdout] of [
    [child.stdout!, true],
    [child.stderr!, false],
  ] as const) {
    let partial = '';
    stream.on('data', (chunk: Buffer) => {
      log.write(chunk);
      const text = partial + chunk.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop()!;
      for (const line of lines) onLine(line, fromStdout);
    });
  }
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      exitedWith = code ?? signal ?? 'unknown';
      log.end();
      resolve(exitedWith);
    });
  });
  const tail = () => recent.slice(-12).join('\n');
  return {
    name,
    process: child,
    pid: child.pid,
    exited,
    hasExited: () => exitedWith !== undefined,
    stdoutLines,
    tail,
    waitForLine(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const watcher = { pattern, resolve: (line: string) => (clearTimeout(timer), resolve(line)) };
        const timer = setTimeout(() => {
          watchers.delete(watcher);
          reject(new Error(`${name} did not log ${pattern} within ${timeoutMs} ms; last lines:\n${tail()}`));
        }, timeoutMs);
        watchers.add(watcher);
        void exited.then((code) => {
          if (!watchers.has(watcher)) return;
          watchers.delete(watcher);
          clearTimeout(timer);
          reject(new Error(`${name} exited (${code}) before logging ${pattern}; last lines:\n${tail()}`));
        });
      });
    },
    watch(pattern, onMatch) {
      permanent.push({ pattern, onMatch });
    },
    async stop(graceMs = 30_000) {
      if (exitedWith !== undefined) return exitedWith;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
