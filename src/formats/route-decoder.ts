import { isRegistryFormat, type ResolvedRoute } from '../config/route-options.js';
import { ConnectJsonDecoder } from './connect-json-decoder.js';
import { DebeziumEnvelope } from './debezium-envelope.js';
import { decoderChain, type RecordDecoder } from './record-decoder.js';
import { RegistryDecoder } from './registry-decoder.js';
import type { SchemaRegistryClient } from './schema-registry.js';

/**
 * What decodes a route's records before it reads them: its key format's decoder, its value format's, then its
 * envelope's; undefined for plain JSON rows (and JSON keys), which the route reads as they are. Config has checked
 * that a registry format has a registry.
 */
export function routeDecoder(
  route: ResolvedRoute,
  registry: SchemaRegistryClient | undefined,
  limits: { maxJsonDepth: number; maxRecordBytes: number },
): RecordDecoder | undefined {
  const { maxJsonDepth, maxRecordBytes } = limits;
  const stages: RecordDecoder[] = [];
  if (route.keyFormat && isRegistryFormat(route.keyFormat)) stages.push(new RegistryDecoder(route.keyFormat, registry!, 'key', limits));
  if (isRegistryFormat(route.format)) stages.push(new RegistryDecoder(route.format, registry!, 'value', limits));
  // A Debezium event is one level above its row: the row keeps the whole depth limit.
  else if (route.format === 'connect-json') stages.push(new ConnectJsonDecoder(route.envelope === 'debezium' ? maxJsonDepth + 1 : maxJsonDepth));
  if (route.envelope === 'debezium') stages.push(new DebeziumEnvelope(maxJsonDepth));
  return decoderChain(stages, maxRecordBytes);
}
