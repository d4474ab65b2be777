/**
 * A log line that cannot be turned into a flood: at most `perWindow` lines per
 * window; the rest are only counted, and the next line written says how many
 * were dropped. Used for events a peer can trigger at will (bad handshakes,
 * refused connections, malformed requests).
 */
import type { Logger } from "./logger.ts";

export interface ThrottleOptions {
  readonly perWindow?: number;
  readonly windowMs?: number;
  /** Injected clock (tests). */
  readonly now?: () => number;
}

export type ThrottledWarn = (fields: Record<string, unknown>) => void;

export function throttledWarn(logger: Logger, msg: string, opts: ThrottleOptions = {}): ThrottledWarn {
  const perWindow = opts.perWindow ?? 20;
  const windowMs = opts.windowMs ?? 10_000;
  const now = opts.now ?? Date.now;
  let windowStart = -Infinity;
  let written = 0;
  let suppressed = 0;
  return (fields) => {
    const t = now();
    if (t - windowStart >= windowMs) {
      windowStart = t;
      written = 0;
    }
    if (written >= perWindow) {
      suppressed++;
      return;
    }
    written++;
    if (suppressed > 0) {
      logger.warn({ ...fields, suppressed }, msg);
      suppressed = 0;
    } else {
      logger.warn(fields, msg);
    }
  };
}
