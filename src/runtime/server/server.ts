/**
 * createServer: one process serving one or more contracts over gRPC with
 * mTLS (grpc-js, chosen by measurement) and, optionally, the Connect protocol
 * (connect-node) on a second mTLS port, from the same handlers and the same
 * interceptor chain: logging -> security (peer certificate, call token,
 * context token, contract authorization, tenant) -> dedupe (keyed methods)
 * -> your interceptors -> handler. Health, reflection and the admin RPC are served too, under the same security.
 * There is no plaintext mode and no way to turn authentication off.
 */
import * as grpc from "@grpc/grpc-js";
import type { MaterialSource } from "../identity/material.ts";
import { Code, ConnectError } from "@connectrpc/connect";
import { createLogger, flushLogger, type Logger } from "../observability/logger.ts";
import type { ServerInterceptor } from "../contract/call.ts";
import { createConnectHandler } from "./connect-adapter.ts";
import type { ErrorReporter } from "./errors.ts";
import { grpcStatusGuard, registerGrpcRoutes } from "./grpc-js-adapter.ts";
import { createHealth, type HealthService } from "./health.ts";
import { listenConnect, listenGrpc, type Listener } from "./listeners.ts";
import { listenerLimits, type ListenerLimits } from "./limits.ts";
import { loggingInterceptor, rejectedCallLogger } from "./logging-interceptor.ts";
import { combineCallObservers, type CallObserver } from "../telemetry/call-observer.ts";
import { createReflection } from "./reflection.ts";
import { buildRoutes, type Route, type ServiceRegistration } from "./routes.ts";
import { createCallAuthenticator, securityInterceptor } from "./security-interceptor.ts";
import { dedupeInterceptor } from "./dedupe.ts";
import { createMemoryDedupeStore, type DedupeStore } from "../resilience/dedupe-store.ts";
import { createAdminService } from "./admin.ts";
import { resilienceRegistry } from "../resilience/registry.ts";
import type { BreakerAdmin } from "../resilience/breaker-admin.ts";
import { createReplayCache, type ReplayCache } from "../auth/replay-cache.ts";
import { defaultMetrics, type Metrics } from "../telemetry/metrics.ts";
import { activeTracer, serverTracingInterceptor } from "../telemetry/tracing.ts";
import { startOpsServer, type OpsOptions, type OpsServer, type ReadinessCheck } from "./ops-server.ts";
import { isServiceName, type ServiceName } from "../identity/workloads.ts";
import { resolveMaxMessageBytes } from "../wire/message-size.ts";

export interface ServerOptions {
  readonly services: readonly ServiceRegistration[];
  /** This workload's certificate, key, JWT keys and trust bundle (required: fail closed). */
  readonly identity: MaterialSource;
  readonly host?: string;
  /** gRPC port; 0 picks a free one. */
  readonly port: number;
  /** Also serve the Connect protocol (JSON for curl) on this port, same mTLS. */
  readonly connectPort?: number;
  /** Run after the framework's security chain, before the handler. */
  readonly interceptors?: readonly ServerInterceptor[];
  readonly logger?: Logger;
  /** GOAWAY connections older than this (default 1 h), so rotated certificates and new pods take over. */
  readonly maxConnectionAgeMs?: number;
  /** Serve grpc.reflection.v1/v1alpha (operators only). Default true. */
  readonly reflection?: boolean;
  /** Shared replay cache (e.g. Redis-backed for money-moving methods across instances). */
  readonly replayCache?: ReplayCache;
  /** Observes every finished call (metrics). */
  readonly observe?: CallObserver;
  /** Responses of calls with an idempotency key (default: bounded in-memory, 24 h). */
  readonly dedupeStore?: DedupeStore;
  /** Circuit breakers the admin RPC lists and resets (default: this process's resilience registry, shared by its generated clients). */
  readonly breakers?: BreakerAdmin;
  /** Which stack serves gRPC: grpc-js (default, chosen by measurement) or connect-node (benchmarks). */
  readonly grpcStack?: "grpc-js" | "connect-node";
  /** Per-listener resource bounds (connections, handshake time, streams, header size, idle streams); see limits.ts for defaults. */
  readonly limits?: Partial<ListenerLimits>;
  /** Where call, auth-failure and store-size metrics go (default: this process's, on prom-client's default registry). */
  readonly metrics?: Metrics;
  /** Serve /metrics, /healthz and /readyz on a plain-HTTP ops port (default host 127.0.0.1). */
  readonly ops?: OpsOptions;
  /** Largest message received or sent, on every port (default TT_RPC_MAX_MESSAGE_BYTES, else 4 MiB); over it: RESOURCE_EXHAUSTED. */
  readonly maxMessageBytes?: number;
  /** stop() reports NOT_SERVING and keeps serving this long before it stops accepting (default 0; `tt-rpc serve` uses 5 s). */
  readonly drainDelayMs?: number;
}

export interface RpcServer {
  /** Bound gRPC port. */
  readonly port: number;
  /** Bound Connect-protocol port, if enabled. */
  readonly connectPort: number | undefined;
  /** Bound ops (HTTP) port, if enabled. */
  readonly opsPort: number | undefined;
  readonly health: HealthService;
  /**
   * Drains in order: reports NOT_SERVING (health and /readyz) and keeps serving for delayMs (default
   * options.drainDelayMs), then stops accepting (GOAWAY), ends health Watch streams with UNAVAILABLE, lets
   * in-flight calls finish for up to graceMs, ends what remains with UNAVAILABLE, and flushes the logs.
   */
  stop(graceMs?: number, delayMs?: number): Promise<void>;
}

/** After the grace, how long calls ended with UNAVAILABLE get to send that status before their sockets are destroyed. */
const CANCEL_FLUSH_MS = 200;

export async function createServer(options: ServerOptions): Promise<RpcServer> {
  const material = options.identity;
  const self = material.current().workload;
  if (!isServiceName(self.workload)) throw new Error(`a server must run as a service identity, not ${self.workload}`);
  const host: ServiceName = self.workload;
  const logger = (options.logger ?? createLogger()).child({ service: host });
  const shutdown = new AbortController();
  const report: ErrorReporter = ({ route, error, downstream }) =>
    downstream
      ? logger.warn({ err: error, method: route.contract.path, target: downstream.target }, "handler failed: a call to a dependency failed")
      : logger.error({ err: error, method: route.contract.path }, "handler failed with a non-RPC error");

  const health = createHealth();
  // Each served contract answers by its own name too (grpc.health.v1 per-service check), beside the server's "".
  for (const { contract } of options.services) health.setStatus(contract.service.typeName, "SERVING");
  const served = [...options.services, health.registration(host), createAdminService(options.breakers ?? resilienceRegistry()).registration(host)];
  if (options.reflection ?? true) {
    served.push(...createReflection(served.map((s) => s.contract.service), options.services.map((s) => s.contract.sourceInfo)).registrations(host));
  }
  const metrics = options.metrics ?? defaultMetrics();
  const replayCache = options.replayCache ?? createReplayCache();
  const dedupeStore = options.dedupeStore ?? createMemoryDedupeStore();
  // Metrics first: a throwing observer of the caller's cannot skip them (and leave a call counted in flight).
  const observe = combineCallObservers(metrics.server, options.observe);
  const authenticator = createCallAuthenticator({ material, logger, replayCache });
  // Asked once: with no OpenTelemetry SDK registered no span is ever made.
  const tracer = activeTracer();
  const interceptors: ServerInterceptor[] = [
    ...(tracer ? [serverTracingInterceptor(tracer)] : []),
    loggingInterceptor(logger, observe),
    securityInterceptor(authenticator, logger),
    dedupeInterceptor(dedupeStore, logger),
    ...(options.interceptors ?? []),
  ];
  const routes = buildRoutes(served, interceptors);
  // The Connect port refuses unauthenticated calls before the chain (and its logging) runs: same rpc line, same observe event.
  const onRejected = rejectedCallLogger(logger, observe);
  const bind = options.host ?? "127.0.0.1";
  const maxConnectionAgeMs = options.maxConnectionAgeMs ?? 60 * 60 * 1000;
  const limits = listenerLimits(options.limits);
  const maxMessageBytes = resolveMaxMessageBytes(options.maxMessageBytes, process.env);

  const listeners: Listener[] = [];
  let grpcServer: grpc.Server | undefined;
  let ops: OpsServer | undefined;
  // Ready from the moment every listener is up until drain starts.
  let serving = false;
  try {
    if ((options.grpcStack ?? "grpc-js") === "grpc-js") {
      grpcServer = new grpc.Server({
        "grpc.max_connection_age_ms": maxConnectionAgeMs,
        "grpc.max_connection_age_grace_ms": 30_000,
        "grpc.max_receive_message_length": maxMessageBytes,
        "grpc.max_send_message_length": maxMessageBytes,
        "grpc.max_concurrent_streams": limits.maxConcurrentStreams,
        interceptors: [grpcStatusGuard],
      });
      registerGrpcRoutes(grpcServer, routes, shutdown.signal, report, maxMessageBytes);
      const methods = new Set(routes.map((r) => r.contract.path));
      listeners.push(
        await listenGrpc({ grpcServer, material, host: bind, port: options.port, logger, methods, maxMessageBytes, limits }),
      );
    } else {
      const handler = createConnectHandler(routes, report, { grpc: true, authenticator, onRejected, shutdownSignal: shutdown.signal, maxMessageBytes });
      listeners.push(await listenConnect({ handler, material, host: bind, port: options.port, logger, maxConnectionAgeMs, limits }));
    }
    if (options.connectPort !== undefined) {
      const handler = createConnectHandler(routes, report, { authenticator, onRejected, shutdownSignal: shutdown.signal, maxMessageBytes });
      listeners.push(await listenConnect({ handler, material, host: bind, port: options.connectPort, logger, maxConnectionAgeMs, limits }));
    }
    if (options.ops) {
      const builtIn: ReadinessCheck[] = [
        { name: "listeners", check: () => serving },
        // The material in use is valid until its certificate expires (a stuck rotation shows here).
        { name: "identity", check: () => material.current().workload.notAfter.getTime() > Date.now() },
      ];
      ops = await startOpsServer({ ...options.ops, readiness: [...builtIn, ...(options.ops.readiness ?? [])], registry: metrics.registry, logger });
    }
  } catch (err) {
    await Promise.all(listeners.map((l) => l.close(0)));
    grpcServer?.forceShutdown();
    throw err;
  }
  const [grpcListener, connectListener] = listeners;
  serving = true;
  // Sizes are read at scrape time, from the stores that expose them (the in-memory defaults do).
  const untrack = [metrics.trackStore("replay_cache", replayCache), metrics.trackStore("dedupe_store", dedupeStore)];
  logger.info({ port: grpcListener!.port, connectPort: connectListener?.port, spiffeId: self.spiffeId }, "rpc server listening");

  let stopping: Promise<void> | undefined;
  return {
    port: grpcListener!.port,
    connectPort: options.connectPort !== undefined ? connectListener?.port : undefined,
    opsPort: ops?.port,
    health,
    stop(graceMs = 10_000, delayMs = options.drainDelayMs ?? 0) {
      stopping ??= (async () => {
        // 1. Out of rotation at once (health NOT_SERVING, /readyz 503), while still serving: load balancers
        //    and health-checking clients need a moment to notice before connections are refused.
        serving = false;
        health.setAllNotServing();
        logger.info({ delayMs, graceMs }, "draining: reporting NOT_SERVING");
        if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
        // 2. Stop accepting (listeners close, GOAWAY on every connection) and end Watch streams with a status;
        //    in-flight unary and streaming calls run on for up to graceMs.
        health.endWatches();
        // 3. At the grace, what still runs ends with UNAVAILABLE; sockets are destroyed only after a short
        //    window in which those statuses reach the callers (not a bare RST_STREAM).
        const force = setTimeout(() => shutdown.abort(new ConnectError("server shutting down", Code.Unavailable)), graceMs);
        force.unref();
        const socketGraceMs = graceMs + CANCEL_FLUSH_MS;
        await Promise.all([
          ...listeners.map((l) => l.close(socketGraceMs)),
          grpcServer
            ? new Promise<void>((resolve) => {
                const t = setTimeout(() => {
                  grpcServer!.forceShutdown();
                  resolve();
                }, socketGraceMs);
                t.unref();
                grpcServer!.tryShutdown(() => {
                  clearTimeout(t);
                  resolve();
                });
              })
            : Promise.resolve(),
        ]);
        clearTimeout(force);
        shutdown.abort(new ConnectError("server shutting down", Code.Unavailable));
        untrack.forEach((stop) => stop());
        // Last: /readyz answers 503 (and /metrics the final counts) for the whole drain.
        await ops?.close();
        logger.info("rpc server stopped");
        // pino writes asynchronously: the drain's last lines must be out before the process exits.
        await flushLogger(logger);
      })();
      return stopping;
    },
  };
}

export type { Route };
