/**
 * cockatiel's breaker interface over a rolling time window: calls and
 * failures land in ten buckets that expire by time, so a burst of failures
 * long ago cannot open the circuit today (cockatiel's SamplingBreaker keeps
 * stale samples until new calls push them out).
 */
import { CircuitState, type IBackoff, type IBackoffFactory, type IBreaker } from "cockatiel";
import type { Clock } from "./options.ts";
import { RollingWindow } from "./rolling-window.ts";

export interface WindowBreakerOptions {
  readonly windowMs: number;
  /** Opens when failures / calls is above this ... */
  readonly failureRatio: number;
  /** ... and the window holds at least this many calls. */
  readonly minCalls: number;
  readonly clock: Clock;
}

export class WindowBreaker implements IBreaker {
  /** Calls and failures in the window. */
  private readonly window: RollingWindow;

  constructor(private readonly options: WindowBreakerOptions) {
    this.window = new RollingWindow(options.windowMs, options.clock);
  }

  /** Not serialised: state restored from JSON would hold stale timestamps anyway. */
  get state(): unknown {
    return undefined;
  }
  set state(_value: unknown) {
    this.clear();
  }

  success(state: CircuitState): void {
    // A successful half-open probe closes the circuit: start from a clean window.
    if (state === CircuitState.HalfOpen) this.clear();
    else this.window.add(1, 0);
  }

  failure(state: CircuitState): boolean {
    if (state !== CircuitState.Closed) return false;
    this.window.add(1, 1);
    const { calls, failures } = this.totals();
    return calls >= this.options.minCalls && failures / calls > this.options.failureRatio;
  }

  /** Calls and failures in the window now. */
  totals(): { calls: number; failures: number } {
    const [calls, failures] = this.window.totals();
    return { calls, failures };
  }

  clear(): void {
    this.window.clear();
  }
}

/**
 * cockatiel's `halfOpenAfter`, measured on our clock. cockatiel checks
 * `Date.now() - openedAt < backoff.duration`; answering 0 (go half-open) or
 * Infinity (stay open) from the injected clock makes that check follow it, so
 * tests move 30 s on without waiting and production behaves the same.
 */
export class HalfOpenAfter implements IBackoffFactory<unknown> {
  constructor(
    private readonly ms: number,
    private readonly clock: Clock,
  ) {}

  next(): IBackoff<unknown> {
    const openedAt = this.clock.now();
    const { ms, clock } = this;
    return {
      get duration() {
        return clock.now() - openedAt >= ms ? 0 : Infinity;
      },
      next: () => this.next(),
    };
  }
}
