/**
 * Which Kafka conditions only an operator can fix, and what to do about them. Every other condition (a broker
 * restarting or unreachable, a leader or coordinator moving, a timeout) passes by itself and is retried for as long
 * as it lasts. Decided by the broker's error type (kafkajs' `type`) or kafkajs' error name, anywhere in the cause
 * chain: never by message text.
 */

import { KafkaError, causeChain, errorMessage } from '../errors.js';

/** What a Kafka error was met doing, for the fix to name the right resource. */
export interface KafkaErrorContext {
  /** The topic written or read (a DLQ topic, a source topic). */
  topic?: string;
  groupId?: string;
  /** `write` for the DLQ producer, `read` for the consumer: the ACL the fix asks for. */
  access: 'read' | 'write';
}

type Fix = (context: KafkaErrorContext) => string;

const topicName = (c: KafkaErrorContext) =>
  c.topic === undefined ? 'the topics sluice uses' : `${c.access === 'write' ? 'DLQ topic' : 'topic'} ${c.topic}`;

const saslRefused = "check the SASL user and password (or token) in sluice's Kafka settings";

/** Broker error types (the Kafka protocol's error names). */
const fixesByType: Record<string, Fix> = {
  MESSAGE_TOO_LARGE: (c) =>
    `raise max.message.bytes of ${topicName(c)} (kafka-configs --alter --entity-type topics --entity-name ${c.topic ?? '…'} --add-config max.message.bytes=…)`,
  RECORD_LIST_TOO_LARGE: (c) => `raise max.message.bytes of ${topicName(c)}`,
  INVALID_RECORD: (c) => `check ${topicName(c)}'s configuration (a compacted DLQ topic refuses records without a key: use cleanup.policy=delete)`,
  TOPIC_AUTHORIZATION_FAILED: (c) => `grant this client ${c.access === 'write' ? 'WRITE' : 'READ'} (and DESCRIBE) on ${topicName(c)}`,
  GROUP_AUTHORIZATION_FAILED: (c) => `grant this client READ on consumer group ${c.groupId ?? '(kafka.groupId)'}`,
  CLUSTER_AUTHORIZATION_FAILED: (c) =>
    c.access === 'write' ? 'grant this client IDEMPOTENT_WRITE on the cluster (the DLQ producer is idempotent)' : 'grant this client the cluster ACLs it lacks',
  UNKNOWN_TOPIC_OR_PARTITION: (c) =>
    c.access === 'write'
      ? `create ${topicName(c)} again (with at least the source topic's partitions), or let sluice create it at start-up`
      : `create ${topicName(c)}, or remove it from the routes`,
  POLICY_VIOLATION: (c) => `check the broker's create/alter policy for ${topicName(c)}`,
  SASL_AUTHENTICATION_FAILED: () => saslRefused,
  UNSUPPORTED_SASL_MECHANISM: () => 'use a SASL mechanism the brokers enable (sasl.enabled.mechanisms)',
  ILLEGAL_SASL_STATE: () => "check the brokers' listener: it expects a different SASL handshake",
  INCONSISTENT_GROUP_PROTOCOL: (c) =>
    `another application uses consumer group ${c.groupId ?? '(kafka.groupId)'} with another protocol: give sluice a group of its own (kafka.groupId)`,
  GROUP_MAX_SIZE_REACHED: (c) => `group ${c.groupId ?? '(kafka.groupId)'} has reached the brokers' group.max.size: run fewer replicas or raise it`,
  UNSUPPORTED_VERSION: () => 'the brokers do not support a request kafkajs sends: check the broker version',
  INVALID_SESSION_TIMEOUT: () =>
    "set kafka.sessionTimeoutMs (SLUICE_SESSION_TIMEOUT_MS) within the brokers' group.min.session.timeout.ms and group.max.session.timeout.ms",
};

/** kafkajs' own error classes that no waiting fixes. */
const fixesByName: Record<string, Fix> = {
  KafkaJSSASLAuthenticationError: () => saslRefused,
  KafkaJSNotImplemented: () => 'the brokers ask for something kafkajs does not implement; check the broker version and listener',
};

const untrustedCertificate: Fix = () =>
  "the brokers' TLS certificate is not signed by a CA sluice trusts: set kafka.ssl.caFile (KAFKA_SSL_CA_FILE) to the CA that signed it";

/** Node's TLS error codes (a connection error's `code`): a certificate no waiting makes acceptable. */
const fixesByCode: Record<string, Fix> = {
  SELF_SIGNED_CERT_IN_CHAIN: untrustedCertificate,
  DEPTH_ZERO_SELF_SIGNED_CERT: untrustedCertificate,
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: untrustedCertificate,
  UNABLE_TO_GET_ISSUER_CERT: untrustedCertificate,
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: untrustedCertificate,
  CERT_SIGNATURE_FAILURE: untrustedCertificate,
  ERR_TLS_CERT_ALTNAME_INVALID: () => "the brokers' TLS certificate does not name the host sluice connects to: list the brokers (KAFKA_BROKERS) by a name their certificate holds",
  CERT_HAS_EXPIRED: () => "the brokers' TLS certificate has expired: renew it",
  CERT_NOT_YET_VALID: () => "the brokers' TLS certificate is not valid yet: check the clocks of the brokers and of sluice",
  ERR_SSL_WRONG_VERSION_NUMBER: () => "the brokers' listener does not speak TLS: use their TLS listener's port, or turn TLS off (KAFKA_SSL=false)",
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: () =>
    'the brokers ask for a client certificate: set kafka.ssl.certFile and keyFile (KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE)',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: () => "the brokers do not trust the CA that signed sluice's client certificate: sign it with a CA in the brokers' truststore",
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN: () =>
    "the brokers refused sluice's client certificate: it must be signed by a CA in the brokers' truststore (KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE)",
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: () => "sluice's client certificate has expired: renew it (KAFKA_SSL_CERT_FILE)",
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: () =>
    "the brokers refused sluice's client certificate, or want one: set kafka.ssl.certFile and keyFile (KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE) to a certificate signed by a CA the brokers trust",
};

/** What an operator must do about `error`, or undefined when it passes by itself. */
export function kafkaOperatorFix(error: unknown, context: KafkaErrorContext): string | undefined {
  for (const e of causeChain(error)) {
    const { type, name, code } = e as { type?: unknown; name?: unknown; code?: unknown };
    if (typeof type === 'string' && fixesByType[type]) return fixesByType[type]!(context);
    if (typeof name === 'string' && fixesByName[name]) return fixesByName[name]!(context);
    if (typeof code === 'string' && fixesByCode[code]) return fixesByCode[code]!(context);
  }
  return undefined;
}

/**
 * An error of the consumer (its connection, subscription, or a crash that took it out of the group) as sluice's
 * typed error. Kafka's own conditions are retriable, naming an operator fix where waiting will not help; an error
 * whose root is not kafkajs' came from sluice's own batch handler, and is not retriable.
 */
export function kafkaConsumerError(what: string, error: unknown, groupId: string): KafkaError {
  const root = [...causeChain(error)].at(-1);
  const name = (root as { name?: unknown } | undefined)?.name;
  const fix = kafkaOperatorFix(error, { groupId, access: 'read' });
  return new KafkaError(`${what}: ${errorMessage(error)}`, {
    cause: error,
    retriable: typeof name === 'string' && name.startsWith('KafkaJS'),
    ...(fix ? { operatorFix: fix } : {}),
  });
}

/**
 * A likely cause of a connection the brokers closed at once, for a person reading a failed check: a plaintext client
 * against a TLS listener, or a client without SASL against a SASL one, looks just like that. Undefined when nothing
 * points there.
 */
export function kafkaConnectionHint(error: unknown, client: { tls: boolean; sasl: boolean }): string | undefined {
  for (const e of causeChain(error)) {
    const { name } = e as { name?: unknown };
    if (name === 'KafkaJSConnectionClosedError' || name === 'KafkaJSRequestTimeoutError') {
      const cause = 'the broker closed the connection (or never answered)';
      if (!client.tls) return `${cause}: if its listener expects TLS, set KAFKA_SSL=true (kafka.ssl)`;
      if (!client.sasl) return `${cause}: if its listener expects SASL, set KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and a password (kafka.sasl)`;
      return undefined;
    }
  }
  return undefined;
}
