import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-secrets-'));
const secret = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('secrets from files (<NAME>_FILE)', () => {
  it('reads DATABASE_URL from a mounted file, without its trailing newline, and says where it came from', () => {
    const path = secret('url', 'postgres://sluice:s3cret@db:5432/app\n');
    const { options, sources } = readConfig({ DATABASE_URL_FILE: path, SLUICE_TOPICS: 'orders' });
    expect(options.database.url).toBe('postgres://sluice:s3cret@db:5432/app');
    expect(sources.get('database.url')).toBe('DATABASE_URL_FILE');
  });

  it('refuses both the variable and its file, a file it cannot read, and an empty one, naming the variable', () => {
    const path = secret('url2', 'postgres://a@b/c');
    expect(() => readConfig({ DATABASE_URL: 'postgres://x@y/z', DATABASE_URL_FILE: path })).toThrow(/both DATABASE_URL and DATABASE_URL_FILE are set/);
    expect(() => readConfig({ DATABASE_URL_FILE: join(dir, 'missing') })).toThrow(ConfigError);
    expect(() => readConfig({ DATABASE_URL_FILE: join(dir, 'missing') })).toThrow(/cannot read DATABASE_URL_FILE=.*missing/);
    expect(() => readConfig({ DATABASE_URL_FILE: secret('empty', '\n') })).toThrow(/DATABASE_URL_FILE=.* is empty/);
  });

  it('only secret settings take a file', () => {
    const path = secret('topics', 'orders');
    const { options } = readConfig({ SLUICE_TOPICS_FILE: path });
    expect((options as { landing?: unknown }).landing).toBeUndefined();
  });
});
