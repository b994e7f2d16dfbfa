/**
 * sluice's spans, made through the OpenTelemetry API: without a registered SDK they are non-recording and cost a few
 * allocations per batch (never per record).
 */
import { SpanKind, SpanStatusCode, trace, type Attributes, type Link, type Span } from '@opentelemetry/api';
import { SluiceError, sqlStateOf } from '../errors.js';
import { sluiceVersion } from '../version.js';
import { Attr } from './semconv.js';

export const tracer = trace.getTracer('sluice', sluiceVersion);

export { SpanKind };

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  links?: Link[];
}

/**
 * Runs `fn` in a span, a child of the active one, which is active inside `fn`; a throw is recorded on it
 * (error.type, status, and for PostgreSQL errors the SQLSTATE as db.response.status_code) and thrown on.
 */
export async function withSpan<T>(name: string, options: SpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, options, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      markFailed(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Records `error` on `span`: error.type is low in cardinality (sluice's error code, or the error's class). */
export function markFailed(span: Span, error: unknown): void {
  if (!span.isRecording()) return;
  const sqlState = sqlStateOf(error);
  // A PostgreSQL error's type is its SQLSTATE (database convention); sluice's own errors, their code.
  span.setAttribute(Attr.errorType, error instanceof SluiceError || !sqlState ? errorType(error) : sqlState);
  if (sqlState) span.setAttribute(Attr.dbStatusCode, sqlState);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}

export function errorType(error: unknown): string {
  if (error instanceof SluiceError) return error.code;
  return error instanceof Error ? error.name : 'Error';
}
