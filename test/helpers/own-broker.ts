import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../../scripts/kafka/kafka.sh', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));

/** Whether this machine can run a broker of a test's own (scripts/kafka/kafka.sh needs Java and Maven). */
export function canRunOwnBroker(): boolean {
  return ['java', 'mvn'].every((tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0);
}

/**
 * A single-node broker that belongs to one test file, on its own port and data directory, so that the test can stop
 * and start it while other files use the shared broker. `start` keeps the data of the previous start.
 */
export class OwnBroker {
  readonly port: number;
  readonly #env: NodeJS.ProcessEnv;
  #started = false;

  /** `extraEnv`: kafka.sh's SLUICE_KAFKA_EXTRA_CONFIG (more listeners) and SLUICE_KAFKA_SCRAM_USERS. */
  constructor(name: string, port: number, extraEnv: Record<string, string> = {}) {
    this.port = port;
    const { KAFKA_BROKERS: _shared, ...env } = process.env;
    this.#env = { ...env, SLUICE_KAFKA_PORT: String(port), SLUICE_KAFKA_HOME: `${root}.local/kafka-${name}`, ...extraEnv };
  }

  get brokers(): string[] {
    return [`127.0.0.1:${this.port}`];
  }

  /** Starts the broker (fresh data the first time, the same data after) and waits until it accepts connections. */
  async start(): Promise<void> {
    await this.#run(this.#started ? ['start', '--keep-data'] : ['start']);
    this.#started = true;
  }

  /** Runs one of Kafka's own tools (a main class on the broker's jars), such as kafka.admin.ConfigCommand. */
  async tool(mainClass: string, ...args: string[]): Promise<void> {
    await this.#run(['tool', mainClass, ...args]);
  }

  /** Controlled shutdown, as `kafka-server-stop` does; returns once the process has ended. */
  async stop(): Promise<void> {
    await this.#run(['stop']);
  }

  async #run(args: string[]): Promise<void> {
    try {
      await promisify(execFile)('bash', [script, ...args], { env: this.#env, encoding: 'utf8', timeout: 120_000 });
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr ?? '';
      throw new Error(`kafka.sh ${args.join(' ')} failed: ${String(error)} ${stderr}`, { cause: error });
    }
  }
}
