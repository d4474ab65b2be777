/**
 * Serves the same routes with connect-node: the Connect protocol (JSON or
 * binary over HTTP/1.1 or HTTP/2, what `curl` speaks) and, for the wire-stack
 * benchmark, gRPC. Handlers and the interceptor chain are the framework's, so
 * a call behaves the same whichever adapter carried it.
 *
 * Authentication runs in connect-node's request gate, after the headers and
 * before a single byte of the body is read or parsed; its verified result
 * travels in the context values so the security interceptor does not verify
 * the (single-use) call token again. Protocol-level failures of an
 * authenticated call's body (malformed protobuf or JSON, bad compression)
 * are answered INVALID_ARGUMENT with a generic message, never with parser
 * internals or type names.
 */
import type * as http from "node:http";
import type * as http2 from "node:http2";
import { TLSSocket } from "node:tls";
import type { DescMethod, DescService, Message } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createConnectRouter,
  createContextKey,
  createContextValues,
  type ContextValues,
  type HandlerContext,
  type ServiceImpl,
} from "@connectrpc/connect";
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import { peerKey, type PeerInfo, type ServerCall } from "../contract/call.ts";
import { CallLifetime } from "./call-lifetime.ts";
import type { Route } from "./routes.ts";
import { toConnectError, type ErrorReporter } from "./errors.ts";
import { authenticatedKey, type CallAuthenticator } from "./security-interceptor.ts";
import type { RejectedCallLogger } from "./logging-interceptor.ts";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../wire/message-size.ts";

export interface ConnectAdapterOptions {
  /** Serve the gRPC protocol too (off by default: grpc-js serves gRPC). */
  readonly grpc?: boolean;
  /** Largest message read or written (readMaxBytes and writeMaxBytes); default 4 MiB. */
  readonly maxMessageBytes?: number;
  readonly shutdownSignal?: AbortSignal;
  /**
   * Authenticates every call before its body is read. Without it, the
   * security interceptor still authenticates, but only after connect-node
   * parsed the body (benchmarks only).
   */
  readonly authenticator?: CallAuthenticator;
  /** Logs and observes a call the authenticator refused (it never reaches the interceptor chain's logging). */
  readonly onRejected?: RejectedCallLogger;
}

/** Every `authorization` value as sent: Node's HTTP/1.1 parser keeps only the first in `headers`. */
const rawAuthorizationKey = createContextKey<string[] | undefined>(undefined, { description: "tt-rpc raw authorization values" });
/** Set once our implementation runs: an error response before that came from connect-node's protocol layer. */
const implEnteredKey = createContextKey<boolean>(false, { description: "tt-rpc implementation entered" });

function peerOf(req: http.IncomingMessage | http2.Http2ServerRequest): PeerInfo {
  const socket = req.socket;
  return {
    address: `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`,
    certificate() {
      if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
      const cert = socket.getPeerCertificate();
      return cert.raw ? cert : undefined;
    },
  };
}

function rawAuthorization(rawHeaders: readonly string[]): string[] | undefined {
  let values: string[] | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === "authorization") (values ??= []).push(rawHeaders[i + 1]!);
  }
  return values;
}

/**
 * The handler sees a signal that aborts on cancel or deadline only:
 * connect-node aborts its context signal after every response.
 */
function toServerCall(route: Route, input: Message | AsyncIterable<Message>, ctx: HandlerContext, lifetime: CallLifetime): ServerCall {
  const bidi = route.method.methodKind === "bidi_streaming";
  return {
    service: route.service,
    method: route.method,
    contract: route.contract,
    request: bidi ? undefined : (input as Message),
    ...(bidi ? { requests: input as AsyncIterable<Message> } : {}),
    deadline: lifetime.deadline,
    context: { ...ctx, signal: lifetime.signal },
    peer: ctx.values.get(peerKey),
    protocol: ctx.protocolName,
  };
}

function lifetimeOf(ctx: HandlerContext): CallLifetime {
  ctx.values.set(implEnteredKey, true);
  const timeoutMs = ctx.timeoutMs();
  return new CallLifetime(timeoutMs === undefined ? undefined : Date.now() + timeoutMs, ctx.signal);
}

function implFor(routes: readonly Route[], report: ErrorReporter): Map<DescService, Record<string, unknown>> {
  const impls = new Map<DescService, Record<string, unknown>>();
  for (const route of routes) {
    const impl = impls.get(route.service) ?? {};
    if (route.method.methodKind !== "unary") {
      impl[route.method.localName] = async function* (req: Message | AsyncIterable<Message>, ctx: HandlerContext) {
        const lifetime = lifetimeOf(ctx);
        try {
          const result = await route.handle(toServerCall(route, req, ctx, lifetime));
          if (result.kind !== "stream") throw new Error("unary result for a streaming method");
          yield* result.messages;
          // A stream cut short by the deadline or a cancel never ends with OK.
          if (lifetime.signal.aborted) throw lifetime.signal.reason;
        } catch (err) {
          throw toConnectError(err, route, report);
        } finally {
          lifetime.end();
        }
      };
    } else {
      impl[route.method.localName] = async (req: Message, ctx: HandlerContext) => {
        const lifetime = lifetimeOf(ctx);
        try {
          const result = await route.handle(toServerCall(route, req, ctx, lifetime));
          if (result.kind !== "unary") throw new Error("stream result for a unary method");
          return result.message;
        } catch (err) {
          throw toConnectError(err, route, report);
        } finally {
          lifetime.end();
        }
      };
    }
    impls.set(route.service, impl);
  }
  return impls;
}

function requestGate(routes: readonly Route[], authenticator: CallAuthenticator, onRejected: RejectedCallLogger | undefined) {
  const byMethod = new Map<DescMethod, Route>(routes.map((r) => [r.method, r]));
  return async (ctx: HandlerContext): Promise<void> => {
    const route = byMethod.get(ctx.method);
    if (route === undefined) throw new ConnectError("unauthenticated", Code.Unauthenticated);
    const start = performance.now();
    const peer = ctx.values.get(peerKey);
    try {
      const auth = await authenticator.authenticate({
        path: route.contract.path,
        headers: ctx.requestHeader,
        peer,
        authorization: ctx.values.get(rawAuthorizationKey),
      });
      ctx.values.set(authenticatedKey, auth);
    } catch (err) {
      if (onRejected) {
        const timeoutMs = ctx.timeoutMs();
        const call: ServerCall = {
          service: route.service,
          method: route.method,
          contract: route.contract,
          request: undefined,
          deadline: timeoutMs === undefined ? undefined : Date.now() + timeoutMs,
          context: ctx,
          peer,
          protocol: ctx.protocolName,
        };
        onRejected(call, start, err);
      }
      throw err;
    }
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * What an authenticated caller is told when connect-node could not read or
 * parse its request (the implementation never ran): the code that says what
 * happened, never the parser's words or a type name.
 */
function genericProtocolError(connectCode: string | undefined): { code: string; message: string } {
  switch (connectCode) {
    case "resource_exhausted":
      return { code: connectCode, message: "request too large" };
    case "deadline_exceeded":
      return { code: connectCode, message: "deadline exceeded" };
    case "canceled":
      return { code: connectCode, message: "call cancelled" };
    default:
      return { code: "invalid_argument", message: "malformed request" };
  }
}

function errorCodeOf(json: Uint8Array, nested: boolean): string | undefined {
  try {
    const parsed = JSON.parse(decoder.decode(json)) as { code?: string; error?: { code?: string } };
    return nested ? parsed.error?.code : parsed.code;
  } catch {
    return undefined;
  }
}

async function readAll(body: AsyncIterable<Uint8Array> | undefined): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of body ?? []) parts.push(chunk);
  return Buffer.concat(parts);
}

/** Unary Connect error (HTTP status != 200, JSON body {code, message}). */
async function rewriteUnaryError(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  const compressed = res.header?.has("content-encoding") ?? false;
  const err = genericProtocolError(compressed ? undefined : errorCodeOf(await readAll(res.body), false));
  const body = encoder.encode(JSON.stringify(err));
  const header = new Headers({ "content-type": "application/json", "content-length": String(body.byteLength) });
  const status = err.code === "invalid_argument" ? 400 : res.status;
  return { status, header, body: (async function* () { yield body; })() };
}

const END_STREAM = 0x02;

/** Streaming Connect response: the end-stream envelope carries the error (one envelope per chunk). */
async function* rewriteEndStream(body: AsyncIterable<Uint8Array>, values: ContextValues): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    if (values.get(implEnteredKey) || chunk.length < 5 || (chunk[0]! & END_STREAM) === 0) {
      yield chunk;
      continue;
    }
    const uncompressed = (chunk[0]! & 0x01) === 0;
    const err = genericProtocolError(uncompressed ? errorCodeOf(chunk.subarray(5), true) : undefined);
    const json = encoder.encode(JSON.stringify({ error: err }));
    const envelope = new Uint8Array(5 + json.byteLength);
    envelope[0] = END_STREAM;
    new DataView(envelope.buffer).setUint32(1, json.byteLength);
    envelope.set(json, 5);
    yield envelope;
  }
}

/**
 * A unary response over writeMaxBytes: connect-node answers 429 with its own
 * words and both sizes; the caller gets `response too large`. Any other 429
 * (the handler's own RESOURCE_EXHAUSTED) is passed on as it was.
 */
async function rewriteResponseTooLarge(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  const original = await readAll(res.body);
  const replay = (bytes: Uint8Array) => (async function* () { yield bytes; })();
  if (!decoder.decode(original).includes("writeMaxBytes")) return { ...res, body: replay(original) };
  const body = encoder.encode(JSON.stringify({ code: "resource_exhausted", message: "response too large" }));
  return { status: res.status, header: new Headers({ "content-type": "application/json", "content-length": String(body.byteLength) }), body: replay(body) };
}

/** Rewrites connect-node's own answers to an authenticated call whose request it could not read or parse. */
function guardProtocolErrors(res: UniversalServerResponse, values: ContextValues): UniversalServerResponse | Promise<UniversalServerResponse> {
  if (values.get(implEnteredKey)) {
    return res.status === 429 && res.header?.get("content-type") === "application/json" && !res.header.has("content-encoding") ? rewriteResponseTooLarge(res) : res;
  }
  if (values.get(authenticatedKey) === undefined) return res;
  const contentType = res.header?.get("content-type") ?? "";
  if (res.status !== 200 && contentType === "application/json") return rewriteUnaryError(res);
  if (res.status === 200 && contentType.startsWith("application/connect+") && res.body) {
    return { ...res, body: rewriteEndStream(res.body, values) };
  }
  return res;
}

/** Longest delay a Node timer holds (2^31 - 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A valid `connect-timeout-ms` (up to 10 digits) longer than a Node timer can
 * hold would fire connect-node's deadline timer after 1 ms (Node's overflow
 * rule) and fail the call at once: it is lowered to the longest one it can.
 */
function capTimeout(headers: http.IncomingHttpHeaders): void {
  const timeout = headers["connect-timeout-ms"];
  if (typeof timeout === "string" && Number(timeout) > MAX_TIMER_MS) headers["connect-timeout-ms"] = String(MAX_TIMER_MS);
}

/** A Node request handler for http/https/http2 servers. */
export function createConnectHandler(routes: readonly Route[], report: ErrorReporter, options: ConnectAdapterOptions = {}) {
  const impls = implFor(routes, report);
  const router = createConnectRouter({
    connect: true,
    grpc: options.grpc ?? false,
    grpcWeb: false,
    acceptCompression: [compressionGzip, compressionBrotli],
    // connect-node's default limits are ~4 GiB; the same limit as the gRPC port, both ways.
    readMaxBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    writeMaxBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    ...(options.shutdownSignal ? { shutdownSignal: options.shutdownSignal } : {}),
    ...(options.authenticator ? { requestGate: requestGate(routes, options.authenticator, options.onRejected) } : {}),
  });
  for (const [service, impl] of impls) router.service(service, impl as ServiceImpl<DescService>);
  const handlers = new Map(router.handlers.map((h) => [h.requestPath, h]));

  return (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void => {
    const handler = handlers.get(req.url?.split("?", 2)[0] ?? "");
    if (!handler) {
      (res as http.ServerResponse).writeHead(404).end();
      return;
    }
    capTimeout(req.headers);
    const values = createContextValues().set(peerKey, peerOf(req)).set(rawAuthorizationKey, rawAuthorization(req.rawHeaders));
    handler(universalRequestFromNodeRequest(req as http2.Http2ServerRequest, res as http2.Http2ServerResponse, undefined, values))
      .then((uRes) => guardProtocolErrors(uRes, values))
      .then((uRes) => universalResponseToNodeResponse(uRes, res as http2.Http2ServerResponse))
      .catch(() => {
        // The response stream broke (peer reset, aborted write): nothing left to answer.
        res.destroy();
      });
  };
}
