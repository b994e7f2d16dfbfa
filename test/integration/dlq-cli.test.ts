import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/process.js';
import { KafkaHelper, brokers, databaseUrl } from '../helpers/stack.js';

/** The dlq commands need the service's settings, though they use no route. */
const sluice = (args: string[]) => runCli(args, { KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), SLUICE_TOPICS: 'unused' });

const be32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const be64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(n);
  return b;
};

describe('sluice dlq stats | list | show', () => {
  it("reads sluice's, Kafka Connect's, Spring Kafka's and Kafka share groups' DLQ records; every filter selects exactly its records", async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'dlq');
    const at = Date.parse('2026-11-29T10:00:00Z');
    await kafka.producer.send({
      topic,
      messages: [
        {
          key: 'k1',
          value: '{"id": 1}',
          timestamp: String(at),
          headers: {
            'sluice.source.topic': 'orders',
            'sluice.source.partition': '0',
            'sluice.source.offset': '17',
            'sluice.error.code': 'SLUICE_POISON_RECORD',
            'sluice.error.class': 'PoisonRecordError',
            'sluice.error.message': 'record orders[0]@17 cannot be written: PostgreSQL rejected it: null value in column "name"',
            'sluice.error.sqlstate': '23502',
          },
        },
        {
          key: 'k2',
          value: 'not json',
          timestamp: String(at + 60_000),
          headers: { 'sluice.source.topic': 'orders', 'sluice.source.partition': '1', 'sluice.source.offset': '4', 'sluice.error.code': 'SLUICE_POISON_RECORD' },
        },
        {
          key: 'k3',
          value: 'x',
          timestamp: String(at + 120_000),
          headers: {
            '__connect.errors.topic': 'payments',
            '__connect.errors.partition': '2',
            '__connect.errors.offset': '99',
            '__connect.errors.stage': 'VALUE_CONVERTER',
            '__connect.errors.exception.message': 'Converting byte[] to Kafka Connect data failed',
          },
        },
        {
          key: 'k4',
          value: 'y',
          timestamp: String(at + 180_000),
          headers: {
            'kafka_dlt-original-topic': 'orders-retry',
            'kafka_dlt-original-partition': be32(3),
            'kafka_dlt-original-offset': be64(9007199254740993n),
            'kafka_dlt-exception-message': 'boom',
          },
        },
        {
          key: 'k5',
          value: 'z',
          timestamp: String(at + 240_000),
          headers: { '__dlq.errors.topic': 'events', '__dlq.errors.partition': '0', '__dlq.errors.offset': '5', '__dlq.errors.delivery.count': '5' },
        },
      ],
    });

    const stats = await sluice(['dlq', 'stats', topic, '--json']);
    expect(stats.code).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({
      records: 5,
      first: '2026-11-29T10:00:00.000Z',
      last: '2026-11-29T10:04:00.000Z',
      byDialect: { sluice: 2, 'kafka-connect': 1, 'spring-kafka': 1, 'kafka-share-group': 1 },
      byErrorCode: { SLUICE_POISON_RECORD: 2, VALUE_CONVERTER: 1, '(none)': 2 },
      bySqlState: { '23502': 1, '(none)': 4 },
      bySource: { 'orders[0]': 1, 'orders[1]': 1, 'payments[2]': 1, 'orders-retry[3]': 1, 'events[0]': 1 },
    });
    const text = await sluice(['dlq', 'stats', topic]);
    expect(text.stdout.split('\n')[0]).toBe(`${topic}: 5 record(s), dead-lettered from 2026-11-29T10:00:00.000Z to 2026-11-29T10:04:00.000Z`);

    const select = async (...filters: string[]) => {
      const out = await sluice(['dlq', 'list', topic, '--json', ...filters]);
      expect(out.code).toBe(0);
      return (JSON.parse(out.stdout) as { shown: Array<{ key: string }> }).shown.map((e) => e.key);
    };
    expect(await select('--sqlstate', '23502')).toEqual(['k1']);
    expect(await select('--source-topic', 'orders')).toEqual(['k1', 'k2']);
    expect(await select('--source-topic', 'orders', '--source-partition', '1')).toEqual(['k2']);
    expect(await select('--source-offsets', '9007199254740990-9007199254740999')).toEqual(['k4']);
    expect(await select('--since', '2026-11-29T10:01:00Z', '--until', '2026-11-29T10:03:00Z')).toEqual(['k2', 'k3']);
    expect(await select('--error-code', 'VALUE_CONVERTER')).toEqual(['k3']);
    expect(await select('--key', 'k5')).toEqual(['k5']);
    expect(await select('--dlq-offsets', '1-2')).toEqual(['k2', 'k3']);
    expect(await select('--limit', '2')).toEqual(['k1', 'k2']);

    const shown = await sluice(['dlq', 'show', topic, '0:3', '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      dlq: '0:3',
      dialect: 'spring-kafka',
      topic: 'orders-retry',
      partition: 3,
      offset: '9007199254740993',
      errorMessage: 'boom',
      key: 'k4',
      value: 'y',
    });
    expect((await sluice(['dlq', 'show', topic, '0:99'])).code).toBe(1);
    expect((await sluice(['dlq', 'list', topic, '--source-offsets', '9-3'])).code).toBe(2);
  });
});
