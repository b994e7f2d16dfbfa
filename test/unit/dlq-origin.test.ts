import { describe, expect, it } from 'vitest';
import { readOrigin } from '../../src/dlq/dlq-origin.js';

const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const int64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(n);
  return b;
};
const utf8 = (s: string) => Buffer.from(s, 'utf8');

describe('the origin of a DLQ record, in every dialect', () => {
  it("sluice's own headers", () => {
    expect(
      readOrigin({
        'sluice.source.topic': utf8('orders'),
        'sluice.source.partition': utf8('2'),
        'sluice.source.offset': utf8('9007199254740993'),
        'sluice.source.timestamp': utf8('1764403200000'),
        'sluice.consumer.group': utf8('orders-sink'),
        'sluice.error.code': utf8('SLUICE_POISON_RECORD'),
        'sluice.error.class': utf8('PoisonRecordError'),
        'sluice.error.message': utf8('record orders[2]@9007199254740993 cannot be written: not JSON'),
        'sluice.error.sqlstate': utf8('22P02'),
        'sluice.attempts': utf8('1'),
      }),
    ).toEqual({
      dialect: 'sluice',
      topic: 'orders',
      partition: 2,
      offset: '9007199254740993', // never through a JavaScript number
      timestampMs: 1764403200000,
      group: 'orders-sink',
      errorCode: 'SLUICE_POISON_RECORD',
      errorClass: 'PoisonRecordError',
      errorMessage: 'record orders[2]@9007199254740993 cannot be written: not JSON',
      sqlState: '22P02',
      attempts: 1,
      replayCount: 0,
    });
  });

  it("Kafka Connect's, with the empty topic and -1 it writes when it had no record", () => {
    expect(
      readOrigin({
        '__connect.errors.topic': utf8('payments'),
        '__connect.errors.partition': utf8('0'),
        '__connect.errors.offset': utf8('41'),
        '__connect.errors.stage': utf8('VALUE_CONVERTER'),
        '__connect.errors.exception.class.name': utf8('org.apache.kafka.connect.errors.DataException'),
        '__connect.errors.exception.message': utf8('Converting byte[] to Kafka Connect data failed'),
      }),
    ).toMatchObject({ dialect: 'kafka-connect', topic: 'payments', partition: 0, offset: '41', errorCode: 'VALUE_CONVERTER', errorClass: 'org.apache.kafka.connect.errors.DataException' });
    expect(readOrigin({ '__connect.errors.topic': utf8(''), '__connect.errors.partition': utf8('-1'), '__connect.errors.offset': utf8('-1') })).toMatchObject({
      dialect: 'kafka-connect',
      topic: undefined,
      partition: undefined,
      offset: undefined,
    });
  });

  it("Spring Kafka's binary numbers, and the last of repeated headers (a record dead-lettered twice)", () => {
    expect(
      readOrigin({
        'kafka_dlt-original-topic': [utf8('orders'), utf8('orders-retry')],
        'kafka_dlt-original-partition': [int32(1), int32(3)],
        'kafka_dlt-original-offset': [int64(5n), int64(9007199254740993n)],
        'kafka_dlt-original-timestamp': [int64(1n), int64(1764403200000n)],
        'kafka_dlt-original-consumer-group': utf8('billing'),
        'kafka_dlt-exception-fqcn': utf8('org.springframework.kafka.listener.ListenerExecutionFailedException'),
        'kafka_dlt-exception-cause-fqcn': utf8('java.lang.IllegalStateException'),
        'kafka_dlt-exception-message': utf8('boom'),
      }),
    ).toEqual({
      dialect: 'spring-kafka',
      topic: 'orders-retry',
      partition: 3,
      offset: '9007199254740993',
      timestampMs: 1764403200000,
      group: 'billing',
      errorCode: 'java.lang.IllegalStateException',
      errorClass: 'org.springframework.kafka.listener.ListenerExecutionFailedException',
      errorMessage: 'boom',
      sqlState: undefined,
      attempts: undefined,
      replayCount: 0,
    });
  });

  it("Apache Kafka's share-group DLQ (KIP-1191), x-original-topic, and headers of no known dialect", () => {
    expect(
      readOrigin({
        '__dlq.errors.topic': utf8('events'),
        '__dlq.errors.partition': utf8('4'),
        '__dlq.errors.offset': utf8('100'),
        '__dlq.errors.group': utf8('share-1'),
        '__dlq.errors.delivery.count': utf8('5'),
        '__dlq.errors.message': utf8('delivery attempts exhausted'),
      }),
    ).toMatchObject({ dialect: 'kafka-share-group', topic: 'events', partition: 4, offset: '100', group: 'share-1', attempts: 5, errorMessage: 'delivery attempts exhausted' });
    expect(readOrigin({ 'x-original-topic': 'clicks' })).toMatchObject({ dialect: 'x-original', topic: 'clicks' });
    expect(readOrigin({ other: 'x' })).toMatchObject({ dialect: 'unknown', topic: undefined });
  });

  it('Spring numbers written as text by another producer read as text, whatever their length', () => {
    expect(readOrigin({ 'kafka_dlt-original-topic': 'a', 'kafka_dlt-original-offset': utf8('12345678'), 'kafka_dlt-original-partition': utf8('1234') })).toMatchObject({
      offset: '12345678',
      partition: 1234,
    });
  });

  it('counts replays', () => {
    expect(readOrigin({ 'sluice.source.topic': 'orders', 'sluice.replay.count': '2' }).replayCount).toBe(2);
  });
});
