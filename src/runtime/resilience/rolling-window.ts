/**
 * Two counters over a rolling time window of ten buckets that expire by time
 * (the breaker counts calls and failures, the retry budget calls and
 * retries). A bucket is reused, zeroed, once its time slot has passed, so
 * nothing old is ever summed and no timer runs.
 */
import type { Clock } from "./options.ts";

const BUCKETS = 10;

export class RollingWindow {
  private readonly bucketMs: number;
  private readonly first = new Uint32Array(BUCKETS);
  private readonly second = new Uint32Array(BUCKETS);
  /** Bucket number (time / bucketMs) each slot currently holds. */
  private readonly epochs = new Float64Array(BUCKETS).fill(-1);

  constructor(
    windowMs: number,
    private readonly clock: Clock,
  ) {
    this.bucketMs = Math.max(1, Math.floor(windowMs / BUCKETS));
  }

  /** Adds to the current bucket's counters. */
  add(first: number, second: number): void {
    const epoch = Math.floor(this.clock.now() / this.bucketMs);
    const slot = epoch % BUCKETS;
    if (this.epochs[slot] !== epoch) {
      this.epochs[slot] = epoch;
      this.first[slot] = 0;
      this.second[slot] = 0;
    }
    this.first[slot]! += first;
    this.second[slot]! += second;
  }

  /** Both counters summed over the window as of now. */
  totals(): [first: number, second: number] {
    const current = Math.floor(this.clock.now() / this.bucketMs);
    let first = 0;
    let second = 0;
    for (let i = 0; i < BUCKETS; i++) {
      const epoch = this.epochs[i]!;
      if (epoch > current - BUCKETS && epoch <= current) {
        first += this.first[i]!;
        second += this.second[i]!;
      }
    }
    return [first, second];
  }

  clear(): void {
    this.first.fill(0);
    this.second.fill(0);
    this.epochs.fill(-1);
  }
}
