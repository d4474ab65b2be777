/**
 * Serves routes over gRPC with @grpc/grpc-js, fed by protobuf-es
 * serializers. Chosen by measurement over the connect-node adapter for the
 * gRPC protocol (see README, "Wire stack"): the same handlers, a fraction of
 * the CPU per call.
 */
import * as grpc from "@grpc/grpc-js";
import type { Message } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, createHandlerContext } from "@connectrpc/connect";
import { DecodeFailure, methodCodec } from "../wire/codec.ts";
import { headersToMetadata, metadataToHeaders } from "../wire/metadata.ts";
import { grpcStatusFromConnect } from "../wire/status.ts";
import { peerKey, type PeerInfo, type ServerCall } from "./call.ts";
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

function remainingMs(deadline: grpc.Deadline): number | undefined {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

function prepareCall(
  route: Route,
  call: AnyServerCall,
  shutdown: AbortSignal,
  requests?: AsyncIterable<Message>,
): ServerCall {
  const abort = new AbortController();
  (call as grpc.ServerUnaryCall<unknown, unknown>).once("cancelled", () =>
    abort.abort(new ConnectError("call cancelled by the client", Code.Canceled)),
  );
  const peer = peerOf(call);
  const timeoutMs = remainingMs(call.getDeadline());
  const context = createHandlerContext({
    service: route.service,
    method: route.method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: route.contract.path,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    shutdownSignal: shutdown,
    requestSignal: abort.signal,
    requestHeader: metadataToHeaders(call.metadata),
    contextValues: createContextValues().set(peerKey, peer),
  });
  return {
    service: route.service,
    method: route.method,
    contract: route.contract,
    request: "request" in call ? (call.request as Message) : undefined,
    ...(requests ? { requests } : {}),
    context,
    peer,
    protocol: "grpc",
  };
}

function sendHeaderIfAny(call: AnyServerCall, headers: Headers): void {
  let any = false;
  headers.forEach(() => (any = true));
  if (any) call.sendMetadata(headersToMetadata(headers));
}

function failure(err: unknown, route: Route, report: ErrorReporter): grpc.StatusObject {
  const ce = toConnectError(err, route, report);
  return grpcStatusFromConnect(ce) as grpc.StatusObject;
}

function unaryHandler(route: Route, shutdown: AbortSignal, report: ErrorReporter): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    if (call.request instanceof DecodeFailure) {
      callback(failure(new ConnectError("request message could not be decoded", Code.InvalidArgument), route, report));
      return;
    }
    const sc = prepareCall(route, call, shutdown);
    route.handle(sc).then(
      (result) => {
        if (result.kind !== "unary") throw new Error("stream result for a unary method");
        sendHeaderIfAny(call, sc.context.responseHeader);
        callback(null, result.message, headersToMetadata(sc.context.responseTrailer));
      },
    ).catch((err: unknown) => callback(failure(err, route, report)));
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

async function* decodedRequests(call: grpc.ServerDuplexStream<unknown, unknown>): AsyncIterable<Message> {
  for await (const m of call) {
    if (m instanceof DecodeFailure) throw new ConnectError("request message could not be decoded", Code.InvalidArgument);
    yield m as Message;
  }
}

function streamHandler(route: Route, shutdown: AbortSignal, report: ErrorReporter) {
  return (call: StreamingServerCall) => {
    const bidi = route.method.methodKind === "bidi_streaming";
    if (!bidi && (call as grpc.ServerWritableStream<unknown, unknown>).request instanceof DecodeFailure) {
      call.emit("error", failure(new ConnectError("request message could not be decoded", Code.InvalidArgument), route, report));
      return;
    }
    const sc = prepareCall(route, call, shutdown, bidi ? decodedRequests(call as grpc.ServerDuplexStream<unknown, unknown>) : undefined);
    (async () => {
      const result = await route.handle(sc);
      if (result.kind !== "stream") throw new Error("unary result for a streaming method");
      let headerSent = false;
      for await (const message of result.messages) {
        if (sc.context.signal.aborted) return;
        if (!headerSent) {
          sendHeaderIfAny(call, sc.context.responseHeader);
          headerSent = true;
        }
        // Respect HTTP/2 flow control: wait for drain instead of buffering the whole stream.
        if (!call.write(message)) await drained(call, sc.context.signal);
      }
      if (!headerSent) sendHeaderIfAny(call, sc.context.responseHeader);
      call.end(headersToMetadata(sc.context.responseTrailer));
    })().catch((err: unknown) => {
      if (!call.cancelled) call.emit("error", failure(err, route, report));
    });
  };
}

/** Builds the grpc-js service definitions + handlers for every route. */
export function registerGrpcRoutes(server: grpc.Server, routes: readonly Route[], shutdown: AbortSignal, report: ErrorReporter): void {
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
        responseSerialize: codec.serializeOutput,
        responseDeserialize: codec.deserializeOutput,
        originalName: route.method.localName,
      };
      impl[route.method.name] = (streaming ? streamHandler(route, shutdown, report) : unaryHandler(route, shutdown, report)) as
        grpc.UntypedHandleCall;
    }
    server.addService(definition as grpc.ServiceDefinition, impl);
  }
}
