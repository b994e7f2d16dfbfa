/**
 * The naive baseline: what is commonly written by hand. kafkajs `eachMessage`, one upsert per record in autocommit,
 * and the offset committed after every record. Correct, and slow. Runs until it is stopped (SIGTERM).
 */
import kafkajs from 'kafkajs';
import pg from 'pg';
import { orderColumns, type Order } from '../dataset.js';

const { Kafka, logLevel } = kafkajs;
const brokers = process.env.KAFKA_BROKERS!.split(',');
const topic = process.env.BENCH_TOPIC!;
const table = process.env.BENCH_TABLE!;
const groupId = process.env.BENCH_GROUP!;

const db = new pg.Client({ connectionString: process.env.DATABASE_URL!, application_name: 'sluice-bench-naive' });
await db.connect();
const consumer = new Kafka({ clientId: 'bench-naive', brokers, logLevel: logLevel.NOTHING }).consumer({ groupId });
const sql =
  `INSERT INTO ${table} (${orderColumns.join(', ')}) VALUES (${orderColumns.map((_, i) => `$${i + 1}`).join(', ')}) ` +
  `ON CONFLICT (id) DO UPDATE SET ${orderColumns.filter((c) => c !== 'id').map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`;

await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
await consumer.run({
  autoCommit: false,
  eachMessage: async ({ topic, partition, message }) => {
    const order = (JSON.parse(message.value!.toString('utf8')) as { payload: Order }).payload;
    await db.query(sql, orderColumns.map((c) => order[c]));
    await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
  },
});

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  consumer
    .disconnect()
    .then(() => db.end())
    .then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`naive consumer: ${String(error)}\n`);
        process.exit(1);
      },
    );
});
