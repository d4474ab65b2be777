/**
 * cockatiel's breaker interface over a rolling time window: calls and
 * failures land in ten buckets that expire by time, so a burst of failures
 * long ago cannot open the circuit today (cockatiel's SamplingBreaker keeps
 * stale samples until new calls push them out).
 */
import { CircuitState, type IBackoff, type IBackoffFactory, type IBreaker } from "cockatiel";
import type { Clock } from "./options.ts";

const BUCKETS = 10;

export interface WindowBreakerOptions {
  readonly windowMs: number;
  /** Opens when failures / calls is above this ... */
  readonly failureRatio: number;
  /** ... and the window holds at least this many calls. */
  readonly minCalls: number;
  readonly clock: Clock;
}

export class WindowBreaker implements IBreaker {
  private readonly bucketMs: number;
  private readonly calls = new Uint32Array(BUCKETS);
  private readonly failures = new Uint32Array(BUCKETS);
  /** Bucket number (time / bucketMs) each slot currently holds. */
  private readonly epochs = new Float64Array(BUCKETS).fill(-1);

  constructor(private readonly options: WindowBreakerOptions) {
    this.bucketMs = Math.max(1, Math.floor(options.windowMs / BUCKETS));
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
    else this.record(false);
  }

  failure(state: CircuitState): boolean {
    if (state !== CircuitState.Closed) return false;
    this.record(true);
    const { calls, failures } = this.totals();
    return calls >= this.options.minCalls && failures / calls > this.options.failureRatio;
  }

  /** Calls and failures in the window now. */
  totals(): { calls: number; failures: number } {
    const current = Math.floor(this.options.clock.now() / this.bucketMs);
    let calls = 0;
    let failures = 0;
    for (let i = 0; i < BUCKETS; i++) {
      const epoch = this.epochs[i]!;
      if (epoch > current - BUCKETS && epoch <= current) {
        calls += this.calls[i]!;
        failures += this.failures[i]!;
      }
    }
    return { calls, failures };
  }

  clear(): void {
    this.calls.fill(0);
    this.failures.fill(0);
    this.epochs.fill(-1);
  }

  private record(failed: boolean): void {
    const epoch = Math.floor(this.options.clock.now() / this.bucketMs);
    const slot = epoch % BUCKETS;
    if (this.epochs[slot] !== epoch) {
      this.epochs[slot] = epoch;
      this.calls[slot] = 0;
      this.failures[slot] = 0;
    }
    this.calls[slot]!++;
    if (failed) this.failures[slot]!++;
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
