// `npm test` runs against a real Kafka broker and PostgreSQL. Without them, say so before vitest starts (vitest would
// first print "No test files found", which misleads). The same rule as test/helpers/global-setup.ts.
import { execFileSync } from 'node:child_process';

const haveEnv = Boolean(process.env.KAFKA_BROKERS && process.env.DATABASE_URL);
let haveDocker = false;
if (!haveEnv) {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 10_000 });
    haveDocker = true;
  } catch {
    haveDocker = false; // no Docker engine answers: only the environment can name a stack
  }
}
if (!haveEnv && !haveDocker) {
  process.stderr.write(
    'npm test needs a real Kafka broker and PostgreSQL: run `bash scripts/test.sh` (it starts a local broker and runs the suite), ' +
      'set KAFKA_BROKERS and DATABASE_URL, or make a Docker engine available for testcontainers. `npm run test:unit` needs neither.\n',
  );
  process.exit(1);
}
