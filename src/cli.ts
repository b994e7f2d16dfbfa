#!/usr/bin/env node
/**
 * `sluice`: the service (`sluice run`, the default) and the operator's commands (`sluice --help`).
 * Exit codes: 0 done, 1 failed, 2 bad configuration or command line.
 */
import { runCli } from './cli/program.js';

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`sluice: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
