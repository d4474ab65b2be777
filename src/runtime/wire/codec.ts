/**
 * protobuf-es (de)serializers for grpc-js, built once per method. grpc-js
 * wants Buffers; wrapping the encoder's Uint8Array avoids a copy.
 *
 * Requests are NOT decoded by grpc-js: the server keeps the raw bytes and
 * decodes them only after the caller is authenticated (decodeRequest), so an
 * unauthenticated peer can neither spend our CPU on decoding nor learn from
 * INVALID_ARGUMENT vs UNAUTHENTICATED which paths and schemas exist.
 */
import { create, fromBinary, isMessage, toBinary, type DescMessage, type DescMethod, type Message, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";

export interface MethodCodec {
  serializeInput(message: unknown): Buffer;
  /** Server side: keeps the bytes as they are (see decodeRequest). */
  deserializeInput(bytes: Buffer): Uint8Array;
  serializeOutput(message: unknown): Buffer;
  deserializeOutput(bytes: Buffer): unknown;
}

const cache = new WeakMap<DescMethod, MethodCodec>();

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Accepts a message or its init shape (handlers may return plain objects). */
export function ensureMessage<D extends DescMessage>(schema: D, value: unknown): MessageShape<D> {
  return isMessage(value, schema) ? (value as MessageShape<D>) : create(schema, value as never);
}

/**
 * Decodes a request message; malformed bytes are INVALID_ARGUMENT with a
 * generic message (parser internals and type names stay on the server).
 */
export function decodeRequest(schema: DescMessage, bytes: Uint8Array): Message {
  try {
    return fromBinary(schema, bytes);
  } catch {
    throw new ConnectError("malformed request message", Code.InvalidArgument);
  }
}

const keepBytes = (b: Buffer): Uint8Array => b;

export function methodCodec(method: DescMethod): MethodCodec {
  let codec = cache.get(method);
  if (codec) return codec;
  const { input, output } = method;
  codec = {
    serializeInput: (m) => toBuffer(toBinary(input, ensureMessage(input, m))),
    deserializeInput: keepBytes,
    serializeOutput: (m) => toBuffer(toBinary(output, ensureMessage(output, m))),
    deserializeOutput: (b) => fromBinary(output, b),
  };
  cache.set(method, codec);
  return codec;
}
