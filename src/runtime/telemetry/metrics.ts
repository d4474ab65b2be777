/**
 * Prometheus metrics (prom-client), fed from the framework's observe hooks:
 * the server's CallObserver, a client interceptor and the resilience
 * stack's ResilienceObserver; never from handler code. Names and labels
 * follow go-grpc-prometheus for the call families (dashboards built for it
 * work as they are) and use `tt_rpc_` for the framework's own. Labels are
 * bounded: service, method, type, code, target, breaker states, a fixed
 * reason enum; never a tenant, a peer address, an id or a message.
 *
 * Hot path: a call costs a Map lookup (per method) and a few number
 * increments on that method's series; label sets and samples are built only
 * when Prometheus scrapes. Rare events (auth failures, resilience events)
 * use prom-client's label children, cached per label set.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor, type StreamResponse } from "@connectrpc/connect";
import { Counter, Gauge, Registry, register as processRegister } from "prom-client";
import type { CallFinished, CallObserverHooks } from "./call-observer.ts";
import type { ServerCall } from "../contract/call.ts";
import type { ResilienceEvent, ResilienceObserver } from "../resilience/events.ts";
import type { BreakerAdmin, BreakerState } from "../resilience/breaker-admin.ts";
import type { AuthFailure } from "../auth/auth-failure.ts";

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

/** One method's call counts: plain numbers on the hot path, turned into samples only when Prometheus scrapes. */
class MethodSeries {
  readonly labels: Readonly<Record<string, string>>;
  started = 0;
  inFlight = 0;
  sum = 0;
  count = 0;
  /** Calls by status code (0-16). */
  readonly handled = new Float64Array(CODE_LABELS.length);
  /** Observations per bucket (not cumulative); above the last bucket only `count` has them. */
  readonly buckets = new Float64Array(SECONDS_BUCKETS.length);

  constructor(method: DescMethod) {
    this.labels = { grpc_service: method.parent.typeName, grpc_method: method.name, grpc_type: TYPE_LABELS[method.methodKind] };
  }

  begin(): void {
    this.started++;
    this.inFlight++;
  }

  end(code: Code | 0, seconds: number): void {
    this.inFlight--;
    this.handled[code < CODE_LABELS.length ? code : Code.Unknown]!++;
    this.sum += seconds;
    this.count++;
    let i = 0;
    while (i < SECONDS_BUCKETS.length && seconds > SECONDS_BUCKETS[i]!) i++;
    if (i < SECONDS_BUCKETS.length) this.buckets[i]!++;
  }
}

interface Sample {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly metricName?: string;
}

/**
 * A family whose samples are computed at scrape time (prom-client's metric
 * interface: name, type, help, get). Its own label children would build a
 * label string on every increment; this keeps the per-call work to numbers.
 */
function registerScraped(registry: Registry, name: string, type: "counter" | "gauge" | "histogram", help: string, samples: () => Sample[]): void {
  const metric = {
    name,
    type,
    help,
    aggregator: "sum",
    get: async () => ({ name, type, help, aggregator: "sum", values: samples() }),
    reset() {},
  };
  registry.registerMetric(metric as unknown as Counter);
}

/** grpc_<side>_started_total, _handled_total, _handling_seconds, _in_flight over `series`. */
function registerCallFamilies(registry: Registry, side: "server" | "client", series: Map<DescMethod, MethodSeries>): void {
  const all = () => [...series.values()];
  const on = side === "server" ? "on the server" : "by clients";
  registerScraped(registry, `grpc_${side}_started_total`, "counter", `Total number of RPCs started ${on}.`, () =>
    all().map((s) => ({ labels: s.labels, value: s.started })),
  );
  registerScraped(registry, `grpc_${side}_handled_total`, "counter", `Total number of RPCs completed ${on}, regardless of success or failure.`, () =>
    all().flatMap((s) => [...s.handled].flatMap((value, code) => (value > 0 ? [{ labels: { ...s.labels, grpc_code: CODE_LABELS[code]! }, value }] : []))),
  );
  const seconds = `grpc_${side}_handling_seconds`;
  registerScraped(
    registry,
    seconds,
    "histogram",
    side === "server" ? "Time the server took to handle RPCs, start to status." : "Time clients waited for RPCs, retries included.",
    () =>
      all().flatMap((s) => {
        let cumulative = 0;
        const buckets: Sample[] = SECONDS_BUCKETS.map((le, i) => {
          cumulative += s.buckets[i]!;
          return { metricName: `${seconds}_bucket`, labels: { ...s.labels, le }, value: cumulative };
        });
        return [
          ...buckets,
          { metricName: `${seconds}_bucket`, labels: { ...s.labels, le: "+Inf" }, value: s.count },
          { metricName: `${seconds}_sum`, labels: s.labels, value: s.sum },
          { metricName: `${seconds}_count`, labels: s.labels, value: s.count },
        ];
      }),
  );
  registerScraped(registry, `grpc_${side}_in_flight`, "gauge", `RPCs in flight ${on}.`, () => all().map((s) => ({ labels: s.labels, value: s.inFlight })));
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
  const serverSeries = new Map<DescMethod, MethodSeries>();
  const clientSeries = new Map<DescMethod, MethodSeries>();
  registerCallFamilies(registry, "server", serverSeries);
  registerCallFamilies(registry, "client", clientSeries);
  const seriesOf = (cache: Map<DescMethod, MethodSeries>, method: DescMethod): MethodSeries => {
    let s = cache.get(method);
    if (s === undefined) cache.set(method, (s = new MethodSeries(method)));
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
  // Fast-fail rejections can come by the thousand per second: plain numbers per target, samples at scrape time.
  const perTarget = new Map<string, { budget: number; bulkhead: number; breaker: number }>();
  const targetCounts = (name: string) => {
    let c = perTarget.get(name);
    if (c === undefined) perTarget.set(name, (c = { budget: 0, bulkhead: 0, breaker: 0 }));
    return c;
  };
  const perTargetCounter = (name: string, help: string, field: "budget" | "bulkhead" | "breaker") =>
    registerScraped(registry, name, "counter", help, () => [...perTarget].filter(([, c]) => c[field] > 0).map(([t, c]) => ({ labels: { target: t }, value: c[field] })));
  perTargetCounter("tt_rpc_client_retry_budget_exhausted_total", "Retries refused because the target's retry budget was used up.", "budget");
  perTargetCounter("tt_rpc_client_bulkhead_rejected_total", "Calls refused because the target's bulkhead was full.", "bulkhead");
  perTargetCounter("tt_rpc_client_breaker_rejected_total", "Calls failed fast because the target's circuit breaker was open.", "breaker");
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
    const series = seriesOf(clientSeries, req.method);
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
    return { ...res, message: observeStream(res as StreamResponse, series, start, req.signal) } as typeof res;
  };

  return {
    registry,
    server: {
      started: (call) => seriesOf(serverSeries, call.method).begin(),
      finished({ call, code, durationMs, authFailure }: CallFinished) {
        seriesOf(serverSeries, call.method).end(code, durationMs / 1000);
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
          targetCounts(event.target).budget++;
          break;
        case "bulkhead_rejected":
          targetCounts(event.target).bulkhead++;
          break;
        case "breaker_rejected":
          targetCounts(event.target).breaker++;
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

/**
 * A server stream counts as handled once: when it ends, fails, or its signal
 * aborts (the caller's cancel or the deadline). connect-es' clients never
 * return() a stream the consumer stops reading, so the signal is what ends an
 * abandoned one (at the latest, the call's deadline).
 */
function observeStream(res: StreamResponse, series: MethodSeries, start: number, signal: AbortSignal): AsyncIterable<unknown> {
  let done = false;
  const end = (code: Code | 0) => {
    if (done) return;
    done = true;
    signal.removeEventListener("abort", onAbort);
    series.end(code, (performance.now() - start) / 1000);
  };
  const onAbort = () => end(signal.reason instanceof ConnectError ? signal.reason.code : Code.Canceled);
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort);
  return (async function* () {
    let code: Code | 0 = Code.Canceled;
    try {
      yield* res.message;
      code = 0;
    } catch (e) {
      code = e instanceof ConnectError ? e.code : Code.Unknown;
      throw e;
    } finally {
      end(code);
    }
  })();
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
