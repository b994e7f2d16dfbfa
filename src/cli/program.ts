/**
 * The `sluice` command line. Every command reads the service's settings (environment variables and SLUICE_CONFIG),
 * validated before anything connects; exit codes are the same everywhere (exit-codes.ts).
 */
import { Command, CommanderError } from 'commander';
import { ConfigError, errorMessage } from '../errors.js';
import { sluiceVersion } from '../version.js';
import { parseOffsetRange, type DlqFilter } from '../dlq/dlq-filter.js';
import { checkCommand } from './check-command.js';
import { dlqListCommand, dlqShowCommand, dlqStatsCommand } from './dlq-command.js';
import { replayCommand } from './dlq-replay.js';
import { ExitCodes } from './exit-codes.js';
import { offsetsRewindCommand, offsetsShowCommand, type RewindTarget } from './offsets-command.js';
import { runService } from './run-command.js';
import { loadSettings, type Settings } from './settings.js';

/** Runs the command line `argv` (without node and the script); resolves with the exit code. */
export async function runCli(argv: string[]): Promise<number> {
  let code: number = ExitCodes.ok;
  const withSettings = (command: (settings: Settings) => Promise<number>) => async () => {
    let settings: Settings;
    try {
      settings = loadSettings();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      process.stderr.write(`sluice: ${error.message}\n`);
      code = ExitCodes.usage;
      return;
    }
    code = await command(settings);
  };

  const program = new Command('sluice')
    .description('Kafka to PostgreSQL in micro-batches: idempotent upserts, offsets stored with the data.')
    .version(sluiceVersion, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showHelpAfterError()
    .exitOverride()
    .addHelpText(
      'after',
      '\nSettings come from environment variables (KAFKA_BROKERS, DATABASE_URL, SLUICE_*) and the file SLUICE_CONFIG names.\n' +
        'Exit codes: 0 done, 1 failed (or check found a problem), 2 bad configuration or command line.',
    );

  program
    .command('run', { isDefault: true })
    .description('run the service until SIGTERM or SIGINT (the default command)')
    .action(withSettings(runService));

  program
    .command('check')
    .description('check the configuration, PostgreSQL (tables, columns, keys) and Kafka (topics, DLQ topics, group) without running')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }) => withSettings((s) => checkCommand(s, opts.json === true))());

  const offsets = program.command('offsets').description("inspect the group's offsets");
  offsets
    .command('show')
    .description('per partition: the offset stored with the data, the group committed offset in Kafka, log start and end, lag')
    .option('--group <id>', 'the consumer group (default: kafka.groupId)')
    .option('--json', 'print JSON')
    .action(async (opts: { group?: string; json?: boolean }) =>
      withSettings((s) => offsetsShowCommand(s, opts.group ?? s.resolved.kafka.groupId, opts.json === true))(),
    );

  offsets
    .command('rewind')
    .description(
      'move where the group resumes, in the offsets stored with the data and in Kafka; sluice must be stopped (refused while the group has members)',
    )
    .option('--to-earliest', 'the start of each log')
    .option('--to-latest', 'the end of each log (skip what is there)')
    .option('--to-offset <offset>', 'this offset (with --topic, and usually --partition)')
    .option('--to-time <iso8601>', 'the first record at or after this time, e.g. 2026-11-29T12:00:00Z')
    .option('--topic <topic>', 'only this topic (default: every topic of the routes)')
    .option('--partition <partitions>', 'only these partitions of --topic, comma-separated')
    .option('--group <id>', 'the consumer group (default: kafka.groupId)')
    .option('--dry-run', 'show before and after; change nothing')
    .option('--json', 'print JSON')
    .action(async (opts: RewindOptions) => {
      const request = rewindRequest(opts);
      if (typeof request === 'string') {
        process.stderr.write(`sluice: ${request}\n`);
        code = ExitCodes.usage;
        return;
      }
      await withSettings((s) =>
        offsetsRewindCommand(s, { ...request, groupId: opts.group ?? s.resolved.kafka.groupId }, opts.json === true),
      )();
    });

  const dlq = program
    .command('dlq')
    .description("look into a DLQ topic, in sluice's or another dialect (Kafka Connect, Spring Kafka, Kafka share groups)");
  const usage = (message: string) => {
    process.stderr.write(`sluice: ${message}\n`);
    code = ExitCodes.usage;
  };
  withFilters(dlq.command('stats <topic>'))
    .description('counts by error code, class, SQLSTATE, source, age and times replayed, with the time range')
    .option('--json', 'print JSON')
    .action(async (topic: string, opts: FilterOptions & { json?: boolean }) => {
      const filter = dlqFilter(opts);
      if (typeof filter === 'string') return usage(filter);
      await withSettings((s) => dlqStatsCommand(s, topic, filter, opts.json === true))();
    });
  withFilters(dlq.command('list <topic>'))
    .description('the selected records: where they came from, why they failed, key and value (cut)')
    .option('--limit <n>', 'show at most this many (default 50)', '50')
    .option('--json', 'print JSON')
    .action(async (topic: string, opts: FilterOptions & { limit: string; json?: boolean }) => {
      const filter = dlqFilter(opts);
      if (typeof filter === 'string') return usage(filter);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) return usage(`--limit ${opts.limit}: expected a whole number above 0`);
      await withSettings((s) => dlqListCommand(s, topic, filter, limit, opts.json === true))();
    });
  withFilters(dlq.command('replay <topic>'))
    .description('publish the selected records again, to their source topic (or --to): bounded, resumable, exactly once per replay')
    .option('--to <topic>', "publish here instead of each record's source topic")
    .option('--into-postgres', 'write the records through their routes straight into PostgreSQL, exactly as sluice would have; the source topic is left alone')
    .option('--allow-any-topic', 'allow targets that no route reads')
    .option('--max-replays <n>', 'loop guard: records replayed this often already are not replayed again', '3')
    .option('--park <topic>', 'send records stopped by the loop guard here')
    .option('--rate <records/s>', 'publish at most this many records a second')
    .option('--limit <n>', 'replay at most this many records in this run')
    .option('--replay-id <id>', 'the replay to start or resume (default: derived from the topic, filters and target)')
    .option('--dry-run', 'show what would be replayed, where, and why it failed; publish nothing')
    .option('--status', "show the replay's progress: selected, replayed, skipped, remaining")
    .option('--json', 'print JSON')
    .action(async (topic: string, opts: FilterOptions & ReplayOptions) => {
      const filter = dlqFilter(opts);
      if (typeof filter === 'string') return usage(filter);
      const numbers: Array<[string, string | undefined]> = [['--max-replays', opts.maxReplays], ['--rate', opts.rate], ['--limit', opts.limit]];
      for (const [flag, value] of numbers) {
        if (value !== undefined && !/^[1-9]\d*$/.test(value)) return usage(`${flag} ${value}: expected a whole number above 0`);
      }
      await withSettings((s) =>
        replayCommand(
          s,
          {
            dlqTopic: topic,
            filter,
            ...(opts.to !== undefined ? { to: opts.to } : {}),
            allowAnyTopic: opts.allowAnyTopic === true,
            maxReplays: Number(opts.maxReplays),
            ...(opts.park !== undefined ? { park: opts.park } : {}),
            ...(opts.rate !== undefined ? { rate: Number(opts.rate) } : {}),
            ...(opts.limit !== undefined ? { limit: Number(opts.limit) } : {}),
            ...(opts.replayId !== undefined ? { replayId: opts.replayId } : {}),
            dryRun: opts.dryRun === true,
            statusOnly: opts.status === true,
            intoPostgres: opts.intoPostgres === true,
          },
          opts.json === true,
        ),
      )();
    });
  dlq
    .command('show <topic> <partition:offset>')
    .description('one DLQ record in full: provenance, every header, key and value')
    .option('--json', 'print JSON')
    .action(async (topic: string, at: string, opts: { json?: boolean }) => {
      const match = /^(\d+):(\d+)$/.exec(at);
      if (!match) return usage(`${at}: expected <partition>:<offset> of the DLQ topic, such as 0:42`);
      await withSettings((s) => dlqShowCommand(s, topic, Number(match[1]), match[2]!, opts.json === true))();
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here with exit code 0; a mistake on the command line with 1, which is a usage error.
      return error.exitCode === 0 ? ExitCodes.ok : ExitCodes.usage;
    }
    process.stderr.write(`sluice: ${errorMessage(error)}\n`);
    return ExitCodes.failed;
  }
  return code;
}

interface RewindOptions {
  toEarliest?: boolean;
  toLatest?: boolean;
  toOffset?: string;
  toTime?: string;
  topic?: string;
  partition?: string;
  group?: string;
  dryRun?: boolean;
  json?: boolean;
}

/** The rewind asked for, or what is wrong with the command line. */
function rewindRequest(opts: RewindOptions): { target: RewindTarget; topic?: string; partitions?: number[]; dryRun: boolean } | string {
  const targets = [opts.toEarliest, opts.toLatest, opts.toOffset, opts.toTime].filter((t) => t !== undefined);
  if (targets.length !== 1) return 'offsets rewind needs exactly one of --to-earliest, --to-latest, --to-offset, --to-time';
  let target: RewindTarget;
  if (opts.toEarliest) target = { to: 'earliest' };
  else if (opts.toLatest) target = { to: 'latest' };
  else if (opts.toOffset !== undefined) {
    if (!/^\d+$/.test(opts.toOffset)) return `--to-offset ${opts.toOffset}: expected an offset (a whole number)`;
    if (opts.topic === undefined) return '--to-offset needs --topic (an offset means something in one topic only)';
    target = { to: 'offset', offset: opts.toOffset };
  } else {
    const timestampMs = isoTime(opts.toTime!);
    if (timestampMs === undefined) return `--to-time ${opts.toTime}: ${isoTimeExpected}`;
    target = { to: 'time', timestampMs };
  }
  let partitions: number[] | undefined;
  if (opts.partition !== undefined) {
    if (opts.topic === undefined) return '--partition needs --topic';
    const parts = opts.partition.split(',').map((p) => p.trim());
    if (parts.some((p) => !/^\d+$/.test(p))) return `--partition ${opts.partition}: expected partition numbers, comma-separated`;
    partitions = parts.map(Number);
  }
  return { target, ...(opts.topic !== undefined ? { topic: opts.topic } : {}), ...(partitions ? { partitions } : {}), dryRun: opts.dryRun === true };
}

interface FilterOptions {
  sourceTopic?: string;
  sourcePartition?: string;
  sourceOffsets?: string;
  since?: string;
  until?: string;
  errorCode?: string;
  sqlstate?: string;
  key?: string;
  dlqOffsets?: string;
}

/** The filters every dlq command takes. */
function withFilters(command: Command): Command {
  return command
    .option('--source-topic <topic>', 'records that came from this topic')
    .option('--source-partition <n>', 'records that came from this partition')
    .option('--source-offsets <A-B>', 'records whose source offset is in A-B (inclusive)')
    .option('--since <iso8601>', 'dead-lettered at or after this time')
    .option('--until <iso8601>', 'dead-lettered before this time')
    .option('--error-code <code>', "this error code (sluice's SLUICE_POISON_RECORD, Connect's stage, Spring's cause class)")
    .option('--sqlstate <code>', "PostgreSQL's SQLSTATE, such as 23502")
    .option('--key <text>', 'records with this key (UTF-8)')
    .option('--dlq-offsets <A-B>', 'records at these offsets of the DLQ topic (inclusive)');
}

/** The filter asked for, or what is wrong with it. */
function dlqFilter(opts: FilterOptions): DlqFilter | string {
  const filter: DlqFilter = {};
  if (opts.sourceTopic !== undefined) filter.sourceTopic = opts.sourceTopic;
  if (opts.sourcePartition !== undefined) {
    const p = Number(opts.sourcePartition);
    if (!Number.isInteger(p) || p < 0) return `--source-partition ${opts.sourcePartition}: expected a partition number`;
    filter.sourcePartition = p;
  }
  for (const [flag, value, set] of [
    ['--source-offsets', opts.sourceOffsets, (r: NonNullable<DlqFilter['sourceOffsets']>) => (filter.sourceOffsets = r)],
    ['--dlq-offsets', opts.dlqOffsets, (r: NonNullable<DlqFilter['dlqOffsets']>) => (filter.dlqOffsets = r)],
  ] as const) {
    if (value === undefined) continue;
    const range = parseOffsetRange(value);
    if (!range) return `${flag} ${value}: expected A-B (inclusive, A <= B) or a single offset`;
    set(range);
  }
  for (const [flag, value, set] of [
    ['--since', opts.since, (ms: number) => (filter.sinceMs = ms)],
    ['--until', opts.until, (ms: number) => (filter.untilMs = ms)],
  ] as const) {
    if (value === undefined) continue;
    const ms = isoTime(value);
    if (ms === undefined) return `${flag} ${value}: ${isoTimeExpected}`;
    set(ms);
  }
  if (opts.errorCode !== undefined) filter.errorCode = opts.errorCode;
  if (opts.sqlstate !== undefined) filter.sqlState = opts.sqlstate;
  if (opts.key !== undefined) filter.key = opts.key;
  return filter;
}

interface ReplayOptions {
  to?: string;
  intoPostgres?: boolean;
  allowAnyTopic?: boolean;
  maxReplays: string;
  park?: string;
  rate?: string;
  limit?: string;
  replayId?: string;
  dryRun?: boolean;
  status?: boolean;
  json?: boolean;
}

const isoTimeExpected = 'expected an ISO 8601 time such as 2026-11-29T12:00:00Z';

/** An ISO 8601 date or time as ms since the epoch, or undefined when it is not one. */
function isoTime(text: string): number | undefined {
  const ms = Date.parse(text);
  return /^\d{4}-\d{2}-\d{2}/.test(text) && !Number.isNaN(ms) ? ms : undefined;
}
