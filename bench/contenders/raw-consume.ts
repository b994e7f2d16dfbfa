/**
 * Limit 1: how fast kafkajs alone delivers the topic to a Node process: a consumer group reading every record,
 * decoding it (the client's own decode, bytes only) and nothing else. Same fetch settings as sluice.
 * Prints `start` at the first record, then one JSON line: records, the time from the first to the last record
 * received, and this process's CPU seconds over that time.
 */
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;
const brokers = process.env.KAFKA_BROKERS!.split(',');
const topic = process.env.BENCH_TOPIC!;
const expected = Number(process.env.BENCH_RECORDS);

const consumer = new Kafka({ clientId: 'bench-raw-consume', brokers, logLevel: logLevel.NOTHING }).consumer({
  groupId: `bench-raw-${process.pid}-${Date.now()}`,
  maxWaitTimeInMs: 1000,
});
let received = 0;
let bytes = 0;
let firstMs = 0;
let cpuAtFirst: NodeJS.CpuUsage | undefined;
let lastMs = 0;
let finish: () => void;
const done = new Promise<void>((resolve) => (finish = resolve));

await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
await consumer.run({
  autoCommit: false,
  partitionsConsumedConcurrently: 4,
  eachBatch: async ({ batch }) => {
    if (firstMs === 0) {
      firstMs = performance.now();
      cpuAtFirst = process.cpuUsage();
      process.stdout.write('start\n');
    }
    for (const message of batch.messages) bytes += message.value?.length ?? 0;
    received += batch.messages.length;
    lastMs = performance.now();
    if (received >= expected) finish();
  },
});
await done;
const used = process.cpuUsage(cpuAtFirst);
await consumer.disconnect();
process.stdout.write(`${JSON.stringify({ records: received, bytes, ms: lastMs - firstMs, cpuSeconds: (used.user + used.system) / 1e6 })}\n`);
