/**
 * CPU time and peak memory of processes, read from /proc (Linux). CPU is counted in seconds of user + system time;
 * the benchmark samples it at the start and the end of a measured window and reports the difference.
 */
import { readFileSync, readdirSync } from 'node:fs';

const ticksPerSecond = 100; // USER_HZ: 100 on every Linux kernel configuration Node supports

interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  cpuSeconds: number;
  /** CPU of children that ended and were waited for. */
  childrenCpuSeconds: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // the process has ended
  }
  // comm is in parentheses and may contain spaces; everything after the last ')' is space-separated.
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const fields = text.slice(close + 2).split(' ');
  const n = (i: number) => Number(fields[i - 3]);
  return {
    pid,
    comm,
    ppid: n(4),
    cpuSeconds: (n(14) + n(15)) / ticksPerSecond,
    childrenCpuSeconds: (n(16) + n(17)) / ticksPerSecond,
  };
}

/** CPU seconds of one process, or undefined once it has gone. */
export function processCpuSeconds(pid: number): number | undefined {
  return readStat(pid)?.cpuSeconds;
}

/** Peak resident set size (VmHWM) of a live process, in bytes. */
export function peakRssBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

function allStats(): ProcStat[] {
  const stats: ProcStat[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) stats.push(stat);
  }
  return stats;
}

/**
 * CPU seconds of the whole local PostgreSQL server: every live `postgres` process, plus what the postmaster has
 * collected from backends that already ended. Undefined when no local server is visible (a remote database).
 */
export function postgresCpuSeconds(): number | undefined {
  const stats = allStats().filter((s) => s.comm === 'postgres' || s.comm.startsWith('postgres:'));
  if (stats.length === 0) return undefined;
  const pids = new Set(stats.map((s) => s.pid));
  let total = 0;
  for (const s of stats) {
    total += s.cpuSeconds;
    if (!pids.has(s.ppid)) total += s.childrenCpuSeconds; // the postmaster
  }
  return total;
}

/** The pid of the local broker started by scripts/kafka/kafka.sh, if that is the broker in use. */
export function localBrokerPid(root: string): number | undefined {
  try {
    const pid = Number(readFileSync(`${root}/.local/kafka/broker.pid`, 'utf8').trim());
    return readStat(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** CPU counters of the processes a contender shares the machine with, sampled together. */
export interface CpuSample {
  contender: number | undefined;
  broker: number | undefined;
  postgres: number | undefined;
}

export function sampleCpu(contenderPid: number | undefined, brokerPid: number | undefined): CpuSample {
  return {
    contender: contenderPid === undefined ? undefined : processCpuSeconds(contenderPid),
    broker: brokerPid === undefined ? undefined : processCpuSeconds(brokerPid),
    postgres: postgresCpuSeconds(),
  };
}

export interface CpuUsage {
  contenderSeconds: number | null;
  brokerSeconds: number | null;
  postgresSeconds: number | null;
  totalSeconds: number | null;
}

export function cpuBetween(start: CpuSample, end: CpuSample): CpuUsage {
  const delta = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? null : Math.max(0, b - a));
  const contenderSeconds = delta(start.contender, end.contender);
  const brokerSeconds = delta(start.broker, end.broker);
  const postgresSeconds = delta(start.postgres, end.postgres);
  const parts = [contenderSeconds, brokerSeconds, postgresSeconds];
  return {
    contenderSeconds,
    brokerSeconds,
    postgresSeconds,
    totalSeconds: parts.every((p) => p !== null) ? parts.reduce((a, b) => a! + b!, 0) : null,
  };
}
