/**
 * The settings every command reads: the service's environment variables and config file (SLUICE_CONFIG), validated
 * once. A bad value is a named ConfigError before anything connects or logs.
 */
import { readConfig } from '../config/load-config.js';
import type { ResolvedOptions, SluiceOptions } from '../config/options.js';
import { resolveOptions, type SettingSources } from '../config/resolve-options.js';
import { checkKafkaSecurity } from '../consumer/kafka-security.js';

export interface Settings {
  options: SluiceOptions;
  resolved: ResolvedOptions;
  sources: SettingSources;
}

/** Throws a ConfigError naming every bad setting, or a Kafka TLS or SASL file that cannot be used. */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const { options, sources } = readConfig(env);
  const resolved = resolveOptions(options, sources);
  checkKafkaSecurity(resolved);
  return { options, resolved, sources };
}
