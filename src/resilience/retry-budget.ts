/**
 * Retry budget per target (Finagle/Envoy style): over a rolling window,
 * retries may be at most `ratio` of calls plus a small floor. Under an outage
 * every caller's retries stop at ~10% extra load instead of tripling it.
 */
import type { Clock } from "./options.ts";

const BUCKETS = 10;

export interface RetryBudgetOptions {
  readonly ratio: number;
  readonly minRetries: number;
  readonly windowMs: number;
  readonly clock: Clock;
}

export class RetryBudget {
  private readonly bucketMs: number;
  private readonly calls = new Uint32Array(BUCKETS);
  private readonly retries = new Uint32Array(BUCKETS);
  private readonly epochs = new Float64Array(BUCKETS).fill(-1);

  constructor(private readonly options: RetryBudgetOptions) {
    this.bucketMs = Math.max(1, Math.floor(options.windowMs / BUCKETS));
  }

  /** A new call (not a retry) was made. */
  recordCall(): void {
    this.calls[this.slot()]!++;
  }

  /** Spends one retry if the budget has room; false means "do not retry". */
  tryWithdraw(): boolean {
    const current = Math.floor(this.options.clock.now() / this.bucketMs);
    let calls = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      const epoch = this.epochs[i]!;
      if (epoch > current - BUCKETS && epoch <= current) {
        calls += this.calls[i]!;
        retries += this.retries[i]!;
      }
    }
    if (retries >= calls * this.options.ratio + this.options.minRetries) return false;
    this.retries[this.slot()]!++;
    return true;
  }

  private slot(): number {
    const epoch = Math.floor(this.options.clock.now() / this.bucketMs);
    const slot = epoch % BUCKETS;
    if (this.epochs[slot] !== epoch) {
      this.epochs[slot] = epoch;
      this.calls[slot] = 0;
      this.retries[slot] = 0;
    }
    return slot;
  }
}
