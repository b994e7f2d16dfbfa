import { describe, expect, it } from 'vitest';
import { elementSpans, objectSpan } from '../../src/sinks/json-span.js';

const span = (text: string, maxDepth = Infinity) => objectSpan(Buffer.from(text), 0, Buffer.byteLength(text), maxDepth);

describe('objectSpan', () => {
  it('finds one object, spaces around allowed, and brackets inside strings ignored', () => {
    expect(span(' {"a": [1, {"b": "}]"}]} ')).toEqual([1, 24]);
  });

  it('refuses brackets that do not match by kind, or do not balance', () => {
    expect(span('{"a": [1}]')).toBe('value is not a single JSON object');
    expect(span('{"a": 1}}')).toBe('value is not a single JSON object');
    expect(span('{"a": {"b": 1}')).toBe('value is not a single JSON object');
    expect(span('{"a": 1} {"b": 2}')).toBe('value is not a single JSON object');
  });

  it('follows nesting of any depth, and bounds it when told', () => {
    const deep = (levels: number) => `${'{"a":['.repeat(levels)}1${']}'.repeat(levels)}`;
    const text = deep(500); // 1,000 levels: past the scanner's first stack
    expect(span(text)).toEqual([0, text.length]);
    expect(span(`${'{"a":['.repeat(500)}1${']}'.repeat(499)}]]`)).toBe('value is not a single JSON object');
    expect(span(deep(2), 4)).toEqual([0, deep(2).length]);
    expect(span(deep(2), 3)).toBe('value nests objects and arrays deeper than maxJsonDepth=3');
    // A value that failed deep down leaves nothing behind for the next one.
    expect(span('{"a": 1}')).toEqual([0, 8]);
  });

  it('elementSpans: each element of an array, spaces, strings holding brackets and commas, nested and empty arrays', () => {
    const elements = (text: string) => {
      const bytes = Buffer.from(text);
      return elementSpans(bytes, [0, bytes.length]).map(([s, e]) => bytes.toString('utf8', s, e));
    };
    expect(elements('[ 1 , "]", "a,b" ,[2,[3]], {"c":[4]},null ]')).toEqual(['1', '"]"', '"a,b"', '[2,[3]]', '{"c":[4]}', 'null']);
    expect(elements('[]')).toEqual([]);
    expect(elements('[ ]')).toEqual([]);
    // Broken arrays (PostgreSQL refuses the value itself): the elements up to the break.
    expect(elements('[1,,2]')).toEqual(['1']);
    expect(elements('[1,]')).toEqual(['1']);
  });
});
