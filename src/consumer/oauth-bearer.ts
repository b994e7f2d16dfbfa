/**
 * SASL OAUTHBEARER (RFC 7628, as Kafka speaks it), given to kafkajs as its own authentication provider.
 *
 * kafkajs' built-in OAUTHBEARER sends the token and takes any answer for success. A broker that refuses the token
 * answers with a JSON error (`{"status":"invalid_token"}`) and waits for the client to acknowledge it; kafkajs goes
 * on as if authenticated, the broker drops the connection, and all anyone sees is "No brokers in the broker pool".
 * This one reads the answer, acknowledges a refusal as the RFC asks, and fails with the broker's reason.
 *
 * A token provider that fails (the identity provider unreachable) is a transient condition, retried like an
 * unreachable broker; a token the broker refuses is one an operator must look at.
 */
import kafkajs, { type Mechanism } from 'kafkajs';
import type { OauthBearerToken } from '../config/options.js';
import { errorMessage } from '../errors.js';

// kafkajs' error classes (their typings omit the constructor's arguments). An authentication error is one no waiting
// fixes (sluice's hints name the token); kafkajs' base error with `retriable` is retried like a connection error.
const KafkaJSSASLAuthenticationError = kafkajs.KafkaJSSASLAuthenticationError as unknown as new (message: string, options?: { cause?: unknown }) => Error;
const KafkaJSError = kafkajs.KafkaJSError as unknown as new (message: string, options: { retriable: boolean; cause?: unknown }) => Error;

const SOH = '\u0001';

/** RFC 7628's extension keys (letters) and values (printable ASCII, spaces and tabs, CR and LF). */
const extensionKey = /^[A-Za-z]+$/;
const extensionValue = /^[\x21-\x7E \t\r\n]*$/;

/** Text from elsewhere (a provider's error, a broker's answer), bounded and without credentials in URLs. */
function quoted(text: string): string {
  const clean = text.replace(/(\/\/[^/\s:@]+:)[^@\s/]+@/g, '$1***@');
  return clean.length > 300 ? `${clean.slice(0, 300)}…` : clean;
}

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
  decode: async (raw: Buffer) => raw,
  parse: (raw: Buffer): string => {
    if (raw.length < 4) return '';
    const length = raw.readInt32BE(0);
    return length <= 0 ? '' : raw.subarray(4, 4 + length).toString('utf8');
  },
};

/** The client's first message: the GS2 header, the token, and the token's extensions. */
export function initialResponse(token: OauthBearerToken): string {
  const extensions = Object.entries(token.extensions ?? {}).map(([key, value]) => {
    if (!extensionKey.test(key) || key === 'auth') throw new Error(`the extension name ${JSON.stringify(key)} is not allowed (letters only, not "auth")`);
    if (!extensionValue.test(value)) throw new Error(`the value of extension ${key} has characters SASL does not allow`);
    return `${key}=${value}${SOH}`;
  });
  return `n,,${SOH}auth=Bearer ${token.value}${SOH}${extensions.join('')}${SOH}`;
}

/** The broker's error answer (`{"status":"invalid_token","scope":...}`) in words. */
function refusal(challenge: string): string {
  try {
    const { status, scope } = JSON.parse(challenge) as { status?: unknown; scope?: unknown };
    if (typeof status === 'string') return `the broker refused the token (${quoted(status)}${typeof scope === 'string' ? `, scope ${quoted(scope)}` : ''})`;
  } catch {
    // Not the JSON the RFC describes: quoted as it came.
  }
  return `the broker refused the token: ${quoted(challenge)}`;
}

/** kafkajs' SASL authenticator for OAUTHBEARER, asking `provider` for a token at every authentication. */
export function oauthBearerMechanism(provider: () => Promise<OauthBearerToken>): Mechanism {
  return {
    mechanism: 'oauthbearer',
    authenticationProvider: ({ host, port, saslAuthenticate }) => ({
      authenticate: async () => {
        const broker = `${host}:${port}`;
        const failed = (reason: string, cause?: unknown) =>
          new KafkaJSSASLAuthenticationError(`SASL OAUTHBEARER authentication with ${broker} failed: ${reason}`, { cause });
        let token: OauthBearerToken;
        try {
          token = await provider();
        } catch (error) {
          throw new KafkaJSError(`SASL OAUTHBEARER: the token provider failed: ${quoted(errorMessage(error))}`, { retriable: true, cause: error });
        }
        if (typeof token?.value !== 'string' || token.value === '') throw failed('the token provider gave no token (an object with a `value`)');
        let message: string;
        try {
          message = initialResponse(token);
        } catch (error) {
          throw failed(errorMessage(error));
        }
        let challenge: string;
        try {
          challenge = (await saslAuthenticate({ request: saslBytes(message), response: answer })) ?? '';
        } catch (error) {
          // Refused outright (SaslAuthenticate's error code): said as a refusal; a lost connection stays what it is.
          const type = (error as { type?: unknown }).type;
          if (type === 'SASL_AUTHENTICATION_FAILED' || type === 'ILLEGAL_SASL_STATE') throw failed(quoted(errorMessage(error)), error);
          throw error;
        }
        if (challenge === '') return; // accepted
        // Refused: the answer is the error's JSON; the broker's reason comes once the client acknowledges it.
        let reason = refusal(challenge);
        try {
          await saslAuthenticate({ request: saslBytes(SOH), response: answer });
        } catch (error) {
          const detail = errorMessage(error);
          if (!detail.includes(challenge)) reason = `${reason}: ${quoted(detail)}`;
        }
        throw failed(reason);
      },
    }),
  };
}
