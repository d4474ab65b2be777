/**
 * The framework's own check of every gRPC request, on the HTTP/2 'stream'
 * event, before grpc-js sees the headers (see grpc-internals.ts for how it is
 * put in front). grpc-js is lenient where the gRPC HTTP/2 protocol is not, and
 * prints a metadata value it cannot parse to stderr in full, token included,
 * outside our log redaction. Refused here, per PROTOCOL-HTTP2.md:
 *
 * - `:method` other than POST -> HTTP 405 (not a gRPC request at all);
 * - `content-type` other than `application/grpc` or `application/grpc+proto`
 *   (optionally with `;` parameters) -> HTTP 415, as the spec says, so no
 *   non-gRPC client mistakes a gRPC error (HTTP 200) for success;
 * - `grpc-timeout` not 1-8 ASCII digits and one of H M S m u n ->
 *   INVALID_ARGUMENT. (grpc-go answers INTERNAL, but to a caller INTERNAL says
 *   "the server is broken", and a client-side breaker may count it: malformed
 *   input is the caller's fault, so every refusal of malformed input here is
 *   INVALID_ARGUMENT, like the framing errors grpc-js reports after us);
 *   A valid one longer than a Node timer can hold (~24.8 days, e.g. `1000H`)
 *   is lowered to that: grpc-js multiplies it out in 32 bits, so it would wrap
 *   to a negative or arbitrary deadline and fail the call at once;
 * - `grpc-encoding` other than identity -> UNIMPLEMENTED with
 *   `grpc-accept-encoding: identity`, as the spec says for an unsupported
 *   compression. grpc-js would decompress (gzip, deflate) before our
 *   authentication runs, i.e. decode for anyone, and it answers an unknown
 *   encoding or a corrupt compressed message itself, from below every
 *   interceptor, with INTERNAL or with the value echoed. Our clients never
 *   compress requests;
 * - a metadata value that is not printable ASCII (non `-bin` keys): in
 *   `authorization` or `tt-context` -> UNAUTHENTICATED (a credential we will
 *   not read), elsewhere -> INVALID_ARGUMENT. The log names the header, never the value.
 *
 * And in the body: a message whose compressed flag is set although the
 * request declares no compression (only identity is admitted above) ->
 * INVALID_ARGUMENT (the spec says INTERNAL; see above); grpc-js would silently treat it as
 * uncompressed. A message longer than the receive limit -> RESOURCE_EXHAUSTED
 * "request too large" (grpc-js would answer it itself, below every
 * interceptor, with the length the caller declared and the limit). The check
 * reads only each message's 5-byte prefix (the body
 * bytes are skipped by length), and listens before grpc-js does, so it
 * answers and closes the stream before grpc-js has decoded the message.
 *
 * - a path that is not one of the served methods -> UNIMPLEMENTED with a
 *   generic message: grpc-js would answer it itself, below every
 *   interceptor, echoing the whole path (up to the header-list cap).
 *
 * Also restored here: Node keeps only the first of several `authorization`
 * fields; every value is put back, comma-joined, so the security interceptor
 * can enforce "exactly one".
 */
import * as http2 from "node:http2";
import type { Logger } from "../observability/logger.ts";
import { throttledWarn } from "../observability/log-throttle.ts";

export interface Refusal {
  /** Response headers (trailers-only for gRPC statuses), shared constants. */
  readonly response: http2.OutgoingHttpHeaders;
  /** Why, for the log (never a header value). */
  readonly reason: string;
}

const trailersOnly = (code: number, message: string): http2.OutgoingHttpHeaders => ({
  ":status": 200,
  "content-type": "application/grpc",
  "grpc-status": String(code),
  "grpc-message": message,
});
const RESOURCE_EXHAUSTED = 8;
const UNIMPLEMENTED = 12;
const INVALID_ARGUMENT = 3;
const UNAUTHENTICATED = 16;

const METHOD_NOT_ALLOWED: Refusal = { response: { ":status": 405, allow: "POST" }, reason: "method is not POST" };
const UNSUPPORTED_MEDIA_TYPE: Refusal = { response: { ":status": 415 }, reason: "content-type is not application/grpc[+proto]" };
const BAD_TIMEOUT: Refusal = { response: trailersOnly(INVALID_ARGUMENT, "malformed grpc-timeout"), reason: "malformed grpc-timeout" };
const ACCEPTED_ENCODINGS = "identity";
const BAD_ENCODING: Refusal = {
  response: { ...trailersOnly(UNIMPLEMENTED, "unsupported message encoding"), "grpc-accept-encoding": ACCEPTED_ENCODINGS },
  reason: "unsupported grpc-encoding",
};
const COMPRESSED_WITHOUT_ENCODING: Refusal = {
  response: trailersOnly(INVALID_ARGUMENT, "compressed message without grpc-encoding"),
  reason: "compressed flag set without grpc-encoding",
};
const CREDENTIAL_HEADERS = new Set(["authorization", "tt-context"]);
const badCredential = new Map(
  [...CREDENTIAL_HEADERS].map((h) => [h, { response: trailersOnly(UNAUTHENTICATED, "unauthenticated"), reason: `${h} value is not printable ASCII` }]),
);
const MESSAGE_TOO_LARGE: Refusal = { response: trailersOnly(RESOURCE_EXHAUSTED, "request too large"), reason: "message larger than the receive limit" };
const UNKNOWN_METHOD: Refusal = { response: trailersOnly(UNIMPLEMENTED, "method not implemented"), reason: "unknown method" };
const BAD_METADATA: Refusal = { response: trailersOnly(INVALID_ARGUMENT, "malformed metadata"), reason: "a metadata value is not printable ASCII" };

const GRPC_CONTENT_TYPE = /^application\/grpc(?:\+proto)?(?:;.*)?$/i;
const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };
/** Longest delay a Node timer holds (2^31 - 1 ms), and the longest grpc-timeout that stays within it. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const LONGEST_GRPC_TIMEOUT = "2147483S";
const NOT_PRINTABLE_ASCII = /[^\x20-\x7e]/;

/**
 * Checks one request's headers; returns the refusal, or undefined to admit
 * it (after restoring repeated `authorization` values in `headers`).
 */
export function checkGrpcRequest(headers: http2.IncomingHttpHeaders, rawHeaders: readonly string[]): Refusal | undefined {
  if (headers[":method"] !== "POST") return METHOD_NOT_ALLOWED;
  const contentType = headers["content-type"];
  if (contentType === undefined || !GRPC_CONTENT_TYPE.test(contentType)) return UNSUPPORTED_MEDIA_TYPE;
  const timeout = headers["grpc-timeout"];
  if (timeout !== undefined) {
    const match = typeof timeout === "string" ? GRPC_TIMEOUT.exec(timeout) : null;
    if (match === null) return BAD_TIMEOUT;
    if (Number(match[1]) * TIMEOUT_UNIT_MS[match[2]!]! > MAX_TIMER_MS) headers["grpc-timeout"] = LONGEST_GRPC_TIMEOUT;
  }
  const encoding = headers["grpc-encoding"];
  if (encoding !== undefined && encoding !== "identity") return BAD_ENCODING;
  let authorizations: string[] | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    if (name.charCodeAt(0) === 0x3a /* ':' */ || name.endsWith("-bin")) continue;
    if (NOT_PRINTABLE_ASCII.test(value)) return badCredential.get(name) ?? BAD_METADATA;
    if (name === "authorization") (authorizations ??= []).push(value);
  }
  if (authorizations && authorizations.length > 1) headers.authorization = authorizations.join(", ");
  return undefined;
}

/**
 * Follows the gRPC length-prefixed framing of a request body across DATA
 * chunks, looking only at each message's prefix: calls `onRefused` (once,
 * then stops) when a message has its compressed flag set or declares more
 * than `maxMessageBytes`.
 */
export function compressedFlagWatcher(onRefused: (refusal: Refusal) => void, maxMessageBytes = Infinity): (chunk: Buffer) => void {
  let prefixPos = 0; // 0: next byte is a flag; 1-4: length bytes
  let length = 0;
  let bodyLeft = 0;
  let done = false;
  return (chunk) => {
    let i = 0;
    while (i < chunk.length && !done) {
      if (bodyLeft > 0) {
        const n = Math.min(bodyLeft, chunk.length - i);
        bodyLeft -= n;
        i += n;
        continue;
      }
      const byte = chunk[i++]!;
      if (prefixPos === 0) {
        if (byte !== 0) {
          done = true;
          onRefused(COMPRESSED_WITHOUT_ENCODING);
          return;
        }
        prefixPos = 1;
        length = 0;
      } else {
        length = length * 256 + byte;
        if (++prefixPos === 5) {
          if (length > maxMessageBytes) {
            done = true;
            onRefused(MESSAGE_TOO_LARGE);
            return;
          }
          prefixPos = 0;
          bodyLeft = length;
        }
      }
    }
  };
}

type StreamListener = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;

function ignore(): void {}

function cancelIdleRequest(this: http2.ServerHttp2Stream): void {
  this.close(http2.constants.NGHTTP2_CANCEL);
}

function stopIdleTimer(this: http2.ServerHttp2Stream): void {
  this.setTimeout(0);
}

function refuse(stream: http2.ServerHttp2Stream, refusal: Refusal): void {
  stream.on("error", ignore);
  if (!stream.headersSent && !stream.destroyed) stream.respond(refusal.response, { endStream: true });
  // The answer is complete: don't wait for the rest of the body (RST_STREAM NO_ERROR after it, as the spec allows).
  stream.close(http2.constants.NGHTTP2_NO_ERROR);
}

/**
 * Puts the guard in front of `next` (grpc-js's own stream listener, already
 * detached from `server`): admitted streams for one of `methods` (served
 * paths) go on to grpc-js, refused ones get their answer here and are
 * logged, rate-limited. An admitted stream whose request sends nothing for
 * `requestIdleTimeoutMs` before it is complete is reset: grpc-js runs no
 * handler, and so no authentication, before a unary request's message has
 * fully arrived, so an unfinished body would hold the stream for ever. Once
 * the request is complete the timer stops (a quiet Health Watch may last).
 */
export function guardGrpcStreams(
  server: http2.Http2Server,
  next: StreamListener,
  logger: Logger,
  methods: ReadonlySet<string>,
  requestIdleTimeoutMs: number,
  maxMessageBytes: number,
): void {
  const warn = throttledWarn(logger, "gRPC request refused before grpc-js");
  server.on("stream", function (this: http2.Http2Server, stream, headers, flags, rawHeaders: string[]) {
    const peer = () => `${stream.session?.socket?.remoteAddress}:${stream.session?.socket?.remotePort}`;
    const refusal = checkGrpcRequest(headers, rawHeaders) ?? (methods.has(headers[":path"]!) ? undefined : UNKNOWN_METHOD);
    if (refusal === undefined) {
      // Registered before grpc-js's own 'data' listener, so it sees every chunk first.
      const watch = compressedFlagWatcher((problem) => {
        stream.off("data", watch);
        refuse(stream, problem);
        warn({ peer: peer(), reason: problem.reason });
      }, maxMessageBytes);
      stream.on("data", watch);
      stream.setTimeout(requestIdleTimeoutMs, cancelIdleRequest);
      stream.once("end", stopIdleTimer);
      return next.call(this, stream, headers, flags, rawHeaders);
    }
    refuse(stream, refusal);
    warn({ peer: peer(), reason: refusal.reason });
  });
}
