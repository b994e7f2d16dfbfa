/**
 * The one place that builds sluice's kafkajs clients (the consumer's, the DLQ producer's, the admin, scan and replay
 * clients of the commands), so that every client reaches the brokers the same way: the same TLS and SASL, and the
 * same retry schedule.
 */
import { isIP, connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
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

/** Every socket a client has open, so that none outlives the client (see closeLeftoverSockets). */
const openSockets = new WeakMap<KafkaClient, Set<Socket>>();

/**
 * kafkajs' own way of connecting (TLS with the host as server name unless it is an address, TCP keep-alive), with
 * each socket remembered until it closes.
 */
function trackingSocketFactory(sockets: Set<Socket>): ISocketFactory {
  return ({ host, port, ssl, onConnect }) => {
    const socket = ssl ? tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...ssl }, onConnect) : tcpConnect({ host, port }, onConnect);
    socket.setKeepAlive(true, 60_000);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    return socket;
  };
}

/**
 * Closes what a client's consumers, producers and admins left open after all of them disconnected; resolves to how
 * many.
 *
 * kafkajs does not always close every connection it made: when a connection to a broker fails, it drops that broker
 * from its pool, but a consumer keeps it as its group coordinator and its heartbeats open a new connection through
 * it once the broker is back; nothing disconnects that one, and it (with its request-timeout timer) would keep the
 * process alive after shutdown. Each is ended as if the broker had closed it, so that kafkajs tears down what hangs
 * on it too; one still open after `graceMs` is destroyed. Sockets already closing are left to finish.
 */
export async function closeLeftoverSockets(kafka: KafkaClient, graceMs = 1_000): Promise<number> {
  const leftOpen = [...(openSockets.get(kafka) ?? [])].filter((socket) => !socket.writableEnded);
  await Promise.all(
    leftOpen.map(
      (socket) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => socket.destroy(), graceMs);
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
  const sockets = new Set<Socket>();
  const kafka = new Kafka({
    clientId,
    socketFactory: trackingSocketFactory(sockets),
    brokers: options.kafka.brokers,
    ...(ssl ? { ssl } : {}),
    ...(sasl ? { sasl } : {}),
    logLevel: level === 'warn' ? KafkaLogLevel.WARN : KafkaLogLevel.ERROR,
    logCreator: kafkajsLogCreator(log),
    retry: kafkaRetry(options),
  });
  openSockets.set(kafka, sockets);
  return kafka;
}
