/**
 * Per-target limits: defaults, options object, environment (which wins), and
 * a clear startup error for a bad value.
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_LIMITS, envNames, resolveLimits } from "../../src/runtime/resilience/options.ts";

describe("resilience limits", () => {
  it("default to SPEC section 5", () => {
    expect(resolveLimits("venue-service", {}, {})).toEqual(DEFAULT_LIMITS);
    expect(DEFAULT_LIMITS).toMatchObject({ timeoutMs: 5000, attemptTimeoutMs: 2000, retryMaxAttempts: 3, bulkheadLimit: 64, breakerHalfOpenAfterMs: 30_000 });
  });

  it("take the options object, then the target's environment variables", () => {
    const env = { TT_RPC_VENUE_SERVICE_BULKHEAD_LIMIT: "16", TT_RPC_VENUE_SERVICE_RETRY_BUDGET_RATIO: "0.2", TT_RPC_TICKET_SERVICE_BULKHEAD_LIMIT: "1" };
    const limits = resolveLimits("venue-service", { bulkheadLimit: 8, retryMaxAttempts: 2 }, env);
    expect(limits).toMatchObject({ bulkheadLimit: 16, retryBudgetRatio: 0.2, retryMaxAttempts: 2, timeoutMs: 5000 });
  });

  it.each([
    [{ TT_RPC_VENUE_SERVICE_RETRY_MAX_ATTEMPTS: "three" }, /TT_RPC_VENUE_SERVICE_RETRY_MAX_ATTEMPTS must be an integer from 1 to 10, got three/],
    [{ TT_RPC_VENUE_SERVICE_BULKHEAD_LIMIT: "0" }, /BULKHEAD_LIMIT must be an integer from 1/],
    [{ TT_RPC_VENUE_SERVICE_BREAKER_FAILURE_RATIO: "1.5" }, /BREAKER_FAILURE_RATIO must be a number from 0 to 1/],
    [{ TT_RPC_VENUE_SERVICE_TIMEOUT_MS: "2.5" }, /TIMEOUT_MS must be an integer/],
  ])("reject a bad environment value with a clear error (%o)", (env, message) => {
    expect(() => resolveLimits("venue-service", {}, env)).toThrow(message);
  });

  it("reject a bad option and an inconsistent backoff range", () => {
    expect(() => resolveLimits("venue-service", { retryMaxAttempts: 0 }, {})).toThrow(/resilience.retryMaxAttempts must be an integer from 1 to 10, got 0/);
    expect(() => resolveLimits("venue-service", { retryInitialBackoffMs: 500, retryMaxBackoffMs: 100 }, {})).toThrow(/retryMaxBackoffMs/);
  });

  it("name every environment variable after the target", () => {
    expect(envNames("venue-service")).toContain("TT_RPC_VENUE_SERVICE_BREAKER_HALF_OPEN_AFTER_MS");
    expect(envNames("venue-service").every((n) => n.startsWith("TT_RPC_VENUE_SERVICE_"))).toBe(true);
  });
});
