import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SchemaRegistryError, isRetriable, operatorFixOf } from '../../src/errors.js';
import { SchemaRegistryClient } from '../../src/formats/schema-registry.js';

/**
 * How the client tells the registry's answers apart: an HTTP peer that answers what a registry (or a proxy in front
 * of one) can answer. The formats' integration test runs against a real registry; this covers the answers that one
 * does not give on demand (refused credentials, server errors, a wrong base URL, a hung request).
 */
let base = '';
let lagging = 0;
const seen: Array<{ url: string; authorization: string | undefined }> = [];
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
  const json = (status: number, body: unknown) => res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  const url = req.url ?? '';
  if (url === '/api/schemas/ids/1') return json(200, { schema: '{"type":"string"}' });
  if (url === '/api/schemas/ids/2') return json(200, { schemaType: 'PROTOBUF', schema: 'import "dep.proto";', references: [{ name: 'dep.proto', subject: 'dep', version: 3 }] });
  if (url === '/api/subjects/dep/versions/3') return json(200, { schemaType: 'PROTOBUF', schema: 'message Dep {}' });
  if (url === '/api/schemas/ids/404') return json(404, { error_code: 40403, message: 'Schema 404 not found' });
  if (url === '/api/schemas/ids/405') {
    // Not there at first, as on a registry replica that has not caught up yet.
    lagging++;
    return lagging === 1 ? json(404, { error_code: 40403, message: 'not yet' }) : json(200, { schema: '"long"' });
  }
  if (url === '/api/schemas/ids/3') return json(200, { schemaType: 'PROTOBUF', schema: 'x', references: [{ name: 'gone.proto', subject: 'gone', version: 1 }] });
  if (url === '/api/schemas/ids/4') return json(200, { schemaType: 'XML', schema: '<x/>' });
  if (url === '/api/subjects/gone/versions/1') return json(404, { error_code: 40402, message: 'Version not found' });
  if (url === '/api/schemas/ids/401') return json(401, { error_code: 40101, message: 'Unauthorized' });
  if (url === '/api/schemas/ids/500') return json(500, { error_code: 50001, message: 'store down' });
  if (url === '/api/schemas/ids/9') return; // never answers
  res.writeHead(404, { 'Content-Type': 'text/html' }).end('<html>Not Found</html>');
});

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const client = (over: Partial<ConstructorParameters<typeof SchemaRegistryClient>[0]> = {}) =>
  new SchemaRegistryClient({ url: `${base}/api`, requestTimeoutMs: 500, ...over });

async function failure(promise: Promise<unknown>): Promise<SchemaRegistryError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SchemaRegistryError) return error;
    throw error;
  }
  throw new Error('expected a SchemaRegistryError');
}

describe('schema registry client', () => {
  it('a schema by id, Avro when no type is given, with its references followed, and each id asked for once', async () => {
    const c = client();
    expect(await c.schemaById(1)).toEqual({ type: 'AVRO', text: '{"type":"string"}', references: [] });
    await c.schemaById(1);
    expect(seen.filter((s) => s.url === '/api/schemas/ids/1')).toHaveLength(1);
    expect(await c.schemaById(2)).toEqual({
      type: 'PROTOBUF',
      text: 'import "dep.proto";',
      references: [{ name: 'dep.proto', schema: { type: 'PROTOBUF', text: 'message Dep {}', references: [] } }],
    });
  });

  it('a schema that cannot be read is answered with the reason (its records are poison), asked again by the next batch', async () => {
    const c = client();
    expect(await c.schemaById(404)).toBe('schema id 404 is not in the schema registry');
    expect(seen.filter((s) => s.url === '/api/schemas/ids/404')).toHaveLength(2); // asked twice, half a second apart
    await c.schemaById(404);
    expect(seen.filter((s) => s.url === '/api/schemas/ids/404')).toHaveLength(4); // not remembered
    expect(await c.schemaById(405)).toEqual({ type: 'AVRO', text: '"long"', references: [] }); // found when asked again
    expect(await c.schemaById(3)).toBe('schema id 3 references gone.proto (subject gone version 1), which the schema registry does not have');
    expect(await c.schemaById(4)).toBe('schema id 4 is a XML schema, which sluice does not read');
  });

  it('refused credentials, a server error, a hung request, a wrong base URL and no registry at all are retriable, never poison', async () => {
    const refused = await failure(client().schemaById(401));
    expect(refused.status).toBe(401);
    expect(operatorFixOf(refused)).toMatch(/schemaRegistry.username and password/);
    expect(isRetriable(await failure(client().schemaById(500)))).toBe(true);
    expect((await failure(client().schemaById(9))).message).toMatch(/did not answer \/schemas\/ids\/9 within schemaRegistry.requestTimeoutMs=500/);
    const wrongBase = await failure(client({ url: base }).schemaById(1));
    expect(operatorFixOf(wrongBase)).toMatch(/check schemaRegistry.url/);
    expect(isRetriable(wrongBase)).toBe(true);
    const away = await failure(client({ url: 'http://127.0.0.1:1/api' }).schemaById(1));
    expect(away.message).toMatch(/cannot be reached/);
    expect(isRetriable(away)).toBe(true);
  });

  it('basic auth from the URL or from a password file read at each request, or a bearer token; the URL shown without its password', async () => {
    seen.length = 0;
    await client({ url: `http://u%40x:s3cret@127.0.0.1:${base.split(':')[2]}/api` }).schemaById(1);
    expect(seen[0]!.authorization).toBe(`Basic ${Buffer.from('u@x:s3cret').toString('base64')}`);
    const dir = mkdtempSync(join(tmpdir(), 'sluice-registry-'));
    const file = join(dir, 'password');
    writeFileSync(file, 'first\n');
    const c = client({ username: 'alice', passwordFile: file });
    await c.schemaById(1);
    writeFileSync(file, 'rotated\n');
    await c.schemaById(2);
    expect(seen.slice(1).map((s) => s.authorization)).toEqual([
      `Basic ${Buffer.from('alice:first').toString('base64')}`,
      `Basic ${Buffer.from('alice:rotated').toString('base64')}`,
      `Basic ${Buffer.from('alice:rotated').toString('base64')}`,
    ]);
    seen.length = 0;
    await client({ token: 't0k' }).schemaById(1);
    expect(seen[0]!.authorization).toBe('Bearer t0k');
    const shown = await failure(client({ url: `http://u:s3cret@127.0.0.1:${base.split(':')[2]}/nope` }).schemaById(1));
    expect(shown.message).not.toContain('s3cret');
  });
});
