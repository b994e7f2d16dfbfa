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
  project.provide('kafkaBrokers', brokers);
  project.provide('databaseUrl', databaseUrl);
  return async () => {
    for (const stop of teardown.reverse()) await stop();
  };
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
