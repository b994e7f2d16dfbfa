/**
 * SASL OAUTHBEARER (RFC 7628, as Kafka speaks it), given to kafkajs as its own authentication provider.
 *
 * kafkajs' built-in OAUTHBEARER sends the token and takes any answer for success. A broker that refuses the token
 * answers with a JSON error (`{"status":"invalid_token"}`) and waits for the client to acknowledge it; kafkajs goes
 * on as if authenticated, the broker drops the connection, and all anyone sees is "No brokers in the broker pool".
 * This one reads the answer, acknowledges a refusal as the RFC asks, and fails with the broker's reason.
 */
import kafkajs, { type Mechanism } from 'kafkajs';
import type { OauthBearerToken } from '../config/options.js';
import { errorMessage } from '../errors.js';

// kafkajs' error class (its typings omit the message argument): kafkajs and sluice's hints know it as an
// authentication failure, not a broker that cannot be reached.
const KafkaJSSASLAuthenticationError = kafkajs.KafkaJSSASLAuthenticationError as unknown as new (message: string) => Error;
const SOH = '\u0001';

/** A SASL message as kafkajs' SaslAuthenticate request carries it: length-prefixed bytes. */
function saslBytes(text: string): { encode: () => Buffer } {
  const payload = Buffer.from(text, 'utf8');
  const framed = Buffer.alloc(4 + payload.length);
  framed.writeInt32BE(payload.length, 0);
  payload.copy(framed, 4);
  return { encode: () => framed };
}

/** The broker's answer (length-prefixed as kafkajs hands it over), as text; empty when it said nothing. */
const answer = {
  decode: (raw: Buffer) => raw,
  parse: (raw: Buffer): string => {
    if (raw.length < 4) return '';
    const length = raw.readInt32BE(0);
    return length <= 0 ? '' : raw.subarray(4, 4 + length).toString('utf8');
  },
};

/** The broker's error answer (`{"status":"invalid_token","scope":...}`) in words. */
function refusal(challenge: string): string {
  try {
    const { status, scope } = JSON.parse(challenge) as { status?: unknown; scope?: unknown };
    if (typeof status === 'string') return `the broker refused the token (${status}${typeof scope === 'string' ? `, scope ${scope}` : ''})`;
  } catch {
    // Not the JSON the RFC describes: quoted as it came.
  }
  return `the broker refused the token: ${challenge}`;
}

/** The client's first message: the GS2 header, the token, no extensions. */
const initialResponse = (token: string) => `n,,${SOH}auth=Bearer ${token}${SOH}${SOH}`;

export function oauthBearerMechanism(provider: () => Promise<OauthBearerToken>): Mechanism {
  return {
    mechanism: 'oauthbearer',
    authenticationProvider: ({ host, port, saslAuthenticate }) => ({
      authenticate: async () => {
        const broker = `${host}:${port}`;
        let token: OauthBearerToken;
        try {
          token = await provider();
        } catch (error) {
          throw new KafkaJSSASLAuthenticationError(`SASL OAUTHBEARER: the token provider failed: ${errorMessage(error)}`);
        }
        if (typeof token?.value !== 'string' || token.value === '') {
          throw new KafkaJSSASLAuthenticationError('SASL OAUTHBEARER: the token provider gave no token (an object with a `value`)');
        }
        const challenge = (await saslAuthenticate({ request: saslBytes(initialResponse(token.value)), response: answer })) ?? '';
        if (challenge === '') return; // accepted
        // Refused: the answer is the error's JSON; the broker's reason comes once the client acknowledges it.
        let reason = refusal(challenge);
        try {
          await saslAuthenticate({ request: saslBytes(SOH), response: answer });
        } catch (error) {
          const detail = errorMessage(error);
          if (!detail.includes(challenge)) reason = `${reason}: ${detail}`;
        }
        throw new KafkaJSSASLAuthenticationError(`SASL OAUTHBEARER authentication with ${broker} failed: ${reason}`);
      },
    }),
  };
}
