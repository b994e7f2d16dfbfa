export { createSluice, type PartitionStatus, type Sluice, type SluiceDeps, type SluiceStatus } from './sluice.js';
export type { SluiceOptions, ResolvedOptions, StartPosition, LogLevel } from './config/options.js';
export { defaults } from './config/options.js';
export type { RouteOptions, ColumnMapping, ColumnSource, RecordTransform, Row, TombstonePolicy } from './config/route-options.js';
export { readConfig, environmentSettings } from './config/load-config.js';
export type { SourceRecord } from './record.js';
export type { SluiceEvents, FlushEvent, CommitEvent } from './events.js';
export type { LifecycleState } from './lifecycle/lifecycle.js';
export * from './errors.js';
