/**
 * A deliberately minimal HTTP/2 client for the adversarial suite: it speaks
 * just enough of RFC 9113 / RFC 7541 to send request headers that Node's own
 * http2 client refuses to emit, such as two `authorization` header fields on
 * one request (ERR_HTTP2_HEADER_SINGLE_VALUE). HPACK is written as literal
 * fields without indexing and without Huffman, so no encoder state is needed.
 * The response is not decoded (that would need a Huffman/HPACK decoder); the
 * caller learns the outcome from what the server did (handler, log line) and
 * from how the stream ended.
 */
import * as tls from "node:tls";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PING = 0x6;
const GOAWAY = 0x7;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const ACK = 0x1;

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** RFC 7541 section 5.1 integer with an N-bit prefix (first-byte high bits zero). */
function hpackInt(value: number, prefixBits: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([value]);
  const out = [max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, "latin1");
  return Buffer.concat([hpackInt(bytes.length, 7), bytes]);
}

/** Literal header field without indexing, new name (RFC 7541 section 6.2.2), for every pair. */
export function hpackLiteral(headers: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.concat(headers.flatMap(([name, value]) => [Buffer.from([0x00]), hpackString(name), hpackString(value)]));
}

export interface RawH2Outcome {
  /** The server answered the stream with HEADERS carrying END_STREAM (a gRPC trailers block). */
  readonly endedWithTrailers: boolean;
  /** RST_STREAM error code, if the server reset the stream. */
  readonly rstCode: number | undefined;
  /** GOAWAY error code, if the server sent one. */
  readonly goawayCode: number | undefined;
  /** Bytes of DATA the server sent on the stream (a response message). */
  readonly dataBytes: number;
}

/**
 * Opens an mTLS connection, sends one gRPC unary request on stream 1 with
 * exactly the given header fields (pseudo-headers first), and resolves when
 * the server ends or resets the stream, or after timeoutMs.
 */
export function rawGrpcUnary(opts: {
  port: number;
  ca: string;
  cert: string;
  key: string;
  headers: ReadonlyArray<readonly [string, string]>;
  /** Serialized protobuf request (without the gRPC 5-byte prefix). */
  message: Uint8Array;
  timeoutMs: number;
  /** "grpc" (default) adds the 5-byte message prefix; "none" sends the bytes as they are (Connect unary). */
  framing?: "grpc" | "none";
}): Promise<RawH2Outcome> {
  return new Promise((resolve, reject) => {
    let endedWithTrailers = false;
    let rstCode: number | undefined;
    let goawayCode: number | undefined;
    let dataBytes = 0;
    let buffered = Buffer.alloc(0);
    let done = false;

    const socket = tls.connect({
      host: "127.0.0.1",
      port: opts.port,
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
      ALPNProtocols: ["h2"],
      checkServerIdentity: () => undefined,
    });
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve({ endedWithTrailers, rstCode, goawayCode, dataBytes });
    };
    const timer = setTimeout(() => finish(), opts.timeoutMs);
    socket.on("error", (err) => finish(err));
    socket.on("close", () => finish());
    socket.on("secureConnect", () => {
      if (socket.alpnProtocol !== "h2") return finish(new Error(`ALPN negotiated ${String(socket.alpnProtocol)}, not h2`));
      let grpcMessage = Buffer.from(opts.message);
      if ((opts.framing ?? "grpc") === "grpc") {
        grpcMessage = Buffer.alloc(5 + opts.message.length);
        grpcMessage.writeUInt8(0, 0);
        grpcMessage.writeUInt32BE(opts.message.length, 1);
        Buffer.from(opts.message).copy(grpcMessage, 5);
      }
      socket.write(
        Buffer.concat([
          PREFACE,
          frame(SETTINGS, 0, 0, Buffer.alloc(0)),
          frame(HEADERS, END_HEADERS, 1, hpackLiteral(opts.headers)),
          frame(DATA, END_STREAM, 1, grpcMessage),
        ]),
      );
    });
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 9) {
        const length = buffered.readUIntBE(0, 3);
        if (buffered.length < 9 + length) break;
        const type = buffered.readUInt8(3);
        const flags = buffered.readUInt8(4);
        const streamId = buffered.readUInt32BE(5) & 0x7fffffff;
        const payload = buffered.subarray(9, 9 + length);
        buffered = buffered.subarray(9 + length);
        if (type === SETTINGS && !(flags & ACK)) socket.write(frame(SETTINGS, ACK, 0, Buffer.alloc(0)));
        else if (type === PING && !(flags & ACK)) socket.write(frame(PING, ACK, 0, payload));
        else if (type === DATA && streamId === 1) dataBytes += length;
        else if (type === HEADERS && streamId === 1 && flags & END_STREAM) {
          endedWithTrailers = true;
          finish();
        } else if (type === RST_STREAM && streamId === 1) {
          rstCode = payload.readUInt32BE(0);
          finish();
        } else if (type === GOAWAY) {
          goawayCode = payload.readUInt32BE(4);
        }
      }
    });
  });
}

export interface RawStreamsOutcome {
  /** SETTINGS_MAX_CONCURRENT_STREAMS the server advertised (undefined: not sent, i.e. unlimited). */
  readonly advertisedMaxStreams: number | undefined;
  /** Streams the server reset, with the RST_STREAM error code. */
  readonly reset: ReadonlyMap<number, number>;
  /** GOAWAY error code, if the server ended the connection. */
  readonly goawayCode: number | undefined;
}

/**
 * Opens `count` request streams on one mTLS connection, each with the given
 * headers and no END_STREAM (bodies never finish), ignoring the server's
 * stream limit (acknowledging its SETTINGS first, as a real client would),
 * and reports after waitMs what the server reset.
 */
export function rawOpenStreams(opts: {
  port: number;
  ca: string;
  cert: string;
  key: string;
  headers: ReadonlyArray<readonly [string, string]>;
  count: number;
  waitMs: number;
}): Promise<RawStreamsOutcome> {
  return new Promise((resolve, reject) => {
    let advertisedMaxStreams: number | undefined;
    const reset = new Map<number, number>();
    let goawayCode: number | undefined;
    let buffered = Buffer.alloc(0);
    let sent = false;
    const socket = tls.connect({
      host: "127.0.0.1",
      port: opts.port,
      ca: opts.ca,
      cert: opts.cert,
      key: opts.key,
      ALPNProtocols: ["h2"],
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ advertisedMaxStreams, reset, goawayCode });
    }, opts.waitMs);
    socket.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on("secureConnect", () => socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0, Buffer.alloc(0))])));
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 9) {
        const length = buffered.readUIntBE(0, 3);
        if (buffered.length < 9 + length) break;
        const type = buffered.readUInt8(3);
        const flags = buffered.readUInt8(4);
        const streamId = buffered.readUInt32BE(5) & 0x7fffffff;
        const payload = buffered.subarray(9, 9 + length);
        buffered = buffered.subarray(9 + length);
        if (type === SETTINGS && !(flags & ACK)) {
          for (let i = 0; i + 6 <= payload.length; i += 6) {
            if (payload.readUInt16BE(i) === 0x3) advertisedMaxStreams = payload.readUInt32BE(i + 2);
          }
          socket.write(frame(SETTINGS, ACK, 0, Buffer.alloc(0)));
          if (!sent) {
            sent = true;
            const block = hpackLiteral(opts.headers);
            const frames: Buffer[] = [];
            for (let i = 0; i < opts.count; i++) frames.push(frame(HEADERS, END_HEADERS, 1 + 2 * i, block));
            socket.write(Buffer.concat(frames));
          }
        } else if (type === PING && !(flags & ACK)) socket.write(frame(PING, ACK, 0, payload));
        else if (type === RST_STREAM) reset.set(streamId, payload.readUInt32BE(0));
        else if (type === GOAWAY) goawayCode = payload.readUInt32BE(4);
      }
    });
  });
}
