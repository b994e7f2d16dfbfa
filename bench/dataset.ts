/**
 * The benchmark's data: orders with ~250-byte JSON payloads, wrapped in Kafka Connect's JsonConverter envelope
 * (schemas.enable=true) so that every contender, Kafka Connect included, reads the very same bytes. Generation is
 * deterministic (seeded), so a contender that needs the rows themselves (the PostgreSQL limit) regenerates them
 * instead of reading them back.
 */

export interface Order {
  id: string;
  seq: number;
  customer: string;
  amount: number;
  currency: string;
  status: string;
  items: number;
  note: string;
  created_ms: number;
}

export interface GeneratedRecord {
  partition: number;
  key: string;
  order: Order;
}

export interface DatasetShape {
  records: number;
  partitions: number;
  /** Share of records that reuse a key seen in the same partition within the last `repeatWindow` records. */
  repeatShare: number;
  repeatWindow: number;
  seed: number;
}

export const defaultShape = (records: number): DatasetShape => ({
  records,
  partitions: 4,
  repeatShare: 0.1,
  repeatWindow: 1000,
  seed: 20261123,
});

export const orderSchema = {
  type: 'struct',
  name: 'sluice.bench.Order',
  optional: false,
  fields: [
    { field: 'id', type: 'string', optional: false },
    { field: 'seq', type: 'int64', optional: false },
    { field: 'customer', type: 'string', optional: false },
    { field: 'amount', type: 'double', optional: false },
    { field: 'currency', type: 'string', optional: false },
    { field: 'status', type: 'string', optional: false },
    { field: 'items', type: 'int32', optional: false },
    { field: 'note', type: 'string', optional: true },
    { field: 'created_ms', type: 'int64', optional: false },
  ],
};
const schemaJson = JSON.stringify(orderSchema);

export const ordersTableDdl = (table: string, extra = '') =>
  `CREATE TABLE ${table} (id text PRIMARY KEY, seq bigint NOT NULL, customer text NOT NULL,
     amount double precision NOT NULL, currency text NOT NULL, status text NOT NULL, items integer NOT NULL,
     note text, created_ms bigint NOT NULL${extra})`;

export const orderColumns = ['id', 'seq', 'customer', 'amount', 'currency', 'status', 'items', 'note', 'created_ms'] as const;

/** The same orders as an Avro record (the `formats` section): every field of the JSON payload, with the same types. */
export const avroOrderSchema = {
  type: 'record',
  name: 'Order',
  namespace: 'sluice.bench',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'seq', type: 'long' },
    { name: 'customer', type: 'string' },
    { name: 'amount', type: 'double' },
    { name: 'currency', type: 'string' },
    { name: 'status', type: 'string' },
    { name: 'items', type: 'int' },
    { name: 'note', type: ['null', 'string'], default: null },
    { name: 'created_ms', type: 'long' },
  ],
};

/** Kafka Connect JsonConverter's bytes for one order. */
export function envelope(order: Order): string {
  return `{"schema":${schemaJson},"payload":${JSON.stringify(order)}}`;
}

/** mulberry32: small, fast, good enough to make data that is not trivially compressible. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const statuses = ['new', 'paid', 'packed', 'shipped', 'delivered', 'returned'];
const currencies = ['EUR', 'USD', 'GBP', 'CHF'];
const words = 'alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango'.split(' ');

/** Records in production order: round-robin over partitions, `seq` = position in the whole dataset. */
export function* generate(shape: DatasetShape, createdMs = 1_763_900_000_000): Generator<GeneratedRecord> {
  const rnd = random(shape.seed);
  const recent: string[][] = Array.from({ length: shape.partitions }, () => []);
  const fresh = new Array<number>(shape.partitions).fill(0);
  for (let seq = 0; seq < shape.records; seq++) {
    const partition = seq % shape.partitions;
    const window = recent[partition]!;
    let key: string;
    if (window.length > 0 && rnd() < shape.repeatShare) {
      key = window[Math.floor(rnd() * window.length)]!;
    } else {
      key = `o-p${partition}-${String(fresh[partition]!++).padStart(8, '0')}`;
      window.push(key);
      if (window.length > shape.repeatWindow) window.shift();
    }
    let note = '';
    while (note.length < 70) note += `${words[Math.floor(rnd() * words.length)]} `;
    yield {
      partition,
      key,
      order: {
        id: key,
        seq,
        customer: `customer-${Math.floor(rnd() * 50_000)}`,
        amount: Math.round(rnd() * 100_000) / 100,
        currency: currencies[Math.floor(rnd() * currencies.length)]!,
        status: statuses[Math.floor(rnd() * statuses.length)]!,
        items: 1 + Math.floor(rnd() * 9),
        note: note.trimEnd(),
        created_ms: createdMs + seq,
      },
    };
  }
}

/** What the target table must hold once a contender has consumed the whole dataset. */
export interface Expectation {
  distinctKeys: number;
  /** Sum of the `seq` of the last record of every key: one number that any lost or stale row changes. */
  seqSum: number;
  /** The last record of every partition: once all of them are visible, the partition has been fully written. */
  lastPerPartition: Array<{ id: string; seq: number }>;
  payloadBytes: number;
  valueBytes: number;
}

export function expectationOf(shape: DatasetShape): Expectation {
  const last = new Map<string, number>();
  const lastPerPartition: Array<{ id: string; seq: number }> = [];
  let payloadBytes = 0;
  let valueBytes = 0;
  for (const r of generate(shape)) {
    last.set(r.key, r.order.seq);
    lastPerPartition[r.partition] = { id: r.key, seq: r.order.seq };
    if (r.order.seq < 1000) {
      const payload = JSON.stringify(r.order).length;
      payloadBytes += payload;
      valueBytes += envelope(r.order).length;
    }
  }
  let seqSum = 0;
  for (const seq of last.values()) seqSum += seq;
  const sample = Math.min(1000, shape.records);
  return {
    distinctKeys: last.size,
    seqSum,
    lastPerPartition,
    payloadBytes: Math.round(payloadBytes / sample),
    valueBytes: Math.round(valueBytes / sample),
  };
}
