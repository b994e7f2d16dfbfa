import { SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';
import { Attr } from './semconv.js';

const tracer = trace.getTracer('sluice');

/** Runs `fn` in a span; records the error class and status when it throws. A no-op unless an SDK is registered. */
export async function withSpan<T>(name: string, attributes: Attributes, fn: () => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn();
    } catch (error) {
      span.setAttribute(Attr.errorType, error instanceof Error ? error.name : 'Error');
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      throw error;
    } finally {
      span.end();
    }
  });
}
