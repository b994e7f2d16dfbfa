/**
 * Trace contexts in records' W3C headers (`traceparent`, with `tracestate`): span links to them (distinct contexts
 * only, at most the SDK's link limit, 128 unless OTEL_SPAN_LINK_COUNT_LIMIT says otherwise, the rest counted as
 * dropped), and the header for a context. Always W3C Trace Context, whatever propagator the application registered:
 * the headers are W3C by name.
 */
import { ROOT_CONTEXT, defaultTextMapGetter, defaultTextMapSetter, isSpanContextValid, trace, type Context, type Link, type Span } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { headerText, type RecordHeaders } from '../record.js';
import { Attr } from './semconv.js';

const w3c = new W3CTraceContextPropagator();

/** The W3C traceparent of `context`'s span, or undefined when there is none to propagate (nothing traced). */
export function traceparentOf(context: Context): string | undefined {
  const carrier: Record<string, string> = {};
  w3c.inject(context, carrier, defaultTextMapSetter);
  return carrier.traceparent;
}

/** The SDK's default cap on links per span. */
const defaultLinkLimit = 128;

export function linkLimit(env: NodeJS.ProcessEnv = process.env): number {
  const limit = Number(env.OTEL_SPAN_LINK_COUNT_LIMIT);
  return env.OTEL_SPAN_LINK_COUNT_LIMIT !== undefined && Number.isInteger(limit) && limit >= 0 ? limit : defaultLinkLimit;
}

/**
 * Links to the contexts in `header` (default `traceparent`) of each record's headers, with the matching
 * `tracestate` when the header is the standard one.
 */
export function linksFromHeaders(
  records: Iterable<{ headers: RecordHeaders }>,
  limit: number,
  headerNames: readonly string[] = ['traceparent'],
): { links: Link[]; dropped: number } {
  const links: Link[] = [];
  const seen = new Set<string>();
  let dropped = 0;
  for (const record of records) {
    for (const name of headerNames) {
      const traceparent = headerText(record.headers, name);
      if (traceparent === undefined || seen.has(traceparent)) continue;
      seen.add(traceparent);
      if (links.length >= limit) {
        dropped++;
        continue;
      }
      const carrier: Record<string, string> = { traceparent };
      const state = name === 'traceparent' ? headerText(record.headers, 'tracestate') : undefined;
      if (state !== undefined) carrier.tracestate = state;
      const linked = trace.getSpanContext(w3c.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter));
      if (linked && isSpanContextValid(linked)) links.push({ context: linked });
    }
  }
  return { links, dropped };
}

/**
 * Links a recording span to the contexts in the records' headers, and counts in `sluice.links.dropped` those beyond
 * the link limit. Nothing is read for a span that does not record.
 */
export function linkToRecords(span: Span, records: Iterable<{ headers: RecordHeaders }>, headerNames: readonly string[] = ['traceparent'], limit = linkLimit()): void {
  if (!span.isRecording()) return;
  const { links, dropped } = linksFromHeaders(records, limit, headerNames);
  if (links.length > 0) span.addLinks(links);
  if (dropped > 0) span.setAttribute(Attr.linksDropped, dropped);
}
