/**
 * protobuf-es (de)serializers for grpc-js, built once per method. grpc-js
 * wants Buffers; wrapping the encoder's Uint8Array avoids a copy.
 */
import { create, fromBinary, isMessage, toBinary, type DescMessage, type DescMethod, type MessageShape } from "@bufbuild/protobuf";

export interface MethodCodec {
  serializeInput(message: unknown): Buffer;
  deserializeInput(bytes: Buffer): unknown;
  serializeOutput(message: unknown): Buffer;
  deserializeOutput(bytes: Buffer): unknown;
}

/** Marks a request that failed to decode, so the server can answer INVALID_ARGUMENT. */
export class DecodeFailure {
  constructor(readonly cause: unknown) {}
}

const cache = new WeakMap<DescMethod, MethodCodec>();

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Accepts a message or its init shape (handlers may return plain objects). */
export function ensureMessage<D extends DescMessage>(schema: D, value: unknown): MessageShape<D> {
  return isMessage(value, schema) ? (value as MessageShape<D>) : create(schema, value as never);
}

export function methodCodec(method: DescMethod): MethodCodec {
  let codec = cache.get(method);
  if (codec) return codec;
  const { input, output } = method;
  codec = {
    serializeInput: (m) => toBuffer(toBinary(input, ensureMessage(input, m))),
    deserializeInput: (b) => {
      try {
        return fromBinary(input, b);
      } catch (e) {
        return new DecodeFailure(e);
      }
    },
    serializeOutput: (m) => toBuffer(toBinary(output, ensureMessage(output, m))),
    deserializeOutput: (b) => fromBinary(output, b),
  };
  cache.set(method, codec);
  return codec;
}
