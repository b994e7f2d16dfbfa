import { describe, expect, it } from 'vitest';
import { initialResponse, oauthBearerMechanism } from '../../src/consumer/oauth-bearer.js';

type Exchange = { request: { encode(): Buffer | Promise<Buffer> }; response?: { decode(raw: Buffer): Buffer | Promise<Buffer>; parse(data: Buffer): unknown } };

/** A broker's side of SaslAuthenticate: answers each message the client sends with the next of `answers`. */
function broker(answers: Array<string | Error>) {
  const sent: string[] = [];
  const saslAuthenticate = async ({ request, response }: Exchange) => {
    const bytes = await request.encode();
    expect(bytes.readInt32BE(0)).toBe(bytes.length - 4); // length-prefixed, as kafkajs frames it
    sent.push(bytes.subarray(4).toString('utf8'));
    const answer = answers.shift() ?? '';
    if (answer instanceof Error) throw answer;
    const payload = Buffer.from(answer);
    const framed = Buffer.concat([Buffer.alloc(4), payload]);
    framed.writeInt32BE(payload.length, 0);
    return response!.parse(await response!.decode(framed));
  };
  return { sent, saslAuthenticate };
}

const authenticate = (provider: () => Promise<{ value: string; extensions?: Record<string, string> }>, b: ReturnType<typeof broker>) =>
  oauthBearerMechanism(provider)
    .authenticationProvider({ host: 'kafka', port: 9093, logger: undefined as never, saslAuthenticate: b.saslAuthenticate as never })
    .authenticate();

describe('SASL OAUTHBEARER', () => {
  it("sends RFC 7628's client response, extensions included, and takes an empty answer for success", async () => {
    const b = broker(['']);
    await authenticate(async () => ({ value: 'tok', extensions: { logicalCluster: 'lkc-1', identityPoolId: 'pool-2' } }), b);
    expect(b.sent).toEqual(['n,,\u0001auth=Bearer tok\u0001logicalCluster=lkc-1\u0001identityPoolId=pool-2\u0001\u0001']);
    expect(initialResponse({ value: 'tok' })).toBe('n,,\u0001auth=Bearer tok\u0001\u0001');
  });

  it("acknowledges a refusal and fails with the broker's reason, as an authentication error", async () => {
    const b = broker(['{"status":"invalid_token"}', Object.assign(new Error('{"status":"invalid_token"}'), { type: 'SASL_AUTHENTICATION_FAILED' })]);
    const error = await authenticate(async () => ({ value: 'expired' }), b).catch((e: unknown) => e as Error) as Error;
    expect(b.sent[1]).toBe('\u0001');
    expect(error.name).toBe('KafkaJSSASLAuthenticationError');
    expect(error.message).toBe('SASL OAUTHBEARER authentication with kafka:9093 failed: the broker refused the token (invalid_token)');
  });

  it('a provider that fails is retried like an unreachable broker; its text is bounded and loses URL passwords', async () => {
    const b = broker([]);
    const error = await authenticate(async () => {
      throw new Error(`GET https://client:s3cret@idp.example/token failed: ${'x'.repeat(1_000)}`);
    }, b).catch((e: unknown) => e as Error & { retriable?: boolean }) as Error & { retriable?: boolean };
    expect(error.name).toBe('KafkaJSError');
    expect(error.retriable).toBe(true);
    expect(error.message).not.toContain('s3cret');
    expect(error.message.length).toBeLessThan(400);
    expect(b.sent).toEqual([]);
  });

  it('refuses a missing token and extensions SASL cannot carry, before sending anything', async () => {
    const b = broker([]);
    await expect(authenticate(async () => ({ value: '' }), b)).rejects.toThrow('the token provider gave no token');
    await expect(authenticate(async () => ({ value: 't', extensions: { auth: 'x' } }), b)).rejects.toThrow('the extension name "auth" is not allowed');
    await expect(authenticate(async () => ({ value: 't', extensions: { ok: 'bad\u0001' } }), b)).rejects.toThrow('characters SASL does not allow');
    expect(b.sent).toEqual([]);
  });
});
