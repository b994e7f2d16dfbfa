import { describe, expect, it } from 'vitest';
import { DlqHeaders, provenanceHeaders, truncateUtf8 } from '../../src/dlq/dlq-headers.js';
import { PoisonRecordError } from '../../src/errors.js';
import type { SourceRecord } from '../../src/record.js';
import { classifyPgError } from '../../src/sinks/classify-pg-error.js';

const record: SourceRecord = {
  topic: 'orders',
  partition: 3,
  offset: '42',
  key: Buffer.from('k'),
  value: Buffer.from('{}'),
  timestamp: '1700000000000',
  headers: {},
  sizeBytes: 3,
};
const context = { groupId: 'g', attempts: 2, failedAt: new Date('2026-01-02T03:04:05.000Z'), version: '9.9.9' };

describe('DLQ provenance headers', () => {
  it('names the source, the group, the error and its SQLSTATE from the cause chain', () => {
    const cause = classifyPgError(Object.assign(new Error('null value in column "name"'), { code: '23502' }), 'writing');
    const headers = provenanceHeaders(record, new PoisonRecordError(record, 'PostgreSQL rejected it', cause), context);
    expect(headers).toMatchObject({
      [DlqHeaders.sourceTopic]: 'orders',
      [DlqHeaders.sourcePartition]: '3',
      [DlqHeaders.sourceOffset]: '42',
      [DlqHeaders.sourceTimestamp]: '1700000000000',
      [DlqHeaders.consumerGroup]: 'g',
      [DlqHeaders.errorCode]: 'SLUICE_POISON_RECORD',
      [DlqHeaders.errorClass]: 'PoisonRecordError',
      [DlqHeaders.errorMessage]: 'record orders[3]@42 cannot be written: PostgreSQL rejected it',
      [DlqHeaders.sqlState]: '23502',
      [DlqHeaders.attempts]: '2',
      [DlqHeaders.failedAt]: '2026-01-02T03:04:05.000Z',
      [DlqHeaders.sluiceVersion]: '9.9.9',
    });
    expect(headers[DlqHeaders.errorStack]).toMatch(/^PoisonRecordError: /);
  });

  it('leaves the SQLSTATE out when no database was involved', () => {
    const headers = provenanceHeaders(record, new PoisonRecordError(record, 'value is not a single JSON object'), context);
    expect(DlqHeaders.sqlState in headers).toBe(false);
  });

  it('cuts long text to a byte budget without splitting a character', () => {
    expect(truncateUtf8('short', 100)).toBe('short');
    const cut = truncateUtf8('é'.repeat(100), 51);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(51);
    expect(cut.endsWith('…')).toBe(true);
    expect(cut.slice(0, -1)).toMatch(/^é+$/);
  });
});
