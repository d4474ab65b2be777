/**
 * One downstream target's policy stack, built once per process and shared by
 * every client of that target, and the client interceptor that runs a unary
 * call through it. The order, outermost first:
 *
 *   fallback -> retry (with budget) -> circuit breaker -> bulkhead -> per-attempt deadline -> transport
 *
 * Retry sits outside the breaker and bulkhead so every attempt is counted and
 * admitted on its own; the call token is minted inside (after this
 * interceptor), so each attempt carries a fresh one.
 */
import { clone, toBinary } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextKey,
  type Interceptor,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import {
  BulkheadRejectedError,
  BrokenCircuitError,
  CircuitState,
  bulkhead,
  circuitBreaker,
  handleWhen,
  retry,
  type BulkheadPolicy,
  type CircuitBreakerPolicy,
  type RetryPolicy,
} from "cockatiel";
import { methodContract, type MethodContract, type ServiceContract } from "../contract/types.ts";
import { CONTEXT_TOKEN_HEADER } from "../auth/call-context.ts";
import { currentCallScope } from "../observability/call-scope.ts";
import { ATTEMPT_HEADER, IDEMPOTENCY_KEY_HEADER } from "../observability/headers.ts";
import { attemptDeadlineKey } from "../wire/attempt-deadline.ts";
import { markDownstream } from "../wire/downstream.ts";
import {
  isAvailabilityFailure,
  isInfrastructureFailure,
  isRetryableCode,
  localRejection,
  neverSent,
  pushbackMs,
  rejectionKind,
} from "./classify.ts";
import type { ResilienceEvent, ResilienceObserver } from "./events.ts";
import type { BreakerSnapshot, BreakerState } from "./breaker-admin.ts";
import type { Clock, FallbackOptions, ResilienceLimits } from "./options.ts";
import { RetryBudget } from "./retry-budget.ts";
import { StaleCache, staleCacheKey } from "./stale-cache.ts";
import { HalfOpenAfter, WindowBreaker } from "./window-breaker.ts";

/** Absolute deadline (epoch ms) of the whole call, set by the client transport before interceptors run. */
export const callDeadlineKey = createContextKey<number | undefined>(undefined, { description: "tt-rpc call deadline" });

/** Response header on a stale fallback answer: its age in ms. */
export const STALE_HEADER = "tt-stale-age-ms";

const staleAnswers = new WeakMap<object, number>();

/** Age in ms if `message` is a stale fallback answer rather than a fresh one; undefined when fresh. */
export function staleAge(message: object): number | undefined {
  return staleAnswers.get(message);
}

const STATE_NAMES: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: "closed",
  [CircuitState.Open]: "open",
  [CircuitState.HalfOpen]: "half_open",
  [CircuitState.Isolated]: "open",
};

/** A non-infrastructure failure carried through the breaker as a result, so the breaker counts it as a healthy call. */
class PassedFailure {
  constructor(readonly error: unknown) {}
}

export class TargetPolicies {
  readonly breaker: CircuitBreakerPolicy;
  readonly bulkhead: BulkheadPolicy;
  readonly retry: RetryPolicy;
  readonly budget: RetryBudget;
  private readonly window: WindowBreaker;
  private readonly fallbacks = new Map<string, StaleCache>();
  private changedAt: number | undefined;
  /** Method of the attempt that last entered the breaker (names the method on state-change lines). */
  private lastMethod: string | undefined;

  constructor(
    readonly target: string,
    readonly limits: ResilienceLimits,
    private readonly clock: Clock,
    readonly report: ResilienceObserver,
  ) {
    this.window = new WindowBreaker({
      windowMs: limits.breakerWindowMs,
      failureRatio: limits.breakerFailureRatio,
      minCalls: limits.breakerMinCalls,
      clock,
    });
    this.breaker = circuitBreaker(handleWhen((e) => isInfrastructureFailure(e) || cancelledProbes.has(e as object)), {
      breaker: this.window,
      halfOpenAfter: new HalfOpenAfter(limits.breakerHalfOpenAfterMs, clock),
    });
    let previous: BreakerState = "closed";
    this.breaker.onStateChange((state) => {
      // Isolated only passes by during an operator reset.
      if (state === CircuitState.Isolated) return;
      const to = STATE_NAMES[state];
      if (to === previous) return;
      this.changedAt = clock.now();
      report({ type: "breaker", target, method: this.lastMethod, from: previous, to });
      previous = to;
    });
    this.bulkhead = bulkhead(limits.bulkheadLimit, 0);
    // Which failures are retried is decided per call (method safety, deadline, budget) and marked on the error.
    this.retry = retry(handleWhen((e) => retryDecisions.has(e as object)), { maxAttempts: limits.retryMaxAttempts - 1 });
    this.budget = new RetryBudget({
      ratio: limits.retryBudgetRatio,
      minRetries: limits.retryBudgetMinRetries,
      windowMs: limits.retryBudgetWindowMs,
      clock,
    });
  }

  /** Turns on the stale fallback for a read method (first configuration wins). */
  enableFallback(contract: ServiceContract, localName: string, options: FallbackOptions): void {
    const method = (contract.methods as Record<string, MethodContract>)[localName];
    if (!method) throw new Error(`${this.target} resilience: fallback for unknown method "${localName}"`);
    if (method.idempotency !== "no_side_effects") {
      throw new Error(`${this.target} resilience: fallback only for NO_SIDE_EFFECTS methods, "${localName}" is ${method.idempotency}`);
    }
    if (!(options.maxAgeMs > 0) || (options.maxEntries !== undefined && !(Number.isInteger(options.maxEntries) && options.maxEntries > 0))) {
      throw new Error(`${this.target} resilience: fallback for "${localName}" needs maxAgeMs > 0 and a positive integer maxEntries`);
    }
    if (!this.fallbacks.has(method.path)) this.fallbacks.set(method.path, new StaleCache(options.maxAgeMs, options.maxEntries ?? 1000, this.clock));
  }

  fallbackFor(path: string): StaleCache | undefined {
    return this.fallbacks.size === 0 ? undefined : this.fallbacks.get(path);
  }

  snapshot(): BreakerSnapshot {
    const { calls, failures } = this.window.totals();
    return {
      target: this.target,
      state: STATE_NAMES[this.breaker.state],
      windowCalls: calls,
      windowFailures: failures,
      ...(this.changedAt === undefined ? {} : { changedAt: this.changedAt }),
    };
  }

  /** Closes the breaker and clears its window (operator reset). */
  reset(): void {
    // cockatiel has no reset: isolating and releasing at once lands in Closed from any state.
    this.breaker.isolate().dispose();
    this.window.clear();
  }

  /** Breaker -> bulkhead -> transport for one attempt. */
  async guarded(req: UnaryRequest, next: (req: UnaryRequest) => Promise<UnaryResponse>): Promise<UnaryResponse> {
    this.lastMethod = req.method.name;
    // Half-open admits one probe; cockatiel would queue the rest behind it, we fail them fast.
    if (this.breaker.state === CircuitState.HalfOpen) throw this.openError(req);
    let outcome: UnaryResponse | PassedFailure;
    try {
      outcome = await this.breaker.execute(() => this.bulkhead.execute(() => next(req).catch(passNonInfrastructure(req.signal, this.breaker))));
    } catch (e) {
      if (e instanceof BrokenCircuitError) throw this.openError(req);
      if (e instanceof BulkheadRejectedError) throw this.bulkheadError(req);
      throw e;
    }
    if (outcome instanceof PassedFailure) throw outcome.error;
    return outcome;
  }

  private openError(req: UnaryRequest): ConnectError {
    this.report({ type: "breaker_rejected", target: this.target, method: req.method.name });
    const err = new ConnectError(`${this.target} unavailable: circuit breaker open`, Code.Unavailable);
    // Our own caller must not retry a call that failed because this dependency is known to be down.
    return markDownstream(localRejection(err, "breaker_open"), { target: this.target, noRetry: true });
  }

  private bulkheadError(req: UnaryRequest): ConnectError {
    this.report({ type: "bulkhead_rejected", target: this.target, method: req.method.name, inFlight: this.limits.bulkheadLimit });
    const err = new ConnectError(`${this.target}: too many calls in flight`, Code.ResourceExhausted);
    return markDownstream(localRejection(err, "bulkhead_full"), { target: this.target });
  }
}

/**
 * Client errors reach the breaker as results (a healthy target answered);
 * the caller's own cancellation is thrown past it uncounted; a call-deadline
 * overrun is counted as the DEADLINE_EXCEEDED it is.
 */
function passNonInfrastructure(signal: AbortSignal, breaker: CircuitBreakerPolicy): (e: unknown) => PassedFailure {
  return (e) => {
    if (signal.aborted) {
      const reason: unknown = signal.reason;
      if (reason instanceof ConnectError && reason.code === Code.DeadlineExceeded) throw reason;
      // A cancelled half-open probe proved nothing: cockatiel would count any unhandled error as a
      // successful probe and close the breaker, so count it as a failed probe (open again, retry later).
      if (breaker.state === CircuitState.HalfOpen && e instanceof Object) cancelledProbes.add(e);
      throw e;
    }
    if (isInfrastructureFailure(e)) throw e;
    return new PassedFailure(e);
  };
}

/** Caller cancellations of a half-open probe: the breaker counts them as a failed probe. */
const cancelledProbes = new WeakSet<object>();

/** Errors the per-call retry rules said may be retried (read by the shared cockatiel retry policy). */
const retryDecisions = new WeakSet<object>();

/** One call's progress through the retry loop. */
interface CallState {
  readonly policies: TargetPolicies;
  readonly req: UnaryRequest;
  readonly next: (req: UnaryRequest) => Promise<UnaryResponse>;
  readonly deadline: number;
  /** NO_SIDE_EFFECTS, IDEMPOTENT, or deduplicated by an idempotency key. */
  readonly safe: boolean;
  delayMs: number;
  usedNeverSentRetry: boolean;
}

/**
 * The client interceptor running unary calls to `contract`'s target through `policies`.
 * Stale answers only for the methods in this client's own `fallback` (the caches are shared
 * by the target's clients, the opt-in is not: a client that did not ask never gets a stale answer).
 */
export function resilienceInterceptor(contract: ServiceContract, policies: TargetPolicies, fallback: Readonly<Record<string, FallbackOptions>> = {}): Interceptor {
  // Names were checked when the target's stack enabled them (TargetPolicies.enableFallback).
  const optedIn = new Set(Object.keys(fallback).map((name) => (contract.methods as Record<string, MethodContract>)[name]!.path));
  return (next) => (req) => {
    if (req.stream) return next(req);
    const method = methodContract(contract, req.method);
    const cache = optedIn.has(method.path) ? policies.fallbackFor(method.path) : undefined;
    const unaryNext = next as (req: UnaryRequest) => Promise<UnaryResponse>;
    return cache ? withFallback(policies, cache, method, req, unaryNext) : withRetry(policies, method, req, unaryNext);
  };
}

function withRetry(
  policies: TargetPolicies,
  method: MethodContract,
  req: UnaryRequest,
  next: (req: UnaryRequest) => Promise<UnaryResponse>,
): Promise<UnaryResponse> {
  // Mutating calls carry one key for every attempt (callers may bring their own, e.g. from an outbox).
  if (method.idempotency !== "no_side_effects" && !req.header.has(IDEMPOTENCY_KEY_HEADER)) {
    req.header.set(IDEMPOTENCY_KEY_HEADER, crypto.randomUUID());
  }
  const state: CallState = {
    policies,
    req,
    next,
    deadline: req.contextValues.get(callDeadlineKey) ?? Date.now() + policies.limits.timeoutMs,
    // A key only makes a retry safe where the contract says the server deduplicates on it.
    safe: method.idempotency !== "unknown" || method.idempotencyKey,
    delayMs: 0,
    usedNeverSentRetry: false,
  };
  policies.budget.recordCall();
  return policies.retry.execute(({ attempt }) => runAttempt(state, attempt), req.signal);
}

async function runAttempt(state: CallState, attempt: number): Promise<UnaryResponse> {
  const { req, policies } = state;
  const { limits } = policies;
  if (attempt > 0) {
    await sleep(state.delayMs, req.signal);
    // The server's call log says which attempt it served.
    req.header.set(ATTEMPT_HEADER, String(attempt + 1));
  }
  if (req.signal.aborted) throw ConnectError.from(req.signal.reason, Code.Canceled);
  const now = Date.now();
  if (state.deadline - now < limits.minAttemptMs) {
    throw markDownstream(new ConnectError(`${policies.target}: deadline too close to start an attempt`, Code.DeadlineExceeded), { target: policies.target });
  }
  // The transport sends this attempt's own deadline as grpc-timeout (connect-es fixed the call's before interceptors ran).
  req.contextValues.set(attemptDeadlineKey, Math.min(state.deadline, now + limits.attemptTimeoutMs));
  try {
    return await policies.guarded(req, state.next);
  } catch (e) {
    const err = ConnectError.from(e);
    if (mayRetry(state, err, attempt + 1)) retryDecisions.add(err);
    throw err;
  }
}

/** SPEC section 5's retry rules for a failed attempt; sets the delay before the next one. */
function mayRetry(state: CallState, err: ConnectError, attemptsMade: number): boolean {
  const { req, policies } = state;
  const { limits } = policies;
  if (req.signal.aborted || attemptsMade >= limits.retryMaxAttempts || rejectionKind(err) !== undefined) return false;
  const pushback = pushbackMs(err);
  if (pushback !== undefined && pushback < 0) return false;
  const safeRetry = state.safe && isRetryableCode(err, pushback);
  const neverSentRetry = !safeRetry && !state.usedNeverSentRetry && neverSent(err);
  if (!safeRetry && !neverSentRetry) return false;
  const delayMs = pushback ?? backoffMs(limits, attemptsMade);
  // Stop rather than sleep into (or past) the deadline.
  if (Date.now() + delayMs + limits.minAttemptMs > state.deadline) return false;
  if (!policies.budget.tryWithdraw()) {
    policies.report({ type: "budget_exhausted", target: policies.target, method: req.method.name, code: Code[err.code] });
    return false;
  }
  if (neverSentRetry) state.usedNeverSentRetry = true;
  state.delayMs = delayMs;
  policies.report({ type: "retry", target: policies.target, method: req.method.name, attempt: attemptsMade + 1, delayMs, code: Code[err.code] });
  return true;
}

/** Exponential from the initial backoff, capped, with "equal jitter": half fixed, half random. */
function backoffMs(limits: ResilienceLimits, retryNumber: number): number {
  const ceiling = Math.min(limits.retryMaxBackoffMs, limits.retryInitialBackoffMs * 2 ** (retryNumber - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** setTimeout that ends at once when the call is aborted (cockatiel's own backoff sleep cannot be interrupted). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

async function withFallback(
  policies: TargetPolicies,
  cache: StaleCache,
  method: MethodContract,
  req: UnaryRequest,
  next: (req: UnaryRequest) => Promise<UnaryResponse>,
): Promise<UnaryResponse> {
  // Keyed by the tenant the target will verify: an explicit context token wins over the served call's, as in the call-token step.
  const explicit = req.header.get(CONTEXT_TOKEN_HEADER);
  const key = staleCacheKey(explicit === null ? currentCallScope()?.tenantId : undefined, explicit, method.path, toBinary(req.method.input, req.message));
  try {
    const res = await withRetry(policies, method, req, next);
    // A copy: the caller owns (and may change) the message it gets; the stale answer must be what the target sent.
    if (key !== undefined) cache.set(key, clone(req.method.output, res.message as never));
    return res;
  } catch (e) {
    // A deadline overrun shows here as the transport's CANCELED; the signal holds the real reason.
    const err = req.signal.aborted ? ConnectError.from(req.signal.reason) : ConnectError.from(e);
    const hit = key !== undefined && isAvailabilityFailure(err) ? cache.get(key) : undefined;
    if (!hit) throw e;
    const message = clone(req.method.output, hit.value as never);
    staleAnswers.set(message, hit.ageMs);
    policies.report({ type: "fallback", target: policies.target, method: req.method.name, ageMs: hit.ageMs, code: Code[err.code] });
    return {
      stream: false,
      service: req.service,
      method: req.method,
      header: new Headers({ [STALE_HEADER]: String(hit.ageMs) }),
      trailer: new Headers(),
      message,
    } as UnaryResponse;
  }
}

export type { ResilienceEvent };
