import { createRequire } from 'node:module';
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { kafkaConsumerError, kafkaOperatorFix } from '../../src/consumer/kafka-errors.js';
import { isRetriable, operatorFixOf } from '../../src/errors.js';

const { KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError, KafkaJSGroupCoordinatorNotFound } = kafkajs;
// kafkajs builds a broker's refusal from its protocol error table; the same table makes the errors here.
const { createErrorFromCode, errorCodes } = createRequire(import.meta.url)('kafkajs/src/protocol/error.js') as {
  createErrorFromCode(code: number): InstanceType<typeof KafkaJSProtocolError>;
  errorCodes: Array<{ type: string; code: number }>;
};
const retried = { retryCount: 5, retryTime: 2_000 };
const brokerError = (type: string) => createErrorFromCode(errorCodes.find((e) => e.type === type)!.code);

describe('Kafka errors', () => {
  it('a consumer that left the group on a broker condition is retried, the coordinator not found included', () => {
    for (const cause of [
      new (KafkaJSGroupCoordinatorNotFound as unknown as new (message: string) => Error)('Failed to find group coordinator'),
      new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), retried),
      brokerError('NOT_COORDINATOR_FOR_GROUP'),
    ]) {
      const error = kafkaConsumerError('the Kafka consumer left the group', cause, 'g');
      expect([isRetriable(error), operatorFixOf(error)]).toEqual([true, undefined]);
      expect(error.message).toContain(cause.message);
    }
  });

  it('an error of sluice\'s own batch handler is not retried', () => {
    const error = kafkaConsumerError('the Kafka consumer left the group', new KafkaJSNumberOfRetriesExceeded(new TypeError('x is undefined'), retried), 'g');
    expect(isRetriable(error)).toBe(false);
  });

  it('conditions only an operator can fix name the fix, for the resource and the access at hand', () => {
    const group = kafkaConsumerError('the Kafka consumer left the group', new KafkaJSNumberOfRetriesExceeded(brokerError('GROUP_AUTHORIZATION_FAILED'), retried), 'orders-sink');
    expect([isRetriable(group), operatorFixOf(group)]).toEqual([true, 'grant this client READ on consumer group orders-sink']);
    expect(kafkaOperatorFix(brokerError('TOPIC_AUTHORIZATION_FAILED'), { topic: 'orders.dlq', access: 'write' })).toBe(
      'grant this client WRITE (and DESCRIBE) on DLQ topic orders.dlq',
    );
    expect(kafkaOperatorFix(brokerError('TOPIC_AUTHORIZATION_FAILED'), { topic: 'orders', access: 'read' })).toBe(
      'grant this client READ (and DESCRIBE) on topic orders',
    );
    expect(kafkaOperatorFix(brokerError('LEADER_NOT_AVAILABLE'), { access: 'write' })).toBeUndefined();
  });
});
