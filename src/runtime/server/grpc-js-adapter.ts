/**
 * Serves routes over gRPC with @grpc/grpc-js, fed by protobuf-es
 * serializers. Chosen by measurement over the connect-node adapter for the
 * gRPC protocol (see README, "Wire stack"): the same handlers, a fraction of
 * the CPU per call.
 */
import * as grpc from "@grpc/grpc-js";
import type { Message } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, type HandlerContext } from "@connectrpc/connect";
import { decodeRequest, methodCodec } from "../wire/codec.ts";
import { headersToMetadata, MetadataHeaders } from "../wire/metadata.ts";
import { grpcStatusFromConnect } from "../wire/status.ts";
import { peerKey, type PeerInfo, type ServerCall } from "../contract/call.ts";
import { CallLifetime } from "./call-lifetime.ts";
import type { Route } from "./routes.ts";
import type { ErrorReporter } from "./errors.ts";
import { toConnectError } from "./errors.ts";

type AnyServerCall =
  | grpc.ServerUnaryCall<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;
type StreamingServerCall = grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;

function peerOf(call: AnyServerCall): PeerInfo {
  return {
    address: call.getPeer(),
    certificate() {
      // Present only when the TLS layer verified the chain (socket.authorized).
      const cert = call.getAuthContext().sslPeerCertificate;
      return cert?.raw ? cert : undefined;
    },
  };
}

function deadlineOf(deadline: grpc.Deadline): number | undefined {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? at : undefined;
}

/**
 * The handler context, built directly rather than with connect-es
 * createHandlerContext: that one starts a deadline timer and links the
 * shutdown signal per call, and both live until the deadline unless the
 * context is aborted, which would abort the handler's signal after every
 * successful call. grpc-js already times the deadline (see CallLifetime).
 * A class, so a call allocates one object and no closures; the signal and
 * the response header/trailer objects are made only when something reads
 * them (most unary handlers never do). They are getters on the prototype: an
 * interceptor that needs a changed context passes this one on or wraps it
 * (Object.create), since an object spread would drop them.
 */
class GrpcHandlerContext implements HandlerContext {
  readonly protocolName = "grpc";
  readonly requestMethod = "POST";
  readonly service: HandlerContext["service"];
  readonly method: HandlerContext["method"];
  readonly url: string;
  readonly requestHeader: Headers;
  readonly values: HandlerContext["values"];
  #responseHeader: Headers | undefined;
  #responseTrailer: Headers | undefined;

  constructor(
    route: Route,
    call: AnyServerCall,
    private readonly lifetime: CallLifetime,
    peer: PeerInfo,
  ) {
    this.service = route.service;
    this.method = route.method;
    this.url = route.contract.path;
    // Converted to Headers only as far as read (wire/metadata.ts): the chain reads a few single values.
    this.requestHeader = new MetadataHeaders(call.metadata);
    this.values = createContextValues().set(peerKey, peer);
  }

  get signal(): AbortSignal {
    return this.lifetime.signal;
  }

  timeoutMs(): number | undefined {
    return this.lifetime.remainingMs();
  }

  get responseHeader(): Headers {
    return (this.#responseHeader ??= new Headers());
  }

  get responseTrailer(): Headers {
    return (this.#responseTrailer ??= new Headers());
  }

  /** The response headers if anything could have set them, else undefined (nothing to send). */
  responseHeaderIfAny(): Headers | undefined {
    return this.#responseHeader;
  }

  responseTrailerIfAny(): Headers | undefined {
    return this.#responseTrailer;
  }
}

function prepareCall(
  route: Route,
  call: AnyServerCall,
  shutdown: AbortSignal,
  requests?: AsyncIterable<Message>,
): { sc: ServerCall; lifetime: CallLifetime } {
  const lifetime = new CallLifetime(deadlineOf(call.getDeadline()), shutdown);
  // grpc-js emits "cancelled" on every stream close; CallLifetime ignores it once the call has ended.
  (call as grpc.ServerUnaryCall<unknown, unknown>).once("cancelled", () => lifetime.cancelled());
  const peer = peerOf(call);
  const sc: ServerCall = {
    service: route.service,
    method: route.method,
    contract: route.contract,
    request: undefined,
    ...("request" in call ? { encodedRequest: call.request as Uint8Array } : {}),
    ...(requests ? { requests } : {}),
    deadline: lifetime.deadline,
    context: new GrpcHandlerContext(route, call, lifetime, peer),
    peer,
    protocol: "grpc",
  };
  return { sc, lifetime };
}

function sendHeaderIfAny(call: AnyServerCall, context: HandlerContext): void {
  const headers = context instanceof GrpcHandlerContext ? context.responseHeaderIfAny() : context.responseHeader;
  if (headers === undefined) return;
  let any = false;
  headers.forEach(() => (any = true));
  if (any) call.sendMetadata(headersToMetadata(headers));
}

/** The trailers to send: an empty Metadata unless something set some (no Headers made for nothing). */
function trailerOf(context: HandlerContext): grpc.Metadata {
  const trailer = context instanceof GrpcHandlerContext ? context.responseTrailerIfAny() : context.responseTrailer;
  return trailer === undefined ? new grpc.Metadata() : headersToMetadata(trailer);
}

/** Trailers of the statuses our handlers answered with; any other error status came from grpc-js itself. */
const ours = new WeakSet<grpc.Metadata>();

function failure(err: unknown, route: Route, report: ErrorReporter): grpc.StatusObject {
  const status = grpcStatusFromConnect(toConnectError(err, route, report)) as grpc.StatusObject;
  ours.add(status.metadata);
  return status;
}

/**
 * grpc-js answers some malformed requests itself, before a handler runs
 * ("Received no request message for server streaming method <path>" as
 * UNIMPLEMENTED when the framing is broken, the path echoed for an unknown
 * method). Its statuses get the framework's treatment: the right code and a
 * generic message that echoes nothing.
 */
type OutgoingStatus = Parameters<grpc.ServerInterceptingCallInterface["sendStatus"]>[0];

function genericStatus(status: OutgoingStatus): OutgoingStatus {
  const code = status.code;
  if (code === grpc.status.UNIMPLEMENTED && status.details?.startsWith("Received ")) {
    return { code: grpc.status.INVALID_ARGUMENT, details: "malformed request" };
  }
  const details =
    code === grpc.status.UNIMPLEMENTED ? "method not implemented"
    : code === grpc.status.RESOURCE_EXHAUSTED ? "request too large"
    : code === grpc.status.DEADLINE_EXCEEDED ? "deadline exceeded"
    : code === grpc.status.CANCELLED ? "call cancelled"
    : code === grpc.status.UNKNOWN || code === grpc.status.INTERNAL ? "internal error"
    : "request failed";
  return { code: code === grpc.status.UNKNOWN ? grpc.status.INTERNAL : code, details };
}

const statusGuard: grpc.Responder = {
  sendStatus(status, next) {
    next(status.code === grpc.status.OK || (status.metadata && ours.has(status.metadata)) ? status : genericStatus(status));
  },
};

/** Install on the grpc.Server (option `interceptors`): one shared responder, one small object per call. */
export const grpcStatusGuard: grpc.ServerInterceptor = (_method, call) => new grpc.ServerInterceptingCall(call, statusGuard);

/**
 * Responses are serialized here rather than by grpc-js, so one over the
 * message size limit is answered RESOURCE_EXHAUSTED `response too large` like
 * any handler error (grpc-js's own check answers below the status guard, with
 * the sizes); the method definition then passes the bytes through.
 */
const RESPONSE_TOO_LARGE = () => new ConnectError("response too large", Code.ResourceExhausted);
const passBytes = (b: unknown): Buffer => b as Buffer;

function serializeResponse(serialize: (m: unknown) => Buffer, message: unknown, maxMessageBytes: number): Buffer {
  const bytes = serialize(message);
  if (bytes.length > maxMessageBytes) throw RESPONSE_TOO_LARGE();
  return bytes;
}

function unaryHandler(route: Route, shutdown: AbortSignal, report: ErrorReporter, maxMessageBytes: number): grpc.handleUnaryCall<unknown, unknown> {
  const serialize = methodCodec(route.method).serializeOutput;
  return (call, callback) => {
    const { sc, lifetime } = prepareCall(route, call, shutdown);
    route.handle(sc).then(
      (result) => {
        if (result.kind !== "unary") throw new Error("stream result for a unary method");
        const bytes = serializeResponse(serialize, result.message, maxMessageBytes);
        lifetime.end();
        sendHeaderIfAny(call, sc.context);
        callback(null, bytes, trailerOf(sc.context));
      },
    ).catch((err: unknown) => {
      lifetime.end();
      callback(failure(err, route, report));
    });
  };
}

/**
 * Waits for the stream to drain, or for the call to end: grpc-js drops writes
 * after a cancel without ever emitting "drain", so waiting on drain alone
 * would leak the handler.
 */
function drained(call: StreamingServerCall, signal: AbortSignal): Promise<void> {
  if (signal.aborted || call.cancelled) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      call.off("drain", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    call.once("drain", done);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Decoded as the handler pulls them, which is after authentication. */
async function* decodedRequests(route: Route, call: grpc.ServerDuplexStream<unknown, unknown>): AsyncIterable<Message> {
  for await (const bytes of call) yield decodeRequest(route.method.input, bytes as Uint8Array);
}

function streamHandler(route: Route, shutdown: AbortSignal, report: ErrorReporter, maxMessageBytes: number) {
  const serialize = methodCodec(route.method).serializeOutput;
  return (call: StreamingServerCall) => {
    const bidi = route.method.methodKind === "bidi_streaming";
    const { sc, lifetime } = prepareCall(route, call, shutdown, bidi ? decodedRequests(route, call as grpc.ServerDuplexStream<unknown, unknown>) : undefined);
    const signal = sc.context.signal;
    (async () => {
      const result = await route.handle(sc);
      if (result.kind !== "stream") throw new Error("unary result for a streaming method");
      let headerSent = false;
      for await (const message of result.messages) {
        if (signal.aborted) break;
        const bytes = serializeResponse(serialize, message, maxMessageBytes);
        if (!headerSent) {
          sendHeaderIfAny(call, sc.context);
          headerSent = true;
        }
        // Respect HTTP/2 flow control: wait for drain instead of buffering the whole stream.
        if (!call.write(bytes)) await drained(call, signal);
      }
      // A stream cut short by the deadline or a cancel never ends with OK.
      if (signal.aborted) throw signal.reason;
      lifetime.end();
      if (!headerSent) sendHeaderIfAny(call, sc.context);
      call.end(trailerOf(sc.context));
    })().catch((err: unknown) => {
      lifetime.end();
      if (!call.cancelled) call.emit("error", failure(err, route, report));
    });
  };
}

/** Builds the grpc-js service definitions + handlers for every route; responses over `maxMessageBytes` are RESOURCE_EXHAUSTED. */
export function registerGrpcRoutes(
  server: grpc.Server,
  routes: readonly Route[],
  shutdown: AbortSignal,
  report: ErrorReporter,
  maxMessageBytes = Infinity,
): void {
  const byService = new Map<string, Route[]>();
  for (const r of routes) {
    const list = byService.get(r.service.typeName) ?? [];
    list.push(r);
    byService.set(r.service.typeName, list);
  }
  for (const list of byService.values()) {
    const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    const impl: grpc.UntypedServiceImplementation = {};
    for (const route of list) {
      const codec = methodCodec(route.method);
      const kind = route.method.methodKind;
      if (kind === "client_streaming") throw new Error(`${route.contract.path}: client-streaming methods are not supported`);
      const streaming = kind !== "unary";
      definition[route.method.name] = {
        path: route.contract.path,
        requestStream: kind === "bidi_streaming",
        responseStream: streaming,
        requestSerialize: codec.serializeInput,
        requestDeserialize: codec.deserializeInput,
        // The handlers serialize (and check the size of) each response themselves.
        responseSerialize: passBytes,
        responseDeserialize: codec.deserializeOutput,
        originalName: route.method.localName,
      };
      impl[route.method.name] = (streaming ? streamHandler(route, shutdown, report, maxMessageBytes) : unaryHandler(route, shutdown, report, maxMessageBytes)) as
        grpc.UntypedHandleCall;
    }
    server.addService(definition as grpc.ServiceDefinition, impl);
  }
}
