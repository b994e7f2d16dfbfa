import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind } from '@opentelemetry/api';
import { node, tracing } from '@opentelemetry/sdk-node';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { FlushEvent } from '../../src/index.js';
import { runCli, spawnSluice } from '../helpers/process.js';
import { KafkaHelper, brokers, database, databaseUrl, uniqueName, waitFor, topicAndTable } from '../helpers/stack.js';
import { testSluice } from '../helpers/sluice.js';

// Spans of this file's pipelines, kept in memory. Registered once for the file (each test file runs in its own worker).
const exporter = new tracing.InMemorySpanExporter();
const provider = new node.NodeTracerProvider({ spanProcessors: [new tracing.SimpleSpanProcessor(exporter)], spanLimits: { linkCountLimit: 128 } });
beforeAll(() => provider.register());
afterAll(() => provider.shutdown());

const traceparent = () => `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
const spanId = (s: tracing.ReadableSpan) => s.spanContext().spanId;
const parentOf = (s: tracing.ReadableSpan) => s.parentSpanContext?.spanId;

describe('traces', () => {
  it('one process span per flush, linked to every producer, with the PostgreSQL write, the poison isolation, the DLQ send and the commit under it', async () => {
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 2, topic: 'orders', table: 'orders', columns: 'id text PRIMARY KEY, name text NOT NULL' });
    // 60 records, each from a producer span of its own; o7 has no name (NOT NULL): poison.
    const parents = new Map<string, string>();
    const messages = Array.from({ length: 60 }, (_, i) => {
      const parent = traceparent();
      parents.set(`o${i}`, parent);
      return { key: `o${i}`, value: JSON.stringify(i === 7 ? { note: 'no name' } : { name: `n${i}` }), partition: i % 2, headers: { traceparent: parent } };
    });
    await kafka.producer.send({ topic, messages });
    const { sluice, groupId } = testSluice({ routes: [{ topic, table, key: ['id'], columns: { id: { from: 'key' }, name: 'name' } }], batching: { lingerMs: 50 } });
    const flushes: FlushEvent[] = [];
    sluice.events.on('flush', (flush) => void flushes.push(flush));
    await sluice.start();
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic));
    await sluice.stop();

    const spans = exporter.getFinishedSpans();
    const processSpans = spans.filter((s) => s.name === `process ${topic}`);
    expect(processSpans.length).toBe(flushes.length);
    for (const span of processSpans) {
      expect(span.kind).toBe(SpanKind.CONSUMER);
      const a = span.attributes;
      expect(a).toMatchObject({
        'messaging.system': 'kafka',
        'messaging.operation.name': 'process',
        'messaging.operation.type': 'process',
        'messaging.destination.name': topic,
        'messaging.consumer.group.name': groupId,
      });
      expect(typeof a['messaging.destination.partition.id']).toBe('string');
      const flush = flushes.find((f) => String(f.partition) === a['messaging.destination.partition.id'] && f.fromOffset === a['sluice.batch.first_offset']);
      expect(flush, `a flush for ${JSON.stringify(a)}`).toBeDefined();
      expect(a['messaging.batch.message_count']).toBe(flush!.records);
      expect(a).toMatchObject({ 'sluice.flush.reason': flush!.reason, 'sluice.flush.outcome': 'committed', 'sluice.records.dead_lettered': flush!.deadLettered, 'sluice.records.stale': 0 });
      expect(a['sluice.records.written']).toBe(flush!.upserted + flush!.deleted);
    }
    // Every record's producer context is linked, once.
    const linked = processSpans.flatMap((s) => s.links.map((l) => `00-${l.context.traceId}-${l.context.spanId}-01`)).sort();
    expect(linked).toEqual([...parents.values()].sort());

    // The PostgreSQL write under the process span, by the database conventions.
    const inserts = spans.filter((s) => s.name === `INSERT ${table}`);
    expect(inserts.length).toBeGreaterThanOrEqual(processSpans.length);
    for (const insert of inserts) {
      expect(insert.kind).toBe(SpanKind.CLIENT);
      expect(insert.attributes).toMatchObject({ 'db.system.name': 'postgresql', 'db.collection.name': table, 'db.operation.name': 'INSERT' });
      expect(spans.some((s) => spanId(s) === parentOf(insert) && (s.name === `process ${topic}` || s.name === 'isolate poison'))).toBe(true);
    }
    // The batch INSERT that met the poison record failed with its SQLSTATE.
    expect(inserts.some((s) => s.attributes['db.response.status_code'] === '23502' && s.status.code === 2)).toBe(true);

    // The poison record: an isolation span with the error, and the DLQ send, both under the process span of its batch.
    const poisonBatch = processSpans.find((s) => s.attributes['sluice.records.dead_lettered'] === 1)!;
    expect(poisonBatch).toBeDefined();
    const isolation = spans.find((s) => s.name === 'isolate poison')!;
    expect(parentOf(isolation)).toBe(spanId(poisonBatch));
    expect(isolation.attributes).toMatchObject({ 'sluice.records.isolated': 1, 'error.type': 'SLUICE_POISON_RECORD', 'db.response.status_code': '23502' });
    expect(isolation.status.code).toBe(2);
    const send = spans.find((s) => s.name === `send ${topic}.dlq`)!;
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(parentOf(send)).toBe(spanId(poisonBatch));
    expect(send.attributes).toMatchObject({ 'messaging.operation.type': 'send', 'messaging.destination.name': `${topic}.dlq`, 'messaging.batch.message_count': 1 });
    // The DLQ record carries the flush's trace context, and keeps its producer's own traceparent.
    const [dead] = await kafka.readAll(`${topic}.dlq`);
    expect(dead!.headers.traceparent).toBe(parents.get('o7'));
    expect(dead!.headers['sluice.error.traceparent']).toBe(`00-${send.spanContext().traceId}-${spanId(send)}-01`);
    expect(send.spanContext().traceId).toBe(poisonBatch.spanContext().traceId);

    // Each offset commit: a settle span under its batch's process span.
    const commits = spans.filter((s) => s.name === `commit ${topic}`);
    expect(commits.length).toBe(processSpans.length);
    for (const commit of commits) {
      expect(commit.attributes).toMatchObject({ 'messaging.operation.name': 'commit', 'messaging.operation.type': 'settle' });
      expect(processSpans.some((p) => spanId(p) === parentOf(commit))).toBe(true);
    }
  });

  it('a batch with more producer contexts than the link limit links up to the limit and counts the rest', async () => {
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 1, topic: 'events', table: 'events', columns: 'id text PRIMARY KEY, n int' });
    const messages = Array.from({ length: 300 }, (_, i) => ({ key: `e${i}`, value: JSON.stringify({ n: i }), headers: { traceparent: traceparent() } }));
    await kafka.producer.send({ topic, messages });
    // All 300 are in Kafka before the start: one fetch, and one batch of them.
    const { sluice, groupId } = testSluice({
      routes: [{ topic, table, key: ['id'], columns: { id: { from: 'key' }, n: 'n' } }],
      batching: { lingerMs: 500, maxBatchRecords: 1_000 },
    });
    await sluice.start();
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic));
    await sluice.stop();
    const processSpans = exporter.getFinishedSpans().filter((s) => s.name === `process ${topic}`);
    const links = processSpans.reduce((n, s) => n + s.links.length, 0);
    const dropped = processSpans.reduce((n, s) => n + Number(s.attributes['sluice.links.dropped'] ?? 0), 0);
    expect(Math.max(...processSpans.map((s) => s.links.length))).toBeLessThanOrEqual(128);
    expect(links + dropped).toBe(300);
    expect(dropped).toBeGreaterThan(0);
  });
});

/** An OTLP/HTTP JSON endpoint that keeps the spans it is sent: name and links (hex ids). */
async function otlpReceiver(): Promise<{ url: string; spans: Array<{ name: string; links: Array<{ traceId: string; spanId: string }> }> }> {
  const spans: Array<{ name: string; links: Array<{ traceId: string; spanId: string }> }> = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      const sent = JSON.parse(body) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ name: string; links?: Array<{ traceId: string; spanId: string }> }> }> }> };
      for (const r of sent.resourceSpans) for (const scope of r.scopeSpans) for (const span of scope.spans) spans.push({ name: span.name, links: span.links ?? [] });
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, spans };
}

describe('a replay', () => {
  it("links each record's producer and the flush that dead-lettered it", async () => {
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 1, topic: 'orders', table: 'orders', columns: 'id text PRIMARY KEY, name text NOT NULL' });
    const routes = [{ topic, table, key: ['id'], columns: { id: { from: 'key' as const }, name: 'name' } }];
    const producer = traceparent();
    await kafka.producer.send({ topic, messages: [{ key: 'a', value: '{"name": "x"}' }, { key: 'b', value: '{}', headers: { traceparent: producer } }] });
    const { sluice, groupId } = testSluice({ routes, batching: { lingerMs: 50 } });
    await sluice.start();
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic));
    await sluice.stop();
    const [dead] = await kafka.readAll(`${topic}.dlq`);
    const flush = String(dead!.headers['sluice.error.traceparent']);
    expect(flush).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);

    await db.query(`ALTER TABLE ${table} ALTER COLUMN name DROP NOT NULL`);
    const receiver = await otlpReceiver();
    const replayed = await runCli(['dlq', 'replay', `${topic}.dlq`, '--into-postgres'], {
      KAFKA_BROKERS: brokers().join(','),
      DATABASE_URL: databaseUrl(),
      SLUICE_ROUTES: JSON.stringify(routes),
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url,
    });
    expect(replayed.code, replayed.stderr).toBe(0);
    const span = receiver.spans.find((s) => s.name === `replay ${topic}.dlq`);
    expect(span, JSON.stringify(receiver.spans.map((s) => s.name))).toBeDefined();
    const ids = (traceparent: string) => ({ traceId: traceparent.split('-')[1], spanId: traceparent.split('-')[2] });
    expect(span!.links.map((l) => ({ traceId: l.traceId, spanId: l.spanId }))).toEqual(expect.arrayContaining([ids(producer), ids(flush)]));
    // Written through the route, as the flush would have.
    expect((await db.query(`SELECT id, name FROM ${table} ORDER BY id`)).rows).toEqual([{ id: 'a', name: 'x' }, { id: 'b', name: null }]);
  });
});

describe('metrics on /metrics', () => {
  it('after a known run the counters equal the known counts, and the latency histogram counts every record', async () => {
    const { kafka, topic, db, table } = await topicAndTable({ partitions: 3, topic: 'orders', table: 'orders', columns: 'id text PRIMARY KEY, name text NOT NULL' });
    const groupId = uniqueName('group');
    // 1,000 records, 10 of them poison (no name).
    await kafka.produce(topic, Array.from({ length: 1_000 }, (_, i) => ({ key: `o${i}`, value: JSON.stringify(i % 100 === 3 ? {} : { name: `n${i}` }) })));
    const routes = [{ topic, table, key: ['id'], columns: { id: { from: 'key' }, name: 'name' } }];
    const proc = spawnSluice({ KAFKA_BROKERS: brokers().join(','), DATABASE_URL: databaseUrl(), SLUICE_ROUTES: JSON.stringify(routes), SLUICE_GROUP_ID: groupId });
    const port = await waitFor('the HTTP port', () => proc.logs.find((l) => l.msg === 'HTTP endpoints listening')?.port as number | undefined);
    await waitFor('every offset committed', () => kafka.isFullyCommitted(groupId, topic));

    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    /** The sum over every series of `name` whose labels include `labels`. */
    const total = (name: string, labels: Record<string, string> = {}) =>
      text
        .split('\n')
        .filter((line) => line.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
        .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    const mine = { messaging_destination_name: topic, messaging_consumer_group_name: groupId };
    expect(total('messaging_client_consumed_messages_total', mine)).toBe(1_000);
    expect(total('sluice_records_flushed_total', mine)).toBe(1_000);
    expect(total('sluice_records_dead_lettered_total', mine)).toBe(10);
    // One distribution per process (no partition labels: they cost too much per record); this process wrote only these.
    expect(total('sluice_record_latency_count')).toBe(1_000);
    expect(total('sluice_batch_records_sum', mine)).toBe(1_000);
    expect(total('messaging_process_duration_count', mine)).toBe(total('sluice_batch_records_count', mine));
    expect(total('messaging_client_sent_messages_total', { messaging_destination_name: `${topic}.dlq` })).toBe(10);
    expect(total('db_client_operation_duration_count', { db_collection_name: table, db_operation_name: 'INSERT' })).toBeGreaterThan(0);
    expect(total('db_client_operation_duration_count', { db_collection_name: table, db_response_status_code: '23502' })).toBeGreaterThan(0);
    // Gauges: lag per partition (0 now), buffers empty, memory.
    expect(text).toMatch(new RegExp(`^sluice_consumer_lag\\{[^}]*messaging_destination_name="${topic}"[^}]*\\} 0$`, 'm'));
    expect(total('sluice_buffered_records', { messaging_consumer_group_name: groupId })).toBe(0);
    expect(total('process_memory_usage')).toBeGreaterThan(10_000_000);
    proc.child.kill('SIGTERM');
    expect((await proc.exited).code).toBe(0);
  });
});
