import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { makeCa, signCertificate } from '../helpers/certificates.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnSluice } from '../helpers/process.js';
import { KafkaHelper, brokers, database, databaseUrl, uniqueName, waitFor } from '../helpers/stack.js';

// TLS on the local PostgreSQL, switched on by this test with certificates made by openssl, and off again after.
// The server must read the key, so the files go where its user can, owned by it: this needs root (CI runs as root).
const dir = '/var/lib/postgresql/sluice-test-tls';
const isRoot = process.getuid?.() === 0;
const localServer = /@(127\.0\.0\.1|localhost)(:5432)?\//.test(databaseUrl());

/** A connection of the hooks' own (the helpers' are closed at the end of a test). */
async function admin<T>(fn: (db: pg.Client) => Promise<T>): Promise<T> {
  const db = new pg.Client({ connectionString: databaseUrl() });
  await db.connect();
  try {
    return await fn(db);
  } finally {
    await db.end();
  }
}

/** The test database's URL with libpq's TLS parameters (node-postgres reads sslmode and sslrootcert the same way). */
function tlsUrl(params: Record<string, string>): string {
  const url = new URL(databaseUrl());
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.toString();
}

describe.skipIf(!isRoot || !localServer)('PostgreSQL over TLS, on the local server', () => {
  beforeAll(async () => {
    mkdirSync(dir, { recursive: true });
    makeCa(dir, 'ca');
    makeCa(dir, 'other-ca');
    signCertificate(dir, 'server', 'ca', 'IP:127.0.0.1,DNS:localhost');
    const idOf = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    const [uid, gid] = [idOf('-u'), idOf('-g')];
    for (const f of ['server.crt', 'server.key']) chownSync(join(dir, f), uid, gid);
    chmodSync(join(dir, 'server.key'), 0o600);
    await admin(async (db) => {
      await db.query(`ALTER SYSTEM SET ssl_cert_file = '${dir}/server.crt'`);
      await db.query(`ALTER SYSTEM SET ssl_key_file = '${dir}/server.key'`);
      await db.query('ALTER SYSTEM SET ssl = on');
      await db.query('SELECT pg_reload_conf()');
    });
    await waitFor('the server to take TLS', () => admin(async (db) => (await db.query('SHOW ssl')).rows[0].ssl === 'on'));
  });

  afterAll(() =>
    admin(async (db) => {
      await db.query('ALTER SYSTEM RESET ssl');
      await db.query('ALTER SYSTEM RESET ssl_cert_file');
      await db.query('ALTER SYSTEM RESET ssl_key_file');
      await db.query('SELECT pg_reload_conf()');
    }),
  );

  it('sslmode=verify-full with the CA: sluice writes over TLS; another CA is refused, and check says so', async () => {
    const kafka = await KafkaHelper.connect();
    const topic = await kafka.createTopic(1, 'tls');
    await kafka.produce(topic, Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ i }) })));
    const table = uniqueName('landing');
    const groupId = uniqueName('group');
    const env = { KAFKA_BROKERS: brokers().join(','), SLUICE_TOPICS: topic, SLUICE_LANDING_TABLE: table, SLUICE_GROUP_ID: groupId };
    const good = tlsUrl({ sslmode: 'verify-full', sslrootcert: join(dir, 'ca.crt') });

    const checked = await runCli(['check'], { ...env, DATABASE_URL: good });
    expect(checked.code, checked.stdout).toBe(0);

    const proc = spawnSluice({ ...env, DATABASE_URL: good });
    const db = await database();
    await waitFor('100 rows written over TLS', async () => (await db.query(`SELECT count(*)::int AS n FROM ${table}`).catch(() => ({ rows: [{ n: 0 }] }))).rows[0].n === 100);
    // Every connection sluice holds is encrypted.
    const sessions = await db.query(`SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1`, [`sluice ${groupId}`]);
    expect(sessions.rows.length).toBeGreaterThan(0);
    expect(sessions.rows.every((r: { ssl: boolean }) => r.ssl)).toBe(true);
    proc.child.kill('SIGTERM');
    expect((await proc.exited).code).toBe(0);

    const refused = await runCli(['check'], { ...env, DATABASE_URL: tlsUrl({ sslmode: 'verify-full', sslrootcert: join(dir, 'other-ca.crt') }) });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain("the server's TLS certificate is not signed by the CA in the database URL's sslrootcert");
  });
});
