/**
 * The only places the server leans on grpc-js (or Node) beyond their public
 * API, each checked when the listener starts so a changed internal makes the
 * server refuse to serve instead of silently losing a guard.
 *
 * 1. The HTTP/2 server behind a connection injector. grpc-js creates it in
 *    createConnectionInjector and exposes neither it nor a hook on its
 *    'stream' event; server interceptors run only after grpc-js has parsed the
 *    headers (and printed bad ones to stderr). Our request guard and the
 *    header-list cap need that server, so we find it in the private
 *    `http2Servers` map: the one entry the injector added.
 * 2. The guard runs before grpc-js on every stream: grpc-js's 'stream'
 *    listener is taken off and called by ours, only for admitted streams
 *    (EventEmitter has no way to stop later listeners). Checked: grpc-js
 *    registers exactly one.
 * 3. getPeerCertificate memo: grpc-js's public getAuthContext() calls the
 *    socket's getPeerCertificate() on every call (~13% of server CPU in the
 *    full-chain profile). TLS 1.3 has no renegotiation, so the certificate of a
 *    connection never changes; caching it per socket is safe. No grpc-js
 *    private field is read; if grpc-js stopped calling it, only the saving
 *    would be lost, never correctness.
 */
import type * as http2 from "node:http2";
import type * as tls from "node:tls";
import * as grpc from "@grpc/grpc-js";

type StreamListener = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;

const INTERNALS_CHANGED = "grpc-js internals changed: cannot install the HTTP/2 guards; refusing to serve";

export interface GrpcInjection {
  readonly injector: grpc.ConnectionInjector;
  /** The HTTP/2 server grpc-js hands injected connections to. */
  readonly http2Server: http2.Http2Server;
  /** grpc-js's own 'stream' listener, now detached: call it for every stream the guard admits. */
  readonly grpcStreamListener: StreamListener;
}

function http2ServersOf(server: grpc.Server): Map<unknown, unknown> | undefined {
  const map = (server as unknown as { http2Servers?: unknown }).http2Servers;
  return map instanceof Map ? map : undefined;
}

/**
 * Creates the connection injector and takes over its HTTP/2 server's 'stream'
 * event (self-test: throws if grpc-js's internals are not as expected).
 */
export function injectWithStreamGuard(grpcServer: grpc.Server): GrpcInjection {
  const servers = http2ServersOf(grpcServer);
  if (!servers) throw new Error(INTERNALS_CHANGED);
  const before = new Set(servers.keys());
  const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const created = [...(http2ServersOf(grpcServer)?.keys() ?? [])].filter((s) => !before.has(s));
  const candidate = created[0] as Partial<http2.Http2Server> | undefined;
  if (
    created.length !== 1 ||
    typeof candidate?.listeners !== "function" ||
    typeof candidate.updateSettings !== "function" ||
    typeof candidate.removeListener !== "function"
  ) {
    injector.destroy();
    throw new Error(INTERNALS_CHANGED);
  }
  const http2Server = candidate as http2.Http2Server;
  const listeners = http2Server.listeners("stream");
  if (listeners.length !== 1) {
    injector.destroy();
    throw new Error(INTERNALS_CHANGED);
  }
  const grpcStreamListener = listeners[0] as StreamListener;
  http2Server.removeListener("stream", grpcStreamListener);
  return { injector, http2Server, grpcStreamListener };
}

/** See 3. above. */
export function memoizePeerCertificate(socket: tls.TLSSocket): void {
  const read = socket.getPeerCertificate.bind(socket);
  let cached: tls.PeerCertificate | undefined;
  socket.getPeerCertificate = ((detailed?: boolean) => {
    if (detailed) return read(true);
    return (cached ??= read(false));
  }) as typeof socket.getPeerCertificate;
}
