import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { onTestFinished } from 'vitest';
import { brokers, databaseUrl } from './stack.js';

const cli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface SluiceProcess {
  child: ChildProcess;
  /** Parsed JSON lines from stdout, in order. */
  logs: Array<Record<string, unknown>>;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs the built CLI (`npm test` builds first) with exactly the given environment, plus a free port for the health
 * endpoints unless the test names one; killed at test end. `logFile` also writes its stdout there (stderr beside it).
 */
export function spawnSluice(env: Record<string, string>, logFile?: string): SluiceProcess {
  const child = spawn(process.execPath, [cli], {
    env: { PATH: process.env.PATH ?? '', SLUICE_HTTP_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Also kept on disk when asked, for a long run to be read afterwards.
  if (logFile) {
    mkdirSync(dirname(logFile), { recursive: true });
    child.stdout!.pipe(createWriteStream(logFile));
    child.stderr!.pipe(createWriteStream(`${logFile}.stderr`));
  }
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, logs, stderr: () => stderr, exited };
}

/** Runs one command of the built CLI to its end with exactly `env` (plus PATH): its exit code and output. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/**
 * Landing mode through the environment alone (the zero-config way to run sluice), with the shortest session timeout
 * the broker takes, so that a killed or stopped member is noticed soon. `brokerList` defaults to the test stack's.
 */
export function landingEnv(
  topic: string,
  table: string,
  groupId: string,
  extra: Record<string, string> = {},
  brokerList: string[] = brokers(),
): Record<string, string> {
  return {
    KAFKA_BROKERS: brokerList.join(','),
    DATABASE_URL: databaseUrl(),
    SLUICE_TOPICS: topic,
    SLUICE_LANDING_TABLE: table,
    SLUICE_GROUP_ID: groupId,
    SLUICE_SESSION_TIMEOUT_MS: '6000',
    SLUICE_HEARTBEAT_INTERVAL_MS: '1000',
    ...extra,
  };
}

/**
 * Runs one command of the built CLI on a terminal of its own (a pseudo-terminal made by util-linux's `script`, 120
 * columns), as a person at a shell would: what the terminal showed (stdout and stderr together) and the exit code.
 */
export async function runCliOnTerminal(args: string[], env: Record<string, string> = {}): Promise<{ code: number; screen: string }> {
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const command = `stty cols 120; exec ${[process.execPath, cli, ...args].map(quote).join(' ')}`;
  try {
    const { stdout } = await promisify(execFile)('script', ['-qefc', command, '/dev/null'], {
      env: { PATH: process.env.PATH ?? '', TERM: 'xterm-256color', ...env },
      timeout: 120_000,
    });
    return { code: 0, screen: stdout };
  } catch (error) {
    const e = error as { code?: number; stdout?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, screen: e.stdout ?? '' };
  }
}

/** Whether `runCliOnTerminal` can run here (util-linux's `script`). */
export async function hasTerminal(): Promise<boolean> {
  try {
    await promisify(execFile)('script', ['-qefc', 'true', '/dev/null']);
    return true;
  } catch {
    return false;
  }
}
