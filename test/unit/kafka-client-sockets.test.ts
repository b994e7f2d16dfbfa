import { createServer, type Server, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveOptions } from '../../src/config/resolve-options.js';
import { closeKafkaClient, createKafkaClient } from '../../src/consumer/kafka-client.js';

/** A TCP peer that accepts and never answers; on the client's FIN it closes too, unless `deaf`. */
async function silentPeer(deaf: boolean): Promise<{ server: Server; port: number; accepted: Socket[] }> {
  const accepted: Socket[] = [];
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    accepted.push(socket);
    socket.on('error', () => undefined);
    socket.resume(); // reads (and ignores) the requests, so that the client's FIN is seen
    socket.on('end', () => {
      if (!deaf) socket.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, accepted };
}

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});

async function clientWithOpenSocket(deaf: boolean) {
  const peer = await silentPeer(deaf);
  servers.push(peer.server);
  const options = resolveOptions({ kafka: { brokers: [`127.0.0.1:${peer.port}`], retryBackoffMaxMs: 100 }, database: { url: 'postgres://a@b/c' }, landing: { topics: ['t'] } });
  const kafka = createKafkaClient(options, 'sockets-test', pino({ level: 'silent' }), 'error');
  // A connection kafkajs opened and never closes: its admin waits for an answer that does not come.
  const connecting = kafka.admin().connect().catch((error: unknown) => error);
  const deadline = Date.now() + 5_000;
  while (peer.accepted.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(peer.accepted).toHaveLength(1);
  return { peer, kafka, connecting };
}

const closed = (socket: Socket) => new Promise<void>((resolve) => (socket.closed ? resolve() : socket.once('close', () => resolve())));

describe('closeKafkaClient', () => {
  it('ends the connections a client left open, as if the broker had closed them', async () => {
    const { peer, kafka } = await clientWithOpenSocket(false);
    expect(await closeKafkaClient(kafka, async () => undefined, 5_000)).toBe(1);
    await closed(peer.accepted[0]!);
  });

  it('destroys a connection whose peer never closes, after the grace time; the client opens none afterwards', async () => {
    const { peer, kafka, connecting } = await clientWithOpenSocket(true);
    const startedAt = Date.now();
    expect(await closeKafkaClient(kafka, async () => undefined, 200)).toBe(1);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(190);
    // kafkajs saw the connection fail (not just vanish), and every attempt after it was refused without connecting.
    expect(String(await connecting)).toContain('the Kafka client is closed');
    expect(peer.accepted).toHaveLength(1);
  }, 30_000);

  it('disconnects first, and closes the connections even when disconnecting fails', async () => {
    const { peer, kafka } = await clientWithOpenSocket(false);
    await expect(closeKafkaClient(kafka, async () => Promise.reject(new Error('disconnect failed')), 5_000)).rejects.toThrow('disconnect failed');
    await closed(peer.accepted[0]!);
  });
});
