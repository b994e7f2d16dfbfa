/**
 * Debezium change events → rows: a decoded value `{"before": …, "after": …, "op": …, "source": …}` becomes the row
 * `after` for a create, an update or a snapshot read (`op` c, u, r), and a deletion of the row `before` for a delete
 * (`op` d), whose key the route reads from it as it reads a written row's (record-decoder.ts, `isDeletion`). The
 * tombstone Debezium writes after a delete (for compaction) is a Kafka tombstone: the route's `tombstones` policy
 * applies to it (by default it deletes nothing more where the key comes from the row).
 *
 * Truncate (`op` t) and message (`op` m) events name no row: they are poison, with a reason an operator can act
 * on, rather than silently dropped. https://debezium.io/documentation/reference/stable/connectors/postgresql.html#postgresql-events
 */
import type { SourceRecord } from '../record.js';
import { MemberName, memberSpan, objectSpan } from '../sinks/json-span.js';
import { checkedObjectSpan, decodeEach, decodedRecord, type DecodedBatch, type RecordDecoder } from './record-decoder.js';

const op = new MemberName('op');
const before = new MemberName('before');
const after = new MemberName('after');

/** Runs after the value's format decoder (route-decoder.ts): it reads the event as JSON. */
export class DebeziumEnvelope implements RecordDecoder {
  readonly #maxJsonDepth: number;

  constructor(maxJsonDepth = Infinity) {
    this.#maxJsonDepth = maxJsonDepth;
  }

  decode(records: readonly SourceRecord[]): Promise<DecodedBatch> {
    return Promise.resolve(decodeEach(records, (record) => this.#unwrap(record)));
  }

  #unwrap(record: SourceRecord): SourceRecord | string {
    const value = record.value;
    if (value === null) return record;
    // The event as a format decoder checked it, or as scanned here: its own members are one level above the row, so
    // the row keeps the whole depth limit.
    const event = checkedObjectSpan(record) ?? objectSpan(value, 0, value.length, this.#maxJsonDepth + 1);
    if (typeof event === 'string') return event;
    const opSpan = memberSpan(value, event, op);
    const code = opSpan ? value.toString('utf8', opSpan[0], opSpan[1]) : undefined;
    const row = (member: MemberName): [number, number] | undefined => {
      const span = memberSpan(value, event, member);
      return span && value[span[0]] === 0x7b ? span : undefined;
    };
    switch (code) {
      case '"c"':
      case '"u"':
      case '"r"': {
        const span = row(after);
        if (!span) return `a Debezium ${code} event without an "after" row`;
        return decodedRecord(record, 'value', value, { span });
      }
      case '"d"': {
        const span = row(before);
        if (!span) return 'a Debezium delete without a "before" row: set the source table\'s REPLICA IDENTITY so that deletes carry at least the key';
        return decodedRecord(record, 'value', value, { span, deletes: true });
      }
      case '"t"':
        return 'a Debezium truncate event names no row and is not applied: truncate the table yourself, or leave "t" in the connector\'s skipped.operations';
      case undefined:
        return 'value is not a Debezium change event: it has no "op"';
      default:
        return `a Debezium event with op ${code.slice(0, 20)} names no row to write`;
    }
  }
}
