import { describe, expect, it } from 'vitest';
import { readable } from '../../src/cli/dlq-command.js';

describe('DLQ bytes shown to an operator', () => {
  it('cuts UTF-8 at a character boundary instead of calling it binary', () => {
    const value = Buffer.from(JSON.stringify({ name: 'Zoë Müller', city: 'Zürich', note: 'ü'.repeat(40) }), 'utf8');
    const shown = readable(value, 60)!;
    expect(shown.startsWith('{"name":"Zoë Müller","city":"Zürich"')).toBe(true);
    expect(shown.endsWith(`… (${value.length} bytes)`)).toBe(true);
  });

  it('escapes control characters, so that a record cannot drive the terminal', () => {
    expect(readable(Buffer.from('\u001b[31mred\u001b[0m\tok\n'), 100)).toBe('\\u001b[31mred\\u001b[0m\tok\\u000a');
  });

  it('shows bytes that are not UTF-8 as hex, and null as null', () => {
    expect(readable(Buffer.from([0xff, 0x00, 0x10]), 100)).toBe('0xff0010');
    expect(readable(null, 100)).toBeNull();
  });
});
