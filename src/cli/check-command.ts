/**
 * `sluice check`: what `sluice run` would meet, without running it. Reads the configuration, connects to
 * PostgreSQL and Kafka, checks every route's table (in a transaction rolled back: nothing is created), the offsets
 * table, the source and DLQ topics and the consumer group, and prints what it found. Exit 0 when nothing is wrong,
 * 1 when something is, 2 for a bad configuration: usable in CI and as an init container.
 */
import { pino } from 'pino';
import { dlqTopicFor, routedTopics } from '../config/resolve-options.js';
import { kafkaConnectionHint } from '../consumer/kafka-errors.js';
import { kafkaSecurityWarnings } from '../consumer/kafka-security.js';
import { KafkaInspector, type GroupFound, type TopicFound } from '../consumer/kafka-inspector.js';
import { errorMessage, operatorFixOf } from '../errors.js';
import { SchemaRegistryClient } from '../formats/schema-registry.js';
import { redactUrl } from '../observability/logger.js';
import { PostgresSink, type SinkCheck } from '../sinks/postgres-sink.js';
import { ExitCodes } from './exit-codes.js';
import type { Settings } from './settings.js';
import { stdoutTerminal, type Terminal } from './terminal.js';

export interface CheckReport {
  ok: boolean;
  problems: string[];
  /** Not wrong, but worth an operator's attention (TLS verification off, a SASL password in the clear). */
  warnings: string[];
  postgres: { url: string; reachable: boolean } & Partial<SinkCheck>;
  kafka: { brokers: string[]; reachable: boolean; topics: TopicFound[]; dlqTopics: Array<TopicFound & { createdAtStart: boolean }>; group?: GroupFound };
  /** When a setting names one: whether the schema registry answers, and the schema types it supports. */
  schemaRegistry?: { url: string; reachable: boolean; types?: string[] };
}

export async function check(settings: Settings): Promise<CheckReport> {
  const options = settings.resolved;
  const quiet = pino({ level: 'silent' });
  const problems: string[] = [];
  const topics = routedTopics(options);
  const report: CheckReport = {
    ok: false,
    problems,
    warnings: [],
    postgres: { url: redactUrl(options.database.url), reachable: false },
    kafka: { brokers: options.kafka.brokers, reachable: false, topics: [], dlqTopics: [] },
  };

  const sink = new PostgresSink({ ...options, database: { ...options.database, poolSize: 1 } }, quiet);
  try {
    Object.assign(report.postgres, await sink.check(), { reachable: true });
  } catch (error) {
    report.postgres.reachable = !(error as { unavailable?: boolean }).unavailable;
    problems.push(`PostgreSQL: ${errorMessage(error)}`);
  } finally {
    await sink.close();
  }

  let kafka: KafkaInspector | undefined;
  try {
    kafka = await KafkaInspector.connect(options, quiet);
    report.kafka.reachable = true;
    report.kafka.topics = await kafka.topics(topics);
    for (const t of report.kafka.topics) if (t.partitions === undefined) problems.push(`Kafka: source topic ${t.topic} does not exist`);
    const dlq = await kafka.topics(topics.map((t) => dlqTopicFor(options.dlq.topic, t)));
    report.kafka.dlqTopics = dlq.map((t) => ({ ...t, createdAtStart: t.partitions === undefined && options.dlq.createTopics }));
    for (const t of report.kafka.dlqTopics) {
      if (t.partitions === undefined && !t.createdAtStart) {
        problems.push(`Kafka: DLQ topic ${t.topic} does not exist: create it, or set dlq.createTopics (SLUICE_DLQ_CREATE_TOPICS) to true`);
      }
    }
    report.kafka.group = await kafka.group();
  } catch (error) {
    // The inspector's error names the fix where one is known; a closed connection only hints at one.
    const hint = kafkaConnectionHint(error, { tls: options.kafka.tls !== undefined, sasl: options.kafka.sasl !== undefined });
    problems.push(`Kafka: ${errorMessage(error)}${hint ? `: ${hint}` : ''}`);
  } finally {
    await kafka?.close().catch((error: unknown) => process.stderr.write(`sluice: closing the Kafka admin client failed: ${errorMessage(error)}\n`));
  }
  if (options.schemaRegistry) {
    const registry = new SchemaRegistryClient(options.schemaRegistry);
    report.schemaRegistry = { url: registry.url, reachable: false };
    try {
      report.schemaRegistry.types = await registry.schemaTypes();
      report.schemaRegistry.reachable = true;
    } catch (error) {
      const fix = operatorFixOf(error);
      problems.push(`schema registry: ${errorMessage(error)}${fix ? `: ${fix}` : ''}`);
    }
  }
  report.warnings = kafkaSecurityWarnings(options);
  report.ok = problems.length === 0;
  return report;
}

export async function checkCommand(settings: Settings, json: boolean): Promise<number> {
  const report = await check(settings);
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(settings, report, stdoutTerminal()));
  return report.ok ? ExitCodes.ok : ExitCodes.failed;
}

function formatReport(settings: Settings, report: CheckReport, out: Terminal): string {
  const o = settings.resolved;
  const lines: string[] = [];
  const mode = o.landing ? `landing mode (${o.landing.topics.join(', ')} → ${o.landing.table})` : `${o.routes.length} route(s)`;
  const missing = out.paint('red', 'MISSING');
  lines.push(`${out.paint('bold', 'configuration')}  ok: ${mode}, ${o.delivery}, group ${o.kafka.groupId}`);
  const pg = report.postgres;
  lines.push(`${out.paint('bold', 'PostgreSQL')}     ${pg.url}: ${pg.version ? `server ${pg.version}` : 'not checked'}`);
  for (const table of pg.created ?? []) lines.push(`  table ${table}: missing, created at start`);
  for (const r of pg.routes ?? []) {
    lines.push(`  route ${r.topic} → ${r.table} (${r.mode}): key ${r.key.join(', ')}; columns ${r.columns.join(', ')}`);
  }
  const k = report.kafka;
  lines.push(`${out.paint('bold', 'Kafka')}          ${k.brokers.join(',')}: ${k.reachable ? 'reachable' : out.paint('red', 'not reached')}`);
  for (const t of k.topics) lines.push(`  topic ${t.topic}: ${t.partitions === undefined ? missing : `${t.partitions} partition(s)`}`);
  for (const t of k.dlqTopics) {
    lines.push(`  DLQ topic ${t.topic}: ${t.partitions !== undefined ? `${t.partitions} partition(s)` : t.createdAtStart ? 'missing, created at start' : missing}`);
  }
  if (k.group) {
    const state = k.group.state === 'Dead' ? 'not known to Kafka yet (no member has joined)' : `${k.group.state}, ${k.group.members} member(s)`;
    lines.push(`  group ${k.group.groupId}: ${state}`);
  }
  const registry = report.schemaRegistry;
  if (registry) {
    lines.push(`${out.paint('bold', 'Schema registry')} ${registry.url}: ${registry.reachable ? `reachable, schema types ${registry.types!.join(', ')}` : out.paint('red', 'not reached')}`);
  }
  for (const warning of report.warnings) lines.push(out.paint('yellow', `warning: ${warning}`));
  lines.push(report.ok ? out.paint('green', 'ok: nothing wrong found') : out.paint('red', `${report.problems.length} problem(s):`));
  for (const p of report.problems) lines.push(`  - ${p}`);
  return `${lines.join('\n')}\n`;
}
