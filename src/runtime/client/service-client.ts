/**
 * createServiceClient: what every generated `create<Service>Client(options)`
 * calls. Resolves the target address, builds the mTLS transport with the
 * framework's client interceptors (context propagation, your interceptors,
 * then the target's resilience policies, then a fresh call token per attempt)
 * and returns the connect-es typed client. Every call gets a deadline and
 * inherits the served call's cancellation before connect-es arms its timer.
 */
import type { DescService } from "@bufbuild/protobuf";
import { ConnectError, createClient, createContextValues, type Client, type ContextValues, type Interceptor, type Transport } from "@connectrpc/connect";
import { methodContract, type ServiceContract } from "../contract/types.ts";
import type { MaterialSource } from "../identity/material.ts";
import { workloadSpiffeId } from "../identity/spiffe-id.ts";
import { createGrpcJsTransport } from "./grpc-js-transport.ts";
import { parseRpcAddress, resolveAddress } from "./address.ts";
import { mtlsChannelCredentials } from "./tls-credentials.ts";
import { callTokenInterceptor, rotatingMinter } from "./security-interceptor.ts";
import { contextPropagationInterceptor } from "./context-interceptor.ts";
import { downstreamInfo, markDownstream } from "../wire/downstream.ts";
import type { ResilienceOptions } from "../resilience/options.ts";
import type { ResilienceObserver } from "../resilience/events.ts";
import { resilienceRegistry, type ResilienceRegistry } from "../resilience/registry.ts";
import { callDeadlineKey, resilienceInterceptor } from "../resilience/policy-stack.ts";
import { planCall } from "../resilience/deadline.ts";
import { defaultMetrics, type Metrics } from "../telemetry/metrics.ts";
import { activeTracer, clientTracingInterceptor } from "../telemetry/tracing.ts";
import { resolveMaxMessageBytes } from "../wire/message-size.ts";

export interface ServiceClientOptions {
  /** Our own identity material: certificate, key, JWT signing key, trust bundle. */
  readonly identity: MaterialSource;
  /** "host:port"; defaults to `<SERVICE>_RPC_ADDRESS`, then `<SERVICE>_SERVICE_URL`'s host with the RPC port, then localhost. */
  readonly address?: string;
  /** Run after context propagation and before the call token is minted (resilience policies go here). */
  readonly interceptors?: readonly Interceptor[];
  /** Per-target limits and fallbacks (README "Resilience"); the environment overrides them. */
  readonly resilience?: ResilienceOptions & {
    readonly observe?: ResilienceObserver;
    /** Defaults to the process-wide registry; tests pass their own. */
    readonly registry?: ResilienceRegistry;
  };
  readonly env?: NodeJS.ProcessEnv;
  /** Where client call and resilience metrics go (default: this process's). */
  readonly metrics?: Metrics;
  /** Largest message sent or received (default TT_RPC_MAX_MESSAGE_BYTES, else 4 MiB); over it: RESOURCE_EXHAUSTED. */
  readonly maxMessageBytes?: number;
}

export function createServiceClient<S extends DescService>(contract: ServiceContract<S>, options: ServiceClientOptions): Client<S> {
  const transport = createServiceTransport(contract, options);
  const client = createClient(contract.service, transport);
  closers.set(client, () => transport.close());
  return client;
}

/** The transport behind a generated client, for callers that share one across clients. */
export function createServiceTransport(contract: ServiceContract, options: ServiceClientOptions): Transport & { close(): void } {
  const { identity } = options;
  if (!identity) throw new Error(`${contract.name} client: no identity material (certificate, key, JWT key, trust bundle)`);
  // The option takes the same forms as <NAME>_RPC_ADDRESS (e.g. the IP:port,IP:port shorthand).
  const address = options.address !== undefined ? parseRpcAddress(options.address, "address") : resolveAddress(contract.name, contract.defaultPort, options.env ?? process.env);
  const server = workloadSpiffeId(contract.name, identity.current().workload.env, identity.current().bundle.trustDomain);
  const env = options.env ?? process.env;
  const metrics = options.metrics ?? defaultMetrics();
  const registry = options.resilience?.registry ?? resilienceRegistry();
  const observe = options.resilience?.observe;
  // Resilience events feed the metrics (the target's stack keeps the observers of the client that built it).
  const observeWithMetrics: ResilienceObserver = observe ? (e) => (metrics.resilience(e), observe(e)) : metrics.resilience;
  const policies = registry.policiesFor(contract, { ...options.resilience, observe: observeWithMetrics }, env);
  metrics.watchBreakers(registry);
  // Asked once: with no OpenTelemetry SDK registered no span is ever made.
  const tracer = activeTracer();
  const target = contract.name;
  const tls = mtlsChannelCredentials(identity, server);
  const transport = createGrpcJsTransport({
    address,
    target,
    credentials: tls.credentials,
    // SNI names the service (an IP is not a valid server name); identity is checked by SPIFFE ID anyway.
    channelOptions: { "grpc.ssl_target_name_override": contract.name },
    maxMessageBytes: resolveMaxMessageBytes(options.maxMessageBytes, env),
    interceptors: [
      metrics.clientInterceptor,
      ...(tracer ? [clientTracingInterceptor(tracer)] : []),
      contextPropagationInterceptor(),
      ...(options.interceptors ?? []),
      resilienceInterceptor(contract, policies, options.resilience?.fallback),
      callTokenInterceptor(rotatingMinter(identity), server),
    ],
  });
  // Whatever fails, our caller learns it was this dependency (the server boundary never relays it as is).
  const markFailure = (e: unknown): never => {
    const err = ConnectError.from(e);
    throw downstreamInfo(err) ? err : markDownstream(err, { target });
  };
  return {
    unary(method, signal, timeoutMs, header, input, contextValues) {
      const plan = planCall(methodContract(contract, method), policies.limits, signal, timeoutMs);
      const values = perCallValues(contextValues).set(callDeadlineKey, plan.deadline);
      return transport.unary(method, plan.signal, plan.timeoutMs, header, input, values).catch(markFailure);
    },
    stream(method, signal, timeoutMs, header, input, contextValues) {
      const plan = planCall(methodContract(contract, method), policies.limits, signal, timeoutMs);
      return transport.stream(method, plan.signal, plan.timeoutMs, header, input, perCallValues(contextValues)).catch(markFailure);
    },
    close() {
      transport.close();
      tls.dispose();
    },
  };
}

/**
 * The framework writes each call's deadlines into its context values; a
 * caller may pass one ContextValues to many concurrent calls, so writes go to
 * a layer of this call's own and reads fall through to the caller's values.
 */
function perCallValues(shared: ContextValues | undefined): ContextValues {
  const own = createContextValues();
  if (shared === undefined) return own;
  const written = new Set<symbol>();
  return {
    get: (key) => (written.has(key.id) ? own.get(key) : shared.get(key)),
    set(key, value) {
      written.add(key.id);
      own.set(key, value);
      return this;
    },
    delete(key) {
      written.add(key.id);
      own.delete(key);
      return this;
    },
  };
}

const closers = new WeakMap<object, () => void>();

/** Closes the connection behind a client made by createServiceClient. */
export function closeClient(client: object): void {
  closers.get(client)?.();
  closers.delete(client);
}
