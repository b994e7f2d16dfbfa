import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';

/**
 * Finds the real Kafka broker and PostgreSQL the integration tests run against:
 * - KAFKA_BROKERS / DATABASE_URL when set (scripts/test.sh sets them after starting the local broker);
 * - otherwise, where a Docker engine answers, Kafka and PostgreSQL containers started by testcontainers.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const teardown: Array<() => Promise<unknown>> = [];
  let brokers = process.env.KAFKA_BROKERS;
  let databaseUrl = process.env.DATABASE_URL;
  if ((!brokers || !databaseUrl) && dockerAvailable()) {
    if (!brokers) {
      const { KafkaContainer } = await import('@testcontainers/kafka');
      const kafka = await new KafkaContainer('confluentinc/cp-kafka:7.9.0').withKraft().start();
      teardown.push(() => kafka.stop());
      brokers = `${kafka.getHost()}:${kafka.getMappedPort(9093)}`;
    }
    if (!databaseUrl) {
      const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
      const postgres = await new PostgreSqlContainer('postgres:16-alpine').start();
      teardown.push(() => postgres.stop());
      databaseUrl = postgres.getConnectionUri();
    }
  }
  if (!brokers || !databaseUrl) {
    throw new Error(
      'integration tests need a real Kafka broker and PostgreSQL: run `bash scripts/test.sh` (starts a local broker), ' +
        'set KAFKA_BROKERS and DATABASE_URL, or make a Docker engine available for testcontainers',
    );
  }
  await waitForGroupCoordinator(brokers.split(','));
  project.provide('kafkaBrokers', brokers);
  project.provide('databaseUrl', databaseUrl);
  return async () => {
    for (const stop of teardown.reverse()) await stop();
  };
}

/**
 * A broker accepts connections before its group coordinator has loaded the offsets topic; until then group
 * requests answer COORDINATOR_LOAD_IN_PROGRESS. Wait for an offset fetch to succeed, with a deadline.
 */
async function waitForGroupCoordinator(brokers: string[]): Promise<void> {
  const { Kafka, logLevel } = (await import('kafkajs')).default;
  const admin = new Kafka({ clientId: 'sluice-test-setup', brokers, logLevel: logLevel.NOTHING }).admin();
  const deadline = Date.now() + 90_000;
  try {
    await admin.connect();
    for (;;) {
      try {
        await admin.fetchOffsets({ groupId: 'sluice-test-readiness' });
        return;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`Kafka at ${brokers.join(',')} has no group coordinator ready: ${String(error)}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  } finally {
    await admin.disconnect();
  }
}

function dockerAvailable(): boolean {
  try {
    execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string;
    databaseUrl: string;
  }
}
