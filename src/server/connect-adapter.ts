/**
 * Serves the same routes with connect-node: the Connect protocol (JSON or
 * binary over HTTP/1.1 or HTTP/2, what `curl` speaks) and, for the wire-stack
 * benchmark, gRPC. Handlers and the interceptor chain are the framework's, so
 * a call behaves the same whichever adapter carried it.
 */
import type * as http from "node:http";
import type * as http2 from "node:http2";
import { TLSSocket } from "node:tls";
import type { DescService, Message } from "@bufbuild/protobuf";
import { createContextValues, type ConnectRouter, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { peerKey, type PeerInfo, type ServerCall } from "./call.ts";
import type { Route } from "./routes.ts";
import { toConnectError, type ErrorReporter } from "./errors.ts";

export interface ConnectAdapterOptions {
  /** Serve the gRPC protocol too (off by default: grpc-js serves gRPC). */
  readonly grpc?: boolean;
  readonly readMaxBytes?: number;
  readonly shutdownSignal?: AbortSignal;
}

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

function toServerCall(route: Route, input: Message | AsyncIterable<Message>, context: HandlerContext): ServerCall {
  const bidi = route.method.methodKind === "bidi_streaming";
  return {
    service: route.service,
    method: route.method,
    contract: route.contract,
    request: bidi ? undefined : (input as Message),
    ...(bidi ? { requests: input as AsyncIterable<Message> } : {}),
    context,
    peer: context.values.get(peerKey),
    protocol: context.protocolName,
  };
}

function implFor(routes: readonly Route[], report: ErrorReporter): Map<DescService, Record<string, unknown>> {
  const impls = new Map<DescService, Record<string, unknown>>();
  for (const route of routes) {
    const impl = impls.get(route.service) ?? {};
    if (route.method.methodKind !== "unary") {
      impl[route.method.localName] = async function* (req: Message | AsyncIterable<Message>, ctx: HandlerContext) {
        try {
          const result = await route.handle(toServerCall(route, req, ctx));
          if (result.kind !== "stream") throw new Error("unary result for a streaming method");
          yield* result.messages;
        } catch (err) {
          throw toConnectError(err, route, report);
        }
      };
    } else {
      impl[route.method.localName] = async (req: Message, ctx: HandlerContext) => {
        try {
          const result = await route.handle(toServerCall(route, req, ctx));
          if (result.kind !== "unary") throw new Error("stream result for a unary method");
          return result.message;
        } catch (err) {
          throw toConnectError(err, route, report);
        }
      };
    }
    impls.set(route.service, impl);
  }
  return impls;
}

/** A Node request handler for http/https/http2 servers. */
export function createConnectHandler(routes: readonly Route[], report: ErrorReporter, options: ConnectAdapterOptions = {}) {
  const impls = implFor(routes, report);
  return connectNodeAdapter({
    routes(router: ConnectRouter) {
      for (const [service, impl] of impls) router.service(service, impl as ServiceImpl<DescService>);
    },
    connect: true,
    grpc: options.grpc ?? false,
    grpcWeb: false,
    // connect-node's default limit is ~4 GiB; keep the gRPC default of 4 MiB.
    readMaxBytes: options.readMaxBytes ?? 4 * 1024 * 1024,
    ...(options.shutdownSignal ? { shutdownSignal: options.shutdownSignal } : {}),
    contextValues: (req) => createContextValues().set(peerKey, peerOf(req)),
  });
}
