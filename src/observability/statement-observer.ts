/**
 * One PostgreSQL statement of a flush, in traces and metrics (database conventions): an `INSERT <table>` or
 * `DELETE <table>` CLIENT span under the batch's, and its duration in `db.client.operation.duration`; on failure,
 * error.type and the SQLSTATE (db.response.status_code) on both.
 */
import { SpanKind } from '@opentelemetry/api';
import { sqlStateOf } from '../errors.js';
import type { SluiceMetrics } from './metrics.js';
import { Attr } from './semconv.js';
import { errorType, withSpan } from './tracing.js';

export interface ObservedStatement {
  table: string;
  operation: 'INSERT' | 'DELETE';
  /** Rows the statement carries. */
  rows: number;
}

export async function observeStatement<T>(metrics: SluiceMetrics | undefined, statement: ObservedStatement, run: () => Promise<T>): Promise<T> {
  const attributes = { [Attr.dbSystem]: 'postgresql', [Attr.dbCollection]: statement.table, [Attr.dbOperation]: statement.operation };
  const startedAt = performance.now();
  let failure: unknown;
  try {
    return await withSpan(
      `${statement.operation} ${statement.table}`,
      // The convention sets the batch size only for a batch: two rows or more.
      { kind: SpanKind.CLIENT, attributes: { ...attributes, ...(statement.rows > 1 ? { [Attr.dbBatchSize]: statement.rows } : {}) } },
      run,
    );
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    const sqlState = failure === undefined ? undefined : sqlStateOf(failure);
    metrics?.dbDuration.record((performance.now() - startedAt) / 1000, {
      ...attributes,
      // The database convention: error.type is the SQLSTATE when there is one (pg's own error class says nothing).
      ...(failure === undefined ? {} : { [Attr.errorType]: sqlState ?? errorType(failure) }),
      ...(sqlState ? { [Attr.dbStatusCode]: sqlState } : {}),
    });
  }
}
