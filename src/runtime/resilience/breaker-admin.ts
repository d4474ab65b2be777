/**
 * What operators see of this process's circuit breakers: the shape the admin
 * RPC lists and resets, independent of how the resilience stack keeps them.
 */
export type BreakerState = "closed" | "open" | "half_open";

export interface BreakerSnapshot {
  /** Downstream service (workload name) the breaker guards. */
  readonly target: string;
  readonly state: BreakerState;
  /** Calls and infrastructure failures counted in the current rolling window. */
  readonly windowCalls: number;
  readonly windowFailures: number;
  /** When the breaker last changed state (epoch ms), if it ever did. */
  readonly changedAt?: number;
}

export interface BreakerAdmin {
  list(): BreakerSnapshot[];
  /** Closes the named target's breaker and clears its window; false if no such breaker. */
  reset(target: string): boolean;
}
