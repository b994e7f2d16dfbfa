/**
 * The Confluent wire format that schema-registry serializers write (Confluent's, Apicurio's in its Confluent mode,
 * Redpanda's): a magic byte 0, the schema id as a 4-byte big-endian integer, then the serialized payload. For
 * Protobuf, the payload starts with the indexes of the message type within the schema's file (see protobuf-json.ts).
 *
 * https://docs.confluent.io/platform/current/schema-registry/fundamentals/serdes-develop/index.html#wire-format
 */
export const wireHeaderBytes = 5;

export interface WireHeader {
  schemaId: number;
  /** Where the payload starts. */
  offset: number;
}

/** The header of a value in the wire format, or why the bytes are not in it. */
export function readWireHeader(bytes: Buffer): WireHeader | string {
  if (bytes.length < wireHeaderBytes) {
    return `${bytes.length} bytes are too few for the schema registry wire format (a magic byte 0 and a 4-byte schema id, then the payload)`;
  }
  if (bytes[0] !== 0) {
    return `not in the schema registry wire format: the first byte is ${bytes[0]}, not the magic byte 0${bytes[0] === 0x7b ? ' (it looks like plain JSON)' : ''}`;
  }
  return { schemaId: bytes.readUInt32BE(1), offset: wireHeaderBytes };
}
