/**
 * createServer: one process serving one or more contracts over gRPC (grpc-js)
 * and, optionally, the Connect protocol (connect-node) on a second port, from
 * the same handlers and the same interceptor chain.
 */
import * as grpc from "@grpc/grpc-js";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { Logger } from "../observability/logger.ts";
import { createLogger } from "../observability/logger.ts";
import type { ServerInterceptor } from "./call.ts";
import { createConnectHandler } from "./connect-adapter.ts";
import type { ErrorReporter } from "./errors.ts";
import { registerGrpcRoutes } from "./grpc-js-adapter.ts";
import { buildRoutes, type ServiceRegistration } from "./routes.ts";

/** TLS material for a listener (PEM). */
export interface ServerTls {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** Trust roots for client certificates; with it, client certificates are required. */
  readonly ca?: string | Buffer;
}

export interface ServerOptions {
  readonly services: readonly ServiceRegistration[];
  readonly host?: string;
  /** gRPC port; 0 picks a free one. */
  readonly port: number;
  /** TLS for every listener, or "plaintext" (explicit, for local debugging only). */
  readonly tls: ServerTls | "plaintext";
  /** Also serve the Connect protocol (JSON for curl) on this port. */
  readonly connectPort?: number;
  readonly interceptors?: readonly ServerInterceptor[];
  readonly logger?: Logger;
  /** Close connections older than this (new certificates and new pods get traffic). */
  readonly maxConnectionAgeMs?: number;
  /** Which stack serves gRPC: grpc-js (default, chosen by measurement) or connect-node. */
  readonly grpcStack?: "grpc-js" | "connect-node";
}

export interface RpcServer {
  /** Bound gRPC port. */
  readonly port: number;
  /** Bound Connect-protocol port, if enabled. */
  readonly connectPort: number | undefined;
  /** Stops accepting calls, lets in-flight calls finish for up to graceMs, then cancels the rest. */
  stop(graceMs?: number): Promise<void>;
}

export async function createServer(options: ServerOptions): Promise<RpcServer> {
  const logger = options.logger ?? createLogger();
  const shutdown = new AbortController();
  const report: ErrorReporter = ({ route, error }) =>
    logger.error({ err: error, method: route.contract.path }, "handler failed with a non-RPC error");
  const routes = buildRoutes(options.services, options.interceptors ?? []);
  const host = options.host ?? "127.0.0.1";
  const stack = options.grpcStack ?? "grpc-js";

  let grpcServer: grpc.Server | undefined;
  let h2GrpcServer: http2.Http2Server | http2.Http2SecureServer | undefined;
  let port: number;
  if (stack === "grpc-js") {
    grpcServer = new grpc.Server({
      "grpc.max_connection_age_ms": options.maxConnectionAgeMs ?? 60 * 60 * 1000,
      "grpc.max_connection_age_grace_ms": 30_000,
    });
    registerGrpcRoutes(grpcServer, routes, shutdown.signal, report);
    const creds =
      options.tls === "plaintext"
        ? grpc.ServerCredentials.createInsecure()
        : grpc.ServerCredentials.createSsl(
            options.tls.ca ? Buffer.from(options.tls.ca) : null,
            [{ cert_chain: Buffer.from(options.tls.cert), private_key: Buffer.from(options.tls.key) }],
            options.tls.ca !== undefined,
          );
    port = await new Promise<number>((resolve, reject) =>
      grpcServer!.bindAsync(`${host}:${options.port}`, creds, (err, p) => (err ? reject(err) : resolve(p))),
    );
  } else {
    const handler = createConnectHandler(routes, report, { grpc: true, shutdownSignal: shutdown.signal });
    h2GrpcServer = listenerFor(options.tls, handler);
    port = await listen(h2GrpcServer, host, options.port);
  }

  let connectServer: AnyListener | undefined;
  let connectPort: number | undefined;
  if (options.connectPort !== undefined) {
    const handler = createConnectHandler(routes, report, { shutdownSignal: shutdown.signal });
    // Plaintext Connect (debug only) is HTTP/1.1 so that plain curl works; with TLS, ALPN offers h2 and http/1.1.
    connectServer = options.tls === "plaintext" ? trackHttp1(http.createServer(handler)) : listenerFor(options.tls, handler);
    connectPort = await listen(connectServer, host, options.connectPort);
  }
  logger.info({ port, connectPort, stack, services: options.services.map((s) => s.contract.service.typeName) }, "rpc server listening");

  return {
    port,
    connectPort,
    async stop(graceMs = 10_000) {
      const closing: Promise<void>[] = [];
      if (grpcServer) {
        const srv = grpcServer;
        closing.push(
          new Promise<void>((resolve) => {
            const force = setTimeout(() => {
              shutdown.abort();
              srv.forceShutdown();
              resolve();
            }, graceMs);
            srv.tryShutdown(() => {
              clearTimeout(force);
              resolve();
            });
          }),
        );
      }
      for (const s of [h2GrpcServer, connectServer]) if (s) closing.push(closeHttp2(s, graceMs, shutdown));
      await Promise.all(closing);
      shutdown.abort();
    },
  };
}

type AnyListener = http2.Http2Server | http2.Http2SecureServer | http.Server;

const sessionsOf = new WeakMap<AnyListener, Set<{ close(): void; destroy(): void }>>();

function trackHttp1(server: http.Server): http.Server {
  const sockets = new Set<{ close(): void; destroy(): void }>();
  sessionsOf.set(server, sockets);
  server.on("connection", (socket) => {
    const entry = { close: () => server.closeIdleConnections(), destroy: () => socket.destroy() };
    sockets.add(entry);
    socket.once("close", () => sockets.delete(entry));
  });
  return server;
}

function trackSessions<T extends http2.Http2Server | http2.Http2SecureServer>(server: T): T {
  const sessions = new Set<http2.ServerHttp2Session>();
  sessionsOf.set(server, sessions as Set<{ close(): void; destroy(): void }>);
  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  return server;
}

function listenerFor(
  tls: ServerTls | "plaintext",
  handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
): http2.Http2Server | http2.Http2SecureServer {
  if (tls === "plaintext") return trackSessions(http2.createServer(handler));
  return trackSessions(http2.createSecureServer(
    {
      cert: tls.cert,
      key: tls.key,
      ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
      allowHTTP1: true,
      minVersion: "TLSv1.3",
    },
    handler,
  ));
}

function listen(server: AnyListener, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeHttp2(server: AnyListener, graceMs: number, shutdown: AbortController): Promise<void> {
  const sessions = sessionsOf.get(server) ?? new Set();
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      shutdown.abort();
      for (const s of sessions) s.destroy();
      resolve();
    }, graceMs);
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    // GOAWAY: in-flight streams finish, no new ones start.
    for (const s of sessions) s.close();
  });
}
