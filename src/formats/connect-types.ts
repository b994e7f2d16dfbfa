/**
 * Kafka Connect's logical types and Debezium's temporal types, by their schema names: what a Connect JSON envelope's
 * `schema` (its `name`) or a Debezium Avro schema (its `connect.name`) says a plain int, long or bytes stands for.
 *
 * Connect: org.apache.kafka.connect.data.{Decimal, Timestamp, Date, Time} (connect-api `data` package).
 * Debezium (time.precision.mode=adaptive, the default, and connect): io.debezium.time.{Timestamp, MicroTimestamp,
 * NanoTimestamp, Date, Time, MicroTime} are local (no zone: a PostgreSQL `timestamp` or `time`); ZonedTimestamp is
 * already ISO text. io.debezium.data.VariableScaleDecimal is a struct of a scale and the unscaled bytes.
 */
export type LogicalKind =
  | 'decimal'
  | 'timestamp-millis'
  | 'local-timestamp-millis'
  | 'local-timestamp-micros'
  | 'local-timestamp-nanos'
  | 'date'
  | 'time-millis'
  | 'time-micros'
  | 'variable-scale-decimal';

export const connectLogicalTypes: ReadonlyMap<string, LogicalKind> = new Map([
  ['org.apache.kafka.connect.data.Decimal', 'decimal'],
  ['org.apache.kafka.connect.data.Timestamp', 'timestamp-millis'],
  ['org.apache.kafka.connect.data.Date', 'date'],
  ['org.apache.kafka.connect.data.Time', 'time-millis'],
  ['io.debezium.time.Timestamp', 'local-timestamp-millis'],
  ['io.debezium.time.MicroTimestamp', 'local-timestamp-micros'],
  ['io.debezium.time.NanoTimestamp', 'local-timestamp-nanos'],
  ['io.debezium.time.Date', 'date'],
  ['io.debezium.time.Time', 'time-millis'],
  ['io.debezium.time.MicroTime', 'time-micros'],
  ['io.debezium.data.VariableScaleDecimal', 'variable-scale-decimal'],
]);
