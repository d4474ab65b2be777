/**
 * The sockets: an mTLS listener whose connections are handed to grpc-js (gRPC)
 * and, optionally, an mTLS HTTP/2 + HTTP/1.1 listener for the Connect
 * protocol (connect-node). Both reload their certificate, key and trust roots
 * when the material changes; new connections use the new material, and a
 * connection age cap makes old ones go away.
 */
import * as http2 from "node:http2";
import * as tls from "node:tls";
import * as net from "node:net";
import type { AddressInfo, Server as NetServer } from "node:net";
import type * as grpc from "@grpc/grpc-js";
import type { MaterialSource } from "../identity/material.ts";
import type { Logger } from "../observability/logger.ts";
import { injectWithStreamGuard, memoizePeerCertificate } from "./grpc-internals.ts";
import { guardGrpcStreams } from "./http2-guard.ts";
import { DEFAULT_LISTENER_LIMITS, type ListenerLimits } from "./limits.ts";
import { throttledWarn } from "../observability/log-throttle.ts";
import { mtlsServerOptions, secureContextOptions } from "./tls-options.ts";
import { refusePlaintext } from "./plaintext-refusal.ts";

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

function reloadOnChange(server: tls.Server, material: MaterialSource, logger: Logger): () => void {
  return material.onChange((m) => {
    server.setSecureContext(secureContextOptions(m));
    logger.info({ notAfter: m.workload.notAfter.toISOString() }, "TLS material reloaded");
  });
}

/**
 * A failed handshake (no certificate, untrusted/expired/not-yet-valid chain, no
 * clientAuth purpose, timeout, garbage) is logged with the verification error
 * and the socket is closed: Node reports a handshake timeout but leaves the
 * socket open. A peer can trigger this at will, so the log is rate-limited.
 */
function closeFailedHandshakes(server: tls.Server, warn: ReturnType<typeof throttledWarn>): void {
  // Node destroys a refused TLS socket before 'tlsClientError', and with it the address; the TCP
  // socket underneath keeps it once asked (Node caches the peer name), so ask on accept.
  server.on("connection", (raw: net.Socket) => void raw.remoteAddress);
  server.on("tlsClientError", (err, socket) => {
    // Node verifies the chain after OpenSSL's handshake and then just closes; the reason is on the socket.
    const reason = socket.authorizationError ? String(socket.authorizationError) : err.message;
    warn({ peer: handshakePeer(socket), reason });
    socket.destroy();
  });
}

/**
 * "ip:port" of a TLS socket, also after Node destroyed it. The TCP socket it
 * wraps is `_parent`, not public API: it is read for this log line only, and
 * if Node renames it the line says "unknown", nothing else changes.
 */
function handshakePeer(socket: tls.TLSSocket): string {
  const raw = (socket as unknown as { _parent?: unknown })._parent;
  const address = socket.remoteAddress ?? (raw instanceof net.Socket ? raw.remoteAddress : undefined);
  const port = socket.remotePort ?? (raw instanceof net.Socket ? raw.remotePort : undefined);
  return address === undefined ? "unknown" : `${address}:${port}`;
}

const TLS_HANDSHAKE_RECORD = 0x16;

/**
 * Looks at a connection's first bytes before TLS sees them: a TLS handshake
 * record goes on to the TLS server; anything else is a plaintext client that
 * is told TLS is required and closed (plaintext-refusal.ts), instead of a
 * silent close it would retry until its timeout. Replaces the
 * TLS server's own connection listener (Node documents injecting connections
 * into a tls.Server); runs once per connection, never per call.
 */
function requireTls(server: tls.Server, logger: Logger, handshakeTimeoutMs: number, handshakeRejected: ReturnType<typeof throttledWarn>): void {
  const tlsListeners = server.listeners("connection") as ((socket: net.Socket) => void)[];
  server.removeAllListeners("connection");
  const warn = throttledWarn(logger, "plaintext connection refused: TLS required");
  server.on("connection", (socket: net.Socket) => {
    // Nothing at all before the handshake timeout: closed, as a stalled handshake would be.
    socket.setTimeout(handshakeTimeoutMs, () => {
      handshakeRejected({ peer: `${socket.remoteAddress}:${socket.remotePort}`, reason: `no TLS handshake within ${handshakeTimeoutMs} ms` });
      socket.destroy();
    });
    socket.on("error", () => {});
    socket.once("data", (chunk: Buffer) => {
      socket.pause();
      socket.setTimeout(0);
      if (chunk[0] === TLS_HANDSHAKE_RECORD) {
        socket.unshift(chunk);
        for (const listener of tlsListeners) listener.call(server, socket);
        return;
      }
      warn({ peer: `${socket.remoteAddress}:${socket.remotePort}` });
      refusePlaintext(socket, chunk);
    });
  });
}

/** At most maxConnections TCP connections per listener; Node closes further ones on accept. */
function capConnections(server: tls.Server, maxConnections: number, logger: Logger): void {
  server.maxConnections = maxConnections;
  const warn = throttledWarn(logger, "connection refused: listener at its connection cap");
  server.on("drop", (data?: { remoteAddress?: string; remotePort?: number }) => {
    warn({ peer: `${data?.remoteAddress}:${data?.remotePort}`, maxConnections });
  });
}

/**
 * What every mTLS listener does, in one place: answer plaintext clients that
 * TLS is required, refuse and log failed handshakes, cap connections, reload certificate/key/roots when the material
 * changes, and prepare each verified connection. Returns the per-socket hook
 * and the unsubscribe.
 */
function hardenTlsServer(server: tls.Server, material: MaterialSource, logger: Logger, limits: ListenerLimits) {
  const handshakeRejected = throttledWarn(logger, "TLS handshake rejected");
  requireTls(server, logger, limits.handshakeTimeoutMs, handshakeRejected);
  closeFailedHandshakes(server, handshakeRejected);
  capConnections(server, limits.maxConnections, logger);
  return { prepare: memoizePeerCertificate, unsubscribe: reloadOnChange(server, material, logger) };
}

/** gRPC over mTLS: we own the TLS server (TLS 1.3, reload), grpc-js owns HTTP/2 and gRPC. */
export async function listenGrpc(opts: {
  grpcServer: grpc.Server;
  material: MaterialSource;
  host: string;
  port: number;
  logger: Logger;
  /** Paths of the methods grpcServer serves ("/pkg.Service/Method"); any other is refused by the guard. */
  methods: ReadonlySet<string>;
  /** grpcServer's grpc.max_receive_message_length: a longer message is refused by the guard. */
  maxMessageBytes?: number;
  limits?: ListenerLimits;
}): Promise<Listener> {
  const limits = opts.limits ?? DEFAULT_LISTENER_LIMITS;
  const { injector, http2Server, grpcStreamListener } = injectWithStreamGuard(opts.grpcServer);
  guardGrpcStreams(http2Server, grpcStreamListener, opts.logger, opts.methods, limits.streamIdleTimeoutMs, opts.maxMessageBytes ?? Infinity);
  // grpc-js has no option for it (grpc.max_metadata_size is not read by grpc-js): set it on its HTTP/2 server.
  http2Server.updateSettings({ maxHeaderListSize: limits.maxHeaderListSize });
  const server = tls.createServer(mtlsServerOptions(opts.material.current(), ["h2"], limits.handshakeTimeoutMs));
  const { prepare, unsubscribe } = hardenTlsServer(server, opts.material, opts.logger, limits);
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

function destroyIdleSocket(this: tls.TLSSocket): void {
  this.destroy();
}

function cancelIdleStream(this: http2.ServerHttp2Stream): void {
  this.close(http2.constants.NGHTTP2_CANCEL);
}

/** The Connect protocol (and gRPC for the benchmark) over mTLS, served by connect-node. */
export async function listenConnect(opts: {
  handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
  material: MaterialSource;
  host: string;
  port: number;
  logger: Logger;
  maxConnectionAgeMs: number;
  limits?: ListenerLimits;
}): Promise<Listener> {
  const limits = opts.limits ?? DEFAULT_LISTENER_LIMITS;
  const server = http2.createSecureServer(
    {
      ...mtlsServerOptions(opts.material.current(), ["h2", "http/1.1"], limits.handshakeTimeoutMs),
      allowHTTP1: true,
      settings: { maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderListSize },
      maxSendHeaderBlockLength: limits.maxHeaderListSize,
    },
    opts.handler,
  );
  const { prepare, unsubscribe } = hardenTlsServer(server, opts.material, opts.logger, limits);
  // A stream (request body, response) with no frames either way for streamIdleTimeoutMs is reset.
  server.on("stream", (stream: http2.ServerHttp2Stream) => stream.setTimeout(limits.streamIdleTimeoutMs, cancelIdleStream));
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
    // HTTP/1.1 has no streams: the same idle bound applies to the connection.
    if (socket.alpnProtocol !== "h2") socket.setTimeout(limits.streamIdleTimeoutMs, destroyIdleSocket);
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
