/**
 * The limits of one target's policy stack: SPEC section 5 defaults, then the
 * options object, then the environment (`TT_RPC_<TARGET>_<SETTING>`), so an
 * operator can tune a running fleet without a code change. Every value is
 * validated once, when the stack is built; a bad one is a startup error.
 */

/** Milliseconds since the epoch; injected so tests can move breaker and budget windows without waiting. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: Date.now };

export interface ResilienceLimits {
  /** Deadline of a call when neither the caller nor the contract sets one. */
  readonly timeoutMs: number;
  /** Longest single attempt inside the call's deadline. */
  readonly attemptTimeoutMs: number;
  /** Taken off a served call's remaining time before it becomes an outgoing call's deadline. */
  readonly servedCallMarginMs: number;
  /** No attempt starts with less than this left before the deadline. */
  readonly minAttemptMs: number;
  /** Attempts in all, the first included. */
  readonly retryMaxAttempts: number;
  readonly retryInitialBackoffMs: number;
  readonly retryMaxBackoffMs: number;
  /** Retries allowed per call over the budget window (0.1 = 10%). */
  readonly retryBudgetRatio: number;
  /** Retries always allowed per budget window, so a quiet client can still retry. */
  readonly retryBudgetMinRetries: number;
  readonly retryBudgetWindowMs: number;
  /** Opens when failures / calls exceeds this (0.5 = more than half). */
  readonly breakerFailureRatio: number;
  readonly breakerMinCalls: number;
  readonly breakerWindowMs: number;
  readonly breakerHalfOpenAfterMs: number;
  /** Calls in flight to the target at once; the next one is rejected (no queue). */
  readonly bulkheadLimit: number;
}

export const DEFAULT_LIMITS: ResilienceLimits = {
  timeoutMs: 5000,
  attemptTimeoutMs: 2000,
  servedCallMarginMs: 20,
  minAttemptMs: 50,
  retryMaxAttempts: 3,
  retryInitialBackoffMs: 100,
  retryMaxBackoffMs: 1000,
  retryBudgetRatio: 0.1,
  retryBudgetMinRetries: 3,
  retryBudgetWindowMs: 10_000,
  breakerFailureRatio: 0.5,
  breakerMinCalls: 5,
  breakerWindowMs: 10_000,
  breakerHalfOpenAfterMs: 30_000,
  bulkheadLimit: 64,
};

/** Stale answers for a read method when the target is unavailable. */
export interface FallbackOptions {
  /** Oldest answer still served (ms since it was received). */
  readonly maxAgeMs: number;
  /** Entries kept for this method; the oldest is dropped first. Default 1000. */
  readonly maxEntries?: number;
}

export interface ResilienceOptions extends Partial<ResilienceLimits> {
  /** Opt-in stale fallback, per method (the method's localName, e.g. `getVenue`); NO_SIDE_EFFECTS methods only. */
  readonly fallback?: Readonly<Record<string, FallbackOptions>>;
}

/** One resilience limit as an environment variable (`TT_RPC_<TARGET>_<env>`): its range and what it does. */
export interface LimitSetting {
  readonly env: string;
  readonly min: number;
  readonly max: number;
  readonly integer: boolean;
  readonly doc: string;
}

// Setting name -> env suffix, range and doc; services/host/config-schema.ts lists these per target.
export const LIMIT_SETTINGS: { readonly [K in keyof ResilienceLimits]: LimitSetting } = {
  timeoutMs: { env: "TIMEOUT_MS", min: 1, max: 3_600_000, integer: true, doc: "deadline of a call when neither caller nor contract sets one (ms)" },
  attemptTimeoutMs: { env: "ATTEMPT_TIMEOUT_MS", min: 1, max: 3_600_000, integer: true, doc: "longest single attempt (ms)" },
  servedCallMarginMs: { env: "SERVED_CALL_MARGIN_MS", min: 0, max: 10_000, integer: true, doc: "taken off a served call's remaining time for its outgoing calls (ms)" },
  minAttemptMs: { env: "MIN_ATTEMPT_MS", min: 0, max: 10_000, integer: true, doc: "no attempt starts with less than this left (ms)" },
  retryMaxAttempts: { env: "RETRY_MAX_ATTEMPTS", min: 1, max: 10, integer: true, doc: "attempts in all, the first included" },
  retryInitialBackoffMs: { env: "RETRY_INITIAL_BACKOFF_MS", min: 1, max: 60_000, integer: true, doc: "first retry backoff (ms, jittered, doubling)" },
  retryMaxBackoffMs: { env: "RETRY_MAX_BACKOFF_MS", min: 1, max: 300_000, integer: true, doc: "backoff cap (ms; not below the initial backoff)" },
  retryBudgetRatio: { env: "RETRY_BUDGET_RATIO", min: 0, max: 1, integer: false, doc: "retries allowed per call over the budget window" },
  retryBudgetMinRetries: { env: "RETRY_BUDGET_MIN_RETRIES", min: 0, max: 100_000, integer: true, doc: "retries always allowed per budget window" },
  retryBudgetWindowMs: { env: "RETRY_BUDGET_WINDOW_MS", min: 100, max: 3_600_000, integer: true, doc: "retry budget window (ms)" },
  breakerFailureRatio: { env: "BREAKER_FAILURE_RATIO", min: 0, max: 1, integer: false, doc: "the breaker opens above this share of failed calls" },
  breakerMinCalls: { env: "BREAKER_MIN_CALLS", min: 1, max: 1_000_000_000, integer: true, doc: "calls in the window before the breaker may open" },
  breakerWindowMs: { env: "BREAKER_WINDOW_MS", min: 100, max: 3_600_000, integer: true, doc: "breaker counting window (ms)" },
  breakerHalfOpenAfterMs: { env: "BREAKER_HALF_OPEN_AFTER_MS", min: 1, max: 3_600_000, integer: true, doc: "open breaker lets one probe through after this (ms)" },
  bulkheadLimit: { env: "BULKHEAD_LIMIT", min: 1, max: 100_000, integer: true, doc: "calls in flight to the target at once (no queue)" },
};
const SETTINGS = LIMIT_SETTINGS;

/** The expected form of a limit, for error messages. */
export function limitForm(spec: LimitSetting): string {
  return `${spec.integer ? "an integer" : "a number"} from ${spec.min} to ${spec.max}`;
}

/** Whether `value` is in the limit's range. */
export function limitInRange(spec: LimitSetting, value: number): boolean {
  return Number.isFinite(value) && value >= spec.min && value <= spec.max && (!spec.integer || Number.isInteger(value));
}

/** "venue-service" -> "TT_RPC_VENUE_SERVICE_" */
export function envPrefix(target: string): string {
  return `TT_RPC_${target.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}_`;
}

/** Names of the environment variables that tune `target` (for docs and error messages). */
export function envNames(target: string): string[] {
  return Object.values(SETTINGS).map((s) => envPrefix(target) + s.env);
}

/** Defaults <- options <- environment, each value checked against its range. */
export function resolveLimits(target: string, options: ResilienceOptions = {}, env: NodeJS.ProcessEnv = process.env): ResilienceLimits {
  const prefix = envPrefix(target);
  const out: Record<string, number> = {};
  const sources: Record<string, string> = {};
  for (const [name, spec] of Object.entries(SETTINGS) as [keyof ResilienceLimits, LimitSetting][]) {
    const raw = env[prefix + spec.env];
    let value: number = options[name] ?? DEFAULT_LIMITS[name];
    let source = options[name] === undefined ? "default" : `resilience.${name}`;
    if (raw !== undefined && raw.trim() !== "") {
      value = Number(raw.trim());
      source = prefix + spec.env;
    }
    if (!limitInRange(spec, value)) {
      throw new Error(`${target} resilience: ${source} must be ${limitForm(spec)}, got ${raw ?? value}`);
    }
    out[name] = value;
    sources[name] = source === "default" ? `the default ${name}` : source;
  }
  const limits = out as unknown as ResilienceLimits;
  if (limits.retryMaxBackoffMs < limits.retryInitialBackoffMs) {
    throw new Error(
      `${target} resilience: ${sources.retryMaxBackoffMs} (${limits.retryMaxBackoffMs}) must not be below ${sources.retryInitialBackoffMs} (${limits.retryInitialBackoffMs})`,
    );
  }
  return limits;
}
