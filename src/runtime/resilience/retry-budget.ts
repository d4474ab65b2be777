/**
 * Retry budget per target (Finagle/Envoy style): over a rolling window,
 * retries may be at most `ratio` of calls plus a small floor. Under an outage
 * every caller's retries stop at ~10% extra load instead of tripling it.
 */
import type { Clock } from "./options.ts";
import { RollingWindow } from "./rolling-window.ts";

export interface RetryBudgetOptions {
  readonly ratio: number;
  readonly minRetries: number;
  readonly windowMs: number;
  readonly clock: Clock;
}

export class RetryBudget {
  /** Calls and retries in the window. */
  private readonly window: RollingWindow;

  constructor(private readonly options: RetryBudgetOptions) {
    this.window = new RollingWindow(options.windowMs, options.clock);
  }

  /** A new call (not a retry) was made. */
  recordCall(): void {
    this.window.add(1, 0);
  }

  /** Spends one retry if the budget has room; false means "do not retry". */
  tryWithdraw(): boolean {
    const [calls, retries] = this.window.totals();
    if (retries >= calls * this.options.ratio + this.options.minRetries) return false;
    this.window.add(0, 1);
    return true;
  }
}
