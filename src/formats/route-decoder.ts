import { isRegistryFormat, type ResolvedRoute } from '../config/route-options.js';
import { ConnectJsonDecoder } from './connect-json-decoder.js';
import { DebeziumEnvelope } from './debezium-envelope.js';
import type { RecordDecoder } from './record-decoder.js';
import { RegistryDecoder } from './registry-decoder.js';
import type { SchemaRegistryClient } from './schema-registry.js';

/**
 * What decodes a route's values before it reads them: its format's decoder, then its envelope's; undefined for
 * plain JSON rows, which the route reads as they are. Config has checked that a registry format has a registry.
 */
export function routeDecoder(route: ResolvedRoute, registry: SchemaRegistryClient | undefined, maxJsonDepth: number): RecordDecoder | undefined {
  let format: RecordDecoder | undefined;
  if (isRegistryFormat(route.format)) format = new RegistryDecoder(route.format, registry!);
  else if (route.format === 'connect-json') format = new ConnectJsonDecoder(maxJsonDepth);
  return route.envelope === 'debezium' ? new DebeziumEnvelope(format, maxJsonDepth) : format;
}
