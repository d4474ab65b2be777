/**
 * Prometheus metrics (prom-client), fed from the framework's observe hooks:
 * the server's CallObserver, a client interceptor and the resilience
 * stack's ResilienceObserver; never from handler code. Names and labels
 * follow go-grpc-prometheus for the call families (dashboards built for it
 * work as they are) and use `tt_rpc_` for the framework's own. Labels are
 * bounded: service, method, type, code, target, breaker states, a fixed
 * reason enum; never a tenant, a peer address, an id or a message.
 *
 * Hot path: every label child is looked up once per method (and code) and
 * cached on a per-method object, so a call costs a Map lookup and a few
 * increments, no label strings built.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor, type StreamResponse } from "@connectrpc/connect";
import { Counter, Gauge, Histogram, Registry, register as processRegister } from "prom-client";
import type { CallFinished, CallObserverHooks } from "../server/logging-interceptor.ts";
import type { ServerCall } from "../server/call.ts";
import type { ResilienceEvent, ResilienceObserver } from "../resilience/events.ts";
import type { BreakerAdmin, BreakerState } from "../resilience/breaker-admin.ts";
import type { AuthFailure } from "./auth-failure.ts";

/** go-grpc-prometheus's grpc_code values: Go's codes.Code names ("OK", "InvalidArgument", ...), which connect-es' Code enum shares. */
const CODE_LABELS: readonly string[] = Array.from({ length: 17 }, (_, c) => (c === 0 ? "OK" : Code[c]!));

const TYPE_LABELS: Record<DescMethod["methodKind"], string> = {
  unary: "unary",
  server_streaming: "server_stream",
  client_streaming: "client_stream",
  bidi_streaming: "bidi_stream",
};

/** 1 ms to 10 s: internal calls are fast, the default deadline is 5 s. */
const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** tt_rpc_client_breaker_state's values. */
export const BREAKER_STATE_VALUES: Record<BreakerState, number> = { closed: 0, open: 1, half_open: 2 };
const BREAKER_SEVERITY: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

const CALL_LABELS = ["grpc_service", "grpc_method", "grpc_type"] as const;
const HANDLED_LABELS = [...CALL_LABELS, "grpc_code"] as const;
type CallLabel = (typeof HANDLED_LABELS)[number];

/** The families one side (server or client) of calls records. */
interface CallFamilies {
  readonly started: Counter<CallLabel>;
  readonly handled: Counter<CallLabel>;
  readonly seconds: Histogram<CallLabel>;
  readonly inFlight: Gauge<CallLabel>;
}

/** One method's cached label children. */
class MethodSeries {
  readonly started: Counter.Internal;
  readonly seconds: Histogram.Internal<CallLabel>;
  readonly inFlight: Gauge.Internal<CallLabel>;
  private readonly handledByCode: (Counter.Internal | undefined)[] = [];
  private readonly values: string[];

  constructor(
    private readonly families: CallFamilies,
    method: DescMethod,
  ) {
    this.values = [method.parent.typeName, method.name, TYPE_LABELS[method.methodKind]];
    this.started = families.started.labels(...this.values);
    this.seconds = families.seconds.labels(...this.values);
    this.inFlight = families.inFlight.labels(...this.values);
  }

  begin(): void {
    this.started.inc();
    this.inFlight.inc();
  }

  end(code: Code | 0, seconds: number): void {
    this.inFlight.dec();
    this.seconds.observe(seconds);
    this.handled(code).inc();
  }

  private handled(code: Code | 0): Counter.Internal {
    return (this.handledByCode[code] ??= this.families.handled.labels(...this.values, CODE_LABELS[code] ?? "Unknown"));
  }
}

function callFamilies(registry: Registry, side: "server" | "client"): CallFamilies {
  const registers = [registry];
  const what = side === "server" ? "RPCs started on the server" : "RPCs started by clients";
  return {
    started: new Counter({ name: `grpc_${side}_started_total`, help: `Total number of ${what}.`, labelNames: CALL_LABELS, registers }),
    handled: new Counter({
      name: `grpc_${side}_handled_total`,
      help: side === "server" ? "Total number of RPCs completed on the server, regardless of success or failure." : "Total number of RPCs completed by clients, regardless of success or failure.",
      labelNames: HANDLED_LABELS,
      registers,
    }),
    seconds: new Histogram({
      name: `grpc_${side}_handling_seconds`,
      help: side === "server" ? "Time the server took to handle RPCs, start to status." : "Time clients waited for RPCs, retries included.",
      labelNames: CALL_LABELS,
      buckets: SECONDS_BUCKETS,
      registers,
    }),
    inFlight: new Gauge({ name: `grpc_${side}_in_flight`, help: `RPCs in flight (${side}).`, labelNames: CALL_LABELS, registers }),
  };
}

/** Sizes read when Prometheus scrapes (collect callbacks), summed over this process's stores. */
export type SizedStore = "replay_cache" | "dedupe_store";

export interface Metrics {
  /** What the ops port's /metrics serves. */
  readonly registry: Registry;
  /** The server's CallObserver: started/handled totals, latency, in flight, auth failures by reason. */
  readonly server: CallObserverHooks;
  /** The client side: a connect-es interceptor recording started/handled totals, latency and in flight per method of the target. */
  readonly clientInterceptor: Interceptor;
  /** Retries, breaker transitions, budget, bulkhead and breaker rejections, fallbacks (ResilienceEvent). */
  readonly resilience: ResilienceObserver;
  /** Reports the breakers `admin` holds as tt_rpc_client_breaker_state (read at scrape time). Idempotent. */
  watchBreakers(admin: BreakerAdmin): void;
  /**
   * Reports a store's entries at scrape time, if it exposes a `size` (a
   * number, or a method as the memory replay cache has); a shared backend
   * without one is skipped. Returns the function that stops it (server stop).
   */
  trackStore(kind: SizedStore, store: object): () => void;
}

export interface MetricsOptions {
  /** Default: a new Registry of its own. */
  readonly registry?: Registry;
}

/** Metrics on their own registry (tests inject one per server/client). */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = options.registry ?? new Registry();
  const registers = [registry];
  const server = callFamilies(registry, "server");
  const client = callFamilies(registry, "client");
  const serverSeries = new Map<DescMethod, MethodSeries>();
  const clientSeries = new Map<DescMethod, MethodSeries>();
  const seriesOf = (cache: Map<DescMethod, MethodSeries>, families: CallFamilies, method: DescMethod): MethodSeries => {
    let s = cache.get(method);
    if (s === undefined) cache.set(method, (s = new MethodSeries(families, method)));
    return s;
  };

  const authLabels = ["grpc_service", "grpc_method", "reason"] as const;
  const authFamilies = {
    authentication: new Counter({
      name: "tt_rpc_server_authentication_failures_total",
      help: "Calls refused by authentication (peer certificate, call token, context token, replay cache), by reason.",
      labelNames: authLabels,
      registers,
    }),
    authorization: new Counter({
      name: "tt_rpc_server_authorization_failures_total",
      help: "Authenticated calls refused by the contract's access rule or tenant check, by reason.",
      labelNames: authLabels,
      registers,
    }),
  };
  const authChildren = new Map<string, Counter.Internal>();
  const countAuthFailure = (call: ServerCall, failure: AuthFailure) => {
    // Failures are the rare path; one key string per failure is fine.
    const key = `${failure.stage}\u0000${call.contract.path}\u0000${failure.reason}`;
    let child = authChildren.get(key);
    if (child === undefined) {
      child = authFamilies[failure.stage].labels(call.service.typeName, call.method.name, failure.reason);
      authChildren.set(key, child);
    }
    child.inc();
  };

  const target = ["target"] as const;
  const retries = new Counter({ name: "tt_rpc_client_retries_total", help: "Retries the resilience stack made, by target and method.", labelNames: ["target", "grpc_method"], registers });
  const budgetExhausted = new Counter({ name: "tt_rpc_client_retry_budget_exhausted_total", help: "Retries refused because the target's retry budget was used up.", labelNames: target, registers });
  const bulkheadRejected = new Counter({ name: "tt_rpc_client_bulkhead_rejected_total", help: "Calls refused because the target's bulkhead was full.", labelNames: target, registers });
  const breakerRejected = new Counter({ name: "tt_rpc_client_breaker_rejected_total", help: "Calls failed fast because the target's circuit breaker was open.", labelNames: target, registers });
  const transitions = new Counter({ name: "tt_rpc_client_breaker_transitions_total", help: "Circuit breaker state changes, by target.", labelNames: ["target", "from", "to"], registers });
  const fallbacks = new Counter({ name: "tt_rpc_client_fallbacks_total", help: "Stale fallback answers served, by target and method.", labelNames: ["target", "grpc_method"], registers });
  const breakerAdmins = new Set<BreakerAdmin>();
  new Gauge({
    name: "tt_rpc_client_breaker_state",
    help: "Circuit breaker state per target: 0 closed, 1 open, 2 half-open.",
    labelNames: target,
    registers,
    collect() {
      // One registry per process normally; if several hold the same target, the least healthy state shows.
      const worst = new Map<string, BreakerState>();
      for (const admin of breakerAdmins) {
        for (const b of admin.list()) {
          const seen = worst.get(b.target);
          if (seen === undefined || BREAKER_SEVERITY[b.state] > BREAKER_SEVERITY[seen]) worst.set(b.target, b.state);
        }
      }
      for (const [name, state] of worst) this.labels(name).set(BREAKER_STATE_VALUES[state]);
    },
  });
  // Fast-fail rejections can come by the thousand per second: children cached per target.
  const perTarget = new Map<string, { bulkhead: Counter.Internal; breaker: Counter.Internal; budget: Counter.Internal }>();
  const targetSeries = (name: string) => {
    let s = perTarget.get(name);
    if (s === undefined) {
      s = { bulkhead: bulkheadRejected.labels(name), breaker: breakerRejected.labels(name), budget: budgetExhausted.labels(name) };
      perTarget.set(name, s);
    }
    return s;
  };

  const sizes: Record<SizedStore, Set<() => number>> = { replay_cache: new Set(), dedupe_store: new Set() };
  const sizeGauge = (store: SizedStore, help: string) =>
    new Gauge({
      name: `tt_rpc_${store}_entries`,
      help,
      registers,
      collect() {
        let n = 0;
        for (const read of sizes[store]) n += read();
        this.set(n);
      },
    });
  sizeGauge("replay_cache", "Call-token jtis the replay cache holds (all peers).");
  sizeGauge("dedupe_store", "Entries in the idempotency dedupe store (stored responses and calls in flight).");

  const clientInterceptor: Interceptor = (next) => async (req) => {
    const series = seriesOf(clientSeries, client, req.method);
    series.begin();
    const start = performance.now();
    let res;
    try {
      res = await next(req);
    } catch (e) {
      series.end(e instanceof ConnectError ? e.code : Code.Unknown, (performance.now() - start) / 1000);
      throw e;
    }
    if (!res.stream) {
      series.end(0, (performance.now() - start) / 1000);
      return res;
    }
    return { ...res, message: observeStream(res as StreamResponse, series, start) } as typeof res;
  };

  return {
    registry,
    server: {
      started: (call) => seriesOf(serverSeries, server, call.method).begin(),
      finished({ call, code, durationMs, authFailure }: CallFinished) {
        seriesOf(serverSeries, server, call.method).end(code, durationMs / 1000);
        if (authFailure !== undefined) countAuthFailure(call, authFailure);
      },
    },
    clientInterceptor,
    resilience(event: ResilienceEvent) {
      switch (event.type) {
        case "breaker":
          transitions.labels(event.target, event.from, event.to).inc();
          break;
        case "retry":
          retries.labels(event.target, event.method).inc();
          break;
        case "budget_exhausted":
          targetSeries(event.target).budget.inc();
          break;
        case "bulkhead_rejected":
          targetSeries(event.target).bulkhead.inc();
          break;
        case "breaker_rejected":
          targetSeries(event.target).breaker.inc();
          break;
        case "fallback":
          fallbacks.labels(event.target, event.method).inc();
          break;
      }
    },
    watchBreakers(admin) {
      breakerAdmins.add(admin);
    },
    trackStore(kind, store) {
      const size = (store as { size?: unknown }).size;
      const read = typeof size === "function" ? () => Number(size.call(store)) : typeof size === "number" ? () => Number((store as { size: number }).size) : undefined;
      if (read === undefined) return () => {};
      sizes[kind].add(read);
      return () => sizes[kind].delete(read);
    },
  };
}

/** A server stream counts as handled when it ends, fails, or the consumer stops reading (CANCELED). */
async function* observeStream(res: StreamResponse, series: MethodSeries, start: number): AsyncGenerator<unknown> {
  let code: Code | 0 = Code.Canceled;
  try {
    yield* res.message;
    code = 0;
  } catch (e) {
    code = e instanceof ConnectError ? e.code : Code.Unknown;
    throw e;
  } finally {
    series.end(code, (performance.now() - start) / 1000);
  }
}

let processMetrics: Metrics | undefined;

/**
 * This process's metrics, on prom-client's default registry (so a service's
 * own prom-client metrics appear on the same /metrics). Created on first use.
 */
export function defaultMetrics(): Metrics {
  processMetrics ??= createMetrics({ registry: processRegister });
  return processMetrics;
}
