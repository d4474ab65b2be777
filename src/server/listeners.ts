/**
 * The sockets: an mTLS listener whose connections are handed to grpc-js (gRPC)
 * and, optionally, an mTLS HTTP/2 + HTTP/1.1 listener for the Connect
 * protocol (connect-node). Both reload their certificate, key and trust roots
 * when the material changes; new connections use the new material, and a
 * connection age cap makes old ones go away.
 */
import * as http2 from "node:http2";
import * as tls from "node:tls";
import type { AddressInfo, Server as NetServer } from "node:net";
import * as grpc from "@grpc/grpc-js";
import type { MaterialSource } from "../identity/material.ts";
import type { Logger } from "../observability/logger.ts";
import { mtlsServerOptions, secureContextOptions } from "./tls-options.ts";

export interface Listener {
  readonly port: number;
  /** Stops accepting; existing connections get GOAWAY and up to graceMs to finish. */
  close(graceMs: number): Promise<void>;
}

function listen(server: NetServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * TLS 1.3 has no renegotiation, so a connection's peer certificate never
 * changes: read it once instead of on every call (the per-call
 * getPeerCertificate() was ~13% of server CPU in the full-chain profile).
 */
function memoizePeerCertificate(socket: tls.TLSSocket): void {
  const read = socket.getPeerCertificate.bind(socket);
  let cached: tls.PeerCertificate | undefined;
  socket.getPeerCertificate = ((detailed?: boolean) => {
    if (detailed) return read(true);
    return (cached ??= read(false));
  }) as typeof socket.getPeerCertificate;
}

function reloadOnChange(server: tls.Server, material: MaterialSource, logger: Logger): () => void {
  return material.onChange((m) => {
    server.setSecureContext(secureContextOptions(m));
    logger.info({ notAfter: m.workload.notAfter.toISOString() }, "TLS material reloaded");
  });
}

function logHandshakeFailures(server: tls.Server, logger: Logger): void {
  server.on("tlsClientError", (err, socket) => {
    logger.warn({ peer: `${socket.remoteAddress}:${socket.remotePort}`, reason: err.message }, "TLS handshake rejected");
  });
}

/**
 * What every mTLS listener does, in one place: log handshake failures, reload
 * certificate/key/roots when the material changes, and prepare each verified
 * (or unverified) connection. Returns the per-socket hook and the unsubscribe.
 */
function hardenTlsServer(server: tls.Server, material: MaterialSource, logger: Logger) {
  logHandshakeFailures(server, logger);
  return {
    prepare(socket: tls.TLSSocket): void {
      memoizePeerCertificate(socket);
      guardUnverified(socket, logger);
    },
    unsubscribe: reloadOnChange(server, material, logger),
  };
}

/** How long a connection whose client certificate failed verification is kept: long enough to say why. */
const UNVERIFIED_CONNECTION_MS = 5_000;

/**
 * A client certificate that fails chain verification (unknown CA, expired)
 * would make Node drop the connection without a TLS alert, leaving the client
 * with a retryable "connection failed". Instead the connection is kept briefly:
 * it carries no verified identity, so every call on it is refused with
 * UNAUTHENTICATED (the security interceptor), and the reason is logged here.
 */
function guardUnverified(socket: tls.TLSSocket, logger: Logger): void {
  if (socket.authorized) return;
  logger.warn(
    { peer: `${socket.remoteAddress}:${socket.remotePort}`, reason: String(socket.authorizationError ?? "no client certificate") },
    "client certificate not verified: every call on this connection is refused",
  );
  setTimeout(() => socket.destroy(), UNVERIFIED_CONNECTION_MS).unref();
}

/**
 * Node's HTTP/2 layer treats `authorization` as single-valued and silently
 * keeps the first of several fields, so "exactly one authorization value"
 * could not be enforced. The raw header list still has them all: put every
 * value back, comma-joined, where the security interceptor counts them.
 */
function preserveRepeatedAuthorization(server: http2.Http2Server): void {
  server.prependListener("stream", (_stream, headers, _flags, rawHeaders: string[] | undefined) => {
    if (!rawHeaders) return;
    let values: string[] | undefined;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      if (rawHeaders[i] === "authorization") (values ??= []).push(rawHeaders[i + 1]!);
    }
    if (values && values.length > 1) headers.authorization = values.join(", ");
  });
}

/** The HTTP/2 server grpc-js creates for an injector (not public API: fail closed if it changes). */
function injectorHttp2Server(grpcServer: grpc.Server, before: ReadonlySet<unknown>): http2.Http2Server {
  const servers = (grpcServer as unknown as { http2Servers?: Map<unknown, unknown> }).http2Servers;
  const created = servers ? [...servers.keys()].filter((s) => !before.has(s)) : [];
  const candidate = created[0] as { prependListener?: unknown; listen?: unknown } | undefined;
  if (created.length !== 1 || typeof candidate?.prependListener !== "function" || typeof candidate.listen !== "function") {
    throw new Error("grpc-js internals changed: cannot install the repeated-authorization guard; refusing to serve");
  }
  return created[0] as http2.Http2Server;
}

/** gRPC over mTLS: we own the TLS server (TLS 1.3, reload), grpc-js owns HTTP/2 and gRPC. */
export async function listenGrpc(opts: {
  grpcServer: grpc.Server;
  material: MaterialSource;
  host: string;
  port: number;
  logger: Logger;
}): Promise<Listener> {
  const internals = (opts.grpcServer as unknown as { http2Servers?: Map<unknown, unknown> }).http2Servers;
  const before = new Set(internals?.keys() ?? []);
  const injector = opts.grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  preserveRepeatedAuthorization(injectorHttp2Server(opts.grpcServer, before));
  const server = tls.createServer(mtlsServerOptions(opts.material.current(), ["h2"]));
  const { prepare, unsubscribe } = hardenTlsServer(server, opts.material, opts.logger);
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    socket.on("error", () => {}); // reset by peer etc.; grpc-js reports call-level errors
    prepare(socket);
    injector.injectConnection(socket);
  });
  const port = await listen(server, opts.host, opts.port);
  return {
    port,
    close(graceMs) {
      unsubscribe();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        injector.drain(graceMs);
        // tls.Server.close waits for every socket; drain() destroys stragglers after graceMs.
        setTimeout(() => {
          injector.destroy();
          resolve();
        }, graceMs + 50).unref();
      });
    },
  };
}

/** The Connect protocol (and gRPC for the benchmark) over mTLS, served by connect-node. */
export async function listenConnect(opts: {
  handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
  material: MaterialSource;
  host: string;
  port: number;
  logger: Logger;
  maxConnectionAgeMs: number;
}): Promise<Listener> {
  const server = http2.createSecureServer({ ...mtlsServerOptions(opts.material.current(), ["h2", "http/1.1"]), allowHTTP1: true }, opts.handler);
  const { prepare, unsubscribe } = hardenTlsServer(server, opts.material, opts.logger);
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<tls.TLSSocket>();
  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    // Connection age cap: GOAWAY after maxConnectionAgeMs so rotated identities and new pods take over.
    const age = setTimeout(() => session.close(), opts.maxConnectionAgeMs);
    age.unref();
    session.once("close", () => {
      clearTimeout(age);
      sessions.delete(session);
    });
  });
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    prepare(socket);
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  const port = await listen(server, opts.host, opts.port);
  return {
    port,
    close(graceMs) {
      unsubscribe();
      return new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          for (const s of sessions) s.destroy();
          for (const s of sockets) s.destroy();
          resolve();
        }, graceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        for (const s of sessions) s.close();
        // HTTP/1.1 keep-alive sockets have no GOAWAY: end them.
        for (const s of sockets) if (!s.alpnProtocol || s.alpnProtocol === "http/1.1") s.end();
      });
    },
  };
}
