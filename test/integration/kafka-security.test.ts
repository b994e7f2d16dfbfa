import { makeCa, signCertificate } from '../helpers/certificates.js';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwnBroker, canRunOwnBroker } from '../helpers/own-broker.js';
import { runCli, spawnSluice } from '../helpers/process.js';
import { testSluice } from '../helpers/sluice.js';
import { KafkaHelper, database, databaseUrl, uniqueName, waitFor } from '../helpers/stack.js';

// A broker of this file's own with four listeners: PLAINTEXT (the test's own admin and producer), the controller, SSL
// requiring a client certificate, and SASL_SSL with PLAIN and SCRAM users. Certificates are made here by openssl.
const port = 29292;
const plaintext = `127.0.0.1:${port}`;
const ssl = `127.0.0.1:${port + 2}`;
const saslSsl = `127.0.0.1:${port + 3}`;
const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-'));
const file = (name: string) => join(dir, name);
const password = 'alice-s3cret-pw';

/** A CA, a broker certificate for 127.0.0.1 and localhost, a client certificate, and a CA that signed neither. */
function makeCertificates(): void {
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  signCertificate(dir, 'broker', 'ca', 'IP:127.0.0.1,DNS:localhost');
  signCertificate(dir, 'client', 'ca');
  // Kafka's PEM keystore: the key, then the certificate chain.
  writeFileSync(file('broker.pem'), ['broker.key', 'broker.crt', 'ca.crt'].map((f) => readFileSync(file(f), 'utf8')).join(''));
  writeFileSync(
    file('server.properties'),
    [
      `listeners=PLAINTEXT://${plaintext},CONTROLLER://127.0.0.1:${port + 1},SSL://${ssl},SASL_SSL://${saslSsl}`,
      `advertised.listeners=PLAINTEXT://${plaintext},SSL://${ssl},SASL_SSL://${saslSsl}`,
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL',
      'ssl.keystore.type=PEM',
      `ssl.keystore.location=${file('broker.pem')}`,
      'ssl.truststore.type=PEM',
      `ssl.truststore.location=${file('ca.crt')}`,
      'listener.name.ssl.ssl.client.auth=required',
      'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER',
      `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="${password}";`,
      'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      // OAUTHBEARER with Kafka's validator of unsecured (unsigned) JWTs: the token's claims are checked, not a signature.
      'listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker";',
      '',
    ].join('\n'),
  );
  writeFileSync(file('password'), `${password}\n`);
}

const broker = new OwnBroker('security', port, {
  SLUICE_KAFKA_EXTRA_CONFIG: file('server.properties'),
  // Made by Kafka's own storage tool when the broker's data is formatted.
  SLUICE_KAFKA_SCRAM_USERS: `SCRAM-SHA-256=[name=alice,password=${password}] SCRAM-SHA-512=[name=alice,password=${password}]`,
});

describe.skipIf(!canRunOwnBroker())('Kafka over TLS and SASL, on a real broker', () => {
  beforeAll(async () => {
    makeCertificates();
    // A broker left running by an earlier, interrupted run has that run's certificates: start afresh.
    await broker.stop();
    await broker.start();
  }, 180_000);
  afterAll(() => broker.stop());

  /** alice over SASL_SSL with SCRAM-SHA-512, her password in `passwordFile`. */
  const scramOverTls = (passwordFile: string) => ({
    KAFKA_BROKERS: saslSsl,
    KAFKA_SSL_CA_FILE: file('ca.crt'),
    KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
    KAFKA_SASL_USERNAME: 'alice',
    KAFKA_SASL_PASSWORD_FILE: passwordFile,
  });

  /** A topic with records, and the environment of a sluice landing it into a table of its own. */
  async function landing(records: number): Promise<{ env: Record<string, string>; rows: () => Promise<number> }> {
    const kafka = await KafkaHelper.connect([plaintext]);
    const topic = await kafka.createTopic(2, 'secure');
    await kafka.produce(topic, Array.from({ length: records }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ i }) })));
    const table = uniqueName('landing');
    const db = await database();
    const env = { DATABASE_URL: databaseUrl(), SLUICE_TOPICS: topic, SLUICE_LANDING_TABLE: table, SLUICE_GROUP_ID: uniqueName('group') };
    return {
      env,
      rows: async () => (await db.query(`SELECT count(*)::int AS n FROM ${table}`).catch(() => ({ rows: [{ n: 0 }] }))).rows[0].n as number,
    };
  }

  it('consumes through TLS with a client certificate (mutual TLS), verifying the broker against the CA file', async () => {
    const { env, rows } = await landing(500);
    const proc = spawnSluice({
      ...env,
      KAFKA_BROKERS: ssl,
      KAFKA_SSL_CA_FILE: file('ca.crt'),
      KAFKA_SSL_CERT_FILE: file('client.crt'),
      KAFKA_SSL_KEY_FILE: file('client.key'),
    });
    await waitFor('500 rows landed through TLS', async () => (await rows()) === 500, { timeoutMs: 60_000 });
    proc.child.kill('SIGTERM');
    expect((await proc.exited).code).toBe(0);
  });

  it('consumes through SASL_SSL with SCRAM-SHA-512 and a password file; PLAIN and SCRAM-SHA-256 authenticate too', async () => {
    const { env, rows } = await landing(500);
    const proc = spawnSluice({ ...env, ...scramOverTls(file('password')) });
    await waitFor('500 rows landed through SASL_SSL', async () => (await rows()) === 500, { timeoutMs: 60_000 });
    proc.child.kill('SIGTERM');
    expect((await proc.exited).code).toBe(0);
    expect(JSON.stringify(proc.logs) + proc.stderr()).not.toContain(password);
    for (const mechanism of ['PLAIN', 'SCRAM-SHA-256']) {
      const checked = await runCli(['check'], {
        ...env,
        KAFKA_BROKERS: saslSsl,
        KAFKA_SSL_CA_FILE: file('ca.crt'),
        KAFKA_SASL_MECHANISM: mechanism,
        KAFKA_SASL_USERNAME: 'alice',
        KAFKA_SASL_PASSWORD: password,
      });
      expect(checked.stdout, mechanism).toMatch(/Kafka {10}127\.0\.0\.1:\d+: reachable/);
    }
  });

  it('a rotated SASL password file is used from the next connection on, without a restart', async () => {
    const { env, rows } = await landing(100);
    const passwordFile = file('rotating-password');
    writeFileSync(passwordFile, `${password}\n`);
    const proc = spawnSluice({ ...env, ...scramOverTls(passwordFile) }, join(process.cwd(), '.local/test-logs/rotation.log'));
    await waitFor('100 rows with the first password', async () => (await rows()) === 100, { timeoutMs: 60_000 });

    // The rotation, as an operator (or Strimzi) does it: the broker's credential with Kafka's own tool, then the file.
    const rotated = 'alice-rotated-pw-2';
    await broker.tool('kafka.admin.ConfigCommand', '--bootstrap-server', plaintext, '--alter', '--entity-type', 'users', '--entity-name', 'alice', '--add-config', `SCRAM-SHA-512=[password=${rotated}]`);
    writeFileSync(passwordFile, `${rotated}\n`);
    // Every connection new: the broker restarted, sluice (still the same process) connects again.
    await broker.stop();
    await broker.start();
    const kafka = await KafkaHelper.connect([plaintext]);
    await kafka.produce(env.SLUICE_TOPICS!, Array.from({ length: 100 }, (_, i) => ({ key: `r${i}`, value: JSON.stringify({ i }) })));
    await waitFor('100 more rows with the rotated password', async () => (await rows()) === 200, { timeoutMs: 120_000 });
    expect(proc.child.exitCode).toBeNull(); // never restarted
    proc.child.kill('SIGTERM');
    expect((await proc.exited).code).toBe(0);
    // It ended because nothing was left open, not because the last resort after shutdown cut it short.
    expect(proc.logs.map((line) => line.msg)).not.toContain('sluice has stopped, but something still holds the process open: exiting anyway');
    expect(JSON.stringify(proc.logs) + proc.stderr()).not.toContain(rotated);
  });

  /** An unsigned JWT (`alg: none`) as Kafka's unsecured OAUTHBEARER validator accepts it, valid from now for `lifetimeS`. */
  function unsecuredJwt(sub: string, lifetimeS: number): string {
    const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    return `${part({ alg: 'none' })}.${part({ sub, iat: now, exp: now + lifetimeS })}.`;
  }

  it('consumes through SASL_SSL with OAUTHBEARER and a token provider given as a library option', async () => {
    const { env, rows } = await landing(300);
    let tokensAsked = 0;
    const { sluice } = testSluice({
      routes: [],
      landing: { topics: [env.SLUICE_TOPICS!], table: env.SLUICE_LANDING_TABLE! },
      kafka: {
        brokers: [saslSsl],
        ssl: { caFile: file('ca.crt') },
        sasl: {
          mechanism: 'oauthbearer',
          oauthBearerProvider: async () => {
            tokensAsked++;
            return { value: unsecuredJwt('alice', 3600) };
          },
        },
      },
    });
    await sluice.start();
    await waitFor('300 rows landed through OAUTHBEARER', async () => (await rows()) === 300, { timeoutMs: 60_000 });
    expect(tokensAsked).toBeGreaterThan(0); // every connection authenticated with a token of the provider's
    await sluice.stop();

    // An expired token is refused by the broker, and sluice says where to look.
    const expired = testSluice({
      routes: [],
      landing: { topics: [env.SLUICE_TOPICS!], table: env.SLUICE_LANDING_TABLE! },
      kafka: {
        brokers: [saslSsl],
        ssl: { caFile: file('ca.crt') },
        retryBackoffMaxMs: 500,
        sasl: { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: unsecuredJwt('alice', -60) }) },
      },
    });
    const started = expired.sluice.start();
    // Retried (a provider may have a fresh token next time), and reported with the broker's reason, not as a broker
    // that cannot be reached.
    await waitFor('the refusal reported', () =>
      expired.logs.some((line) => JSON.stringify(line).includes('SASL OAUTHBEARER authentication with 127.0.0.1:29295 failed: the broker refused the token (invalid_token)')),
    );
    expect(JSON.stringify(expired.logs)).toContain("check the SASL user and password (or token) in sluice's Kafka settings");
    // Asked again, not given up on at the first refusal.
    await waitFor('a second attempt', () => expired.logs.filter((line) => typeof line.attempt === 'number' && line.attempt >= 2).length > 0);
    expect(JSON.stringify(expired.logs)).not.toContain('No brokers in the broker pool');
    await expired.sluice.stop();
    await started.catch(() => undefined);
  });

  it('refuses a broker signed by another CA, a wrong password, and a plaintext client on the TLS port, saying which', async () => {
    const { env } = await landing(1);
    const check = async (extra: Record<string, string>) => runCli(['check'], { ...env, SLUICE_KAFKA_RETRY_BACKOFF_MAX_MS: '500', ...extra });

    const wrongCa = await check({ KAFKA_BROKERS: saslSsl, KAFKA_SSL_CA_FILE: file('other-ca.crt'), KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'alice', KAFKA_SASL_PASSWORD: password });
    expect(wrongCa.code).toBe(1);
    expect(wrongCa.stdout).toContain("the brokers' TLS certificate is not signed by a CA sluice trusts: set kafka.ssl.caFile (KAFKA_SSL_CA_FILE)");

    const wrongPassword = await check({ KAFKA_BROKERS: saslSsl, KAFKA_SSL_CA_FILE: file('ca.crt'), KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_SASL_USERNAME: 'alice', KAFKA_SASL_PASSWORD: 'not-it' });
    expect(wrongPassword.code).toBe(1);
    expect(wrongPassword.stdout).toContain('check the SASL user and password');
    expect(wrongPassword.stdout + wrongPassword.stderr).not.toContain('not-it');

    const plaintextOnTls = await check({ KAFKA_BROKERS: ssl });
    expect(plaintextOnTls.code).toBe(1);
    expect(plaintextOnTls.stdout).toContain('if its listener expects TLS, set KAFKA_SSL=true');

    const noClientCertificate = await check({ KAFKA_BROKERS: ssl, KAFKA_SSL_CA_FILE: file('ca.crt') });
    expect(noClientCertificate.code).toBe(1);
    expect(noClientCertificate.stdout).toContain('set kafka.ssl.certFile and keyFile (KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE)');

    const tlsWithoutSasl = await check({ KAFKA_BROKERS: saslSsl, KAFKA_SSL_CA_FILE: file('ca.crt') });
    expect(tlsWithoutSasl.code).toBe(1);
    expect(tlsWithoutSasl.stdout).toContain('if its listener expects SASL, set KAFKA_SASL_MECHANISM');
  });
});
