/**
 * What a client that forgot TLS gets on our mTLS ports (grpcurl -plaintext,
 * curl http://), instead of a silent close it would retry until its timeout:
 *
 * - HTTP/2 (gRPC): a minimal HTTP/2 exchange. Our SETTINGS, then every stream
 *   the client opens is answered at once with a trailers-only gRPC response,
 *   grpc-status UNAUTHENTICATED, grpc-message "TLS required: ...", then a
 *   GOAWAY that covers those streams (so the client does not transparently
 *   retry them) and the connection closes. grpcurl prints the message.
 * - Anything else: an HTTP/1.1 400 with the same sentence.
 *
 * Bounded: a few streams, a few KiB, a second; nothing of the request is
 * parsed beyond HTTP/2 frame headers.
 */
import type * as net from "node:net";

export const TLS_REQUIRED = "TLS required: this port accepts only gRPC/Connect over mutual TLS";

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const FRAME_HEADER = 9;
const TYPE_HEADERS = 0x1;
const TYPE_SETTINGS = 0x4;
const TYPE_GOAWAY = 0x7;
const FLAG_ACK = 0x1;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const MAX_STREAMS = 8;
const MAX_BYTES = 64 * 1024;
const LIFETIME_MS = 1000;

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(FRAME_HEADER);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

/** HPACK "literal header field without indexing, new name" (RFC 7541 6.2.2); every name and value here is under 127 bytes. */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

const TRAILERS_ONLY = Buffer.concat([
  literal(":status", "200"),
  literal("content-type", "application/grpc"),
  literal("grpc-status", "16"), // UNAUTHENTICATED: no TLS, so no client certificate
  literal("grpc-message", TLS_REQUIRED), // printable ASCII without '%': valid as is
]);

const HTTP1_REFUSAL = Buffer.from(
  `HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\ncontent-length: ${TLS_REQUIRED.length + 1}\r\n\r\n${TLS_REQUIRED}\n`,
);

/** True if `chunk` starts like the HTTP/2 client preface (it may be cut short). */
export function looksLikeH2(chunk: Buffer): boolean {
  const n = Math.min(chunk.length, H2_PREFACE.length);
  return chunk.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
}

/** Answers a plaintext client on `socket`, whose first bytes are `first`, then closes it. */
export function refusePlaintext(socket: net.Socket, first: Buffer): void {
  const close = setTimeout(() => socket.destroy(), LIFETIME_MS);
  close.unref();
  socket.once("close", () => clearTimeout(close));
  if (!looksLikeH2(first)) {
    socket.end(HTTP1_REFUSAL);
    return;
  }
  socket.write(frame(TYPE_SETTINGS, 0, 0));
  let buffered = first;
  let received = first.length;
  let lastStream = 0;
  let answered = 0;
  let prefaceSeen = false;
  const finish = () => {
    socket.removeListener("data", onData);
    socket.end(frame(TYPE_GOAWAY, 0, 0, Buffer.concat([u32(lastStream), u32(0), Buffer.from(TLS_REQUIRED)])));
  };
  const onData = (chunk: Buffer) => {
    received += chunk.length;
    buffered = Buffer.concat([buffered, chunk]);
    consume();
  };
  const consume = () => {
    if (!prefaceSeen) {
      if (buffered.length < H2_PREFACE.length) return;
      if (!buffered.subarray(0, H2_PREFACE.length).equals(H2_PREFACE)) return finish();
      prefaceSeen = true;
      buffered = buffered.subarray(H2_PREFACE.length);
    }
    while (buffered.length >= FRAME_HEADER) {
      const length = buffered.readUIntBE(0, 3);
      if (buffered.length < FRAME_HEADER + length) break;
      const type = buffered[3]!;
      const flags = buffered[4]!;
      const stream = buffered.readUInt32BE(5) & 0x7fffffff;
      buffered = buffered.subarray(FRAME_HEADER + length);
      if (type === TYPE_SETTINGS && (flags & FLAG_ACK) === 0) socket.write(frame(TYPE_SETTINGS, FLAG_ACK, 0));
      if (type === TYPE_HEADERS && stream % 2 === 1 && stream > lastStream) {
        lastStream = stream;
        answered++;
        socket.write(frame(TYPE_HEADERS, FLAG_END_STREAM | FLAG_END_HEADERS, stream, TRAILERS_ONLY));
      }
    }
    if (answered >= MAX_STREAMS || received > MAX_BYTES) finish();
  };
  socket.on("data", onData);
  socket.resume();
  consume();
  // Give a client a moment to open its streams (grpcurl: reflection first), then say goodbye.
  setTimeout(() => {
    if (!socket.destroyed) finish();
  }, 250).unref();
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
