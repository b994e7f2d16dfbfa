/**
 * The `sluice` command line. Every command reads the service's settings (environment variables and SLUICE_CONFIG),
 * validated before anything connects; exit codes are the same everywhere (exit-codes.ts).
 */
import { Command, CommanderError } from 'commander';
import { ConfigError, errorMessage } from '../errors.js';
import { sluiceVersion } from '../version.js';
import { checkCommand } from './check-command.js';
import { ExitCodes } from './exit-codes.js';
import { offsetsShowCommand } from './offsets-command.js';
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
