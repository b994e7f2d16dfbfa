/**
 * The one place that builds sluice's kafkajs clients (the consumer's, the DLQ producer's, the admin, scan and replay
 * clients of the commands), so that every client reaches the brokers the same way: the same TLS and SASL, and the
 * same retry schedule.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import kafkajs, { type ISocketFactory, type Kafka as KafkaClient, type RetryOptions } from 'kafkajs';
import type { Logger } from 'pino';
import type { ResolvedOptions } from '../config/options.js';
import { kafkajsLogCreator } from './kafkajs-log.js';
import { saslOptions, tlsOptions } from './kafka-security.js';

const { Kafka, logLevel: KafkaLogLevel } = kafkajs;

/**
 * kafkajs' retries (connections, metadata, requests, the consumer's fetch loop): waits grow from 300 ms to
 * kafka.retryBackoffMaxMs, then the operation fails to sluice, which decides what follows. Enough retries that they
 * span at least kafkajs' default window (about 9 s: five from 300 ms), so that a short blip (a broker restarting, a
 * leader moving) does not take the consumer out of its group; but no single wait is longer than the cap, so a
 * client looks at the brokers again within that long once they are back.
 */
export function kafkaRetry(options: ResolvedOptions): RetryOptions {
  const maxRetryTime = options.kafka.retryBackoffMaxMs;
  const initialRetryTime = Math.min(300, maxRetryTime);
  let retries = 0;
  for (let waited = 0; waited < 9_000 && retries < 30; retries++) waited += Math.min(maxRetryTime, initialRetryTime * 2 ** retries);
  return { initialRetryTime, maxRetryTime, retries: Math.max(5, retries) };
}

/** kafkajs' own socket factory (TLS with the host as server name unless it is an address, TCP keep-alive). */
const kafkajsSocketFactory = (createRequire(import.meta.url)('kafkajs/src/network/socketFactory') as () => ISocketFactory)();

/** The sockets of one client, and whether it was closed (then it opens none). */
interface ClientSockets {
  open: Set<Socket>;
  closed: boolean;
}

const clientSockets = new WeakMap<KafkaClient, ClientSockets>();

/** kafkajs' way of connecting, with each socket remembered until it closes, and none opened once the client is closed. */
function trackingSocketFactory(tracked: ClientSockets): ISocketFactory {
  return (args) => {
    // Thrown inside kafkajs' connect, which turns it into a failed connection.
    if (tracked.closed) throw new Error('the Kafka client is closed');
    const socket = kafkajsSocketFactory(args);
    tracked.open.add(socket);
    socket.once('close', () => tracked.open.delete(socket));
    return socket;
  };
}

/**
 * Disconnects a client's consumers, producers and admins, then closes what they left open; resolves to how many
 * connections were left. The client opens no connection after this.
 *
 * kafkajs does not always close every connection it made: when a connection to a broker fails, it drops that broker
 * from its pool, but a consumer keeps it as its group coordinator and its heartbeats open a new connection through
 * it once the broker is back; nothing disconnects that one, and it (with its request-timeout timer) would keep the
 * process alive after shutdown. Each is ended as if the broker had closed it, so that kafkajs tears down what hangs
 * on it too; one still open after `graceMs` is destroyed with an error, which kafkajs handles the same way. Sockets
 * already closing are left to finish.
 */
export async function closeKafkaClient(kafka: KafkaClient, disconnect: () => Promise<void> = async () => undefined, graceMs = 1_000): Promise<number> {
  let leftOpen = 0;
  try {
    await disconnect();
  } finally {
    // Even when disconnecting failed (its error is thrown after).
    const tracked = clientSockets.get(kafka);
    if (tracked) leftOpen = await endLeftovers(tracked, graceMs);
  }
  return leftOpen;
}

/** Ends what is still open of a client, which opens nothing more; resolves to how many it ended. */
async function endLeftovers(tracked: ClientSockets, graceMs: number): Promise<number> {
  tracked.closed = true;
  const leftOpen = [...tracked.open].filter((socket) => !socket.writableEnded);
  await Promise.all(
    leftOpen.map(
      (socket) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => socket.destroy(new Error('closed with its Kafka client')), graceMs);
          socket.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          socket.end();
        }),
    ),
  );
  return leftOpen.length;
}

/** A kafkajs client named `clientId`, logging into `log` from `level` up ('warn' or 'error'). */
export function createKafkaClient(options: ResolvedOptions, clientId: string, log: Logger, level: 'warn' | 'error'): KafkaClient {
  const ssl = tlsOptions(options);
  const sasl = saslOptions(options);
  const tracked: ClientSockets = { open: new Set(), closed: false };
  const kafka = new Kafka({
    clientId,
    socketFactory: trackingSocketFactory(tracked),
    brokers: options.kafka.brokers,
    ...(ssl ? { ssl } : {}),
    ...(sasl ? { sasl } : {}),
    logLevel: level === 'warn' ? KafkaLogLevel.WARN : KafkaLogLevel.ERROR,
    logCreator: kafkajsLogCreator(log),
    retry: kafkaRetry(options),
  });
  clientSockets.set(kafka, tracked);
  return kafka;
}
