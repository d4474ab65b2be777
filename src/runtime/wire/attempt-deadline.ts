import { createContextKey } from "@connectrpc/connect";

/**
 * Per-attempt deadline (epoch ms) set by interceptors. connect-es fixes the
 * call timeout before interceptors run; this lets the resilience chain give
 * each attempt its own deadline and rewrite grpc-timeout every time.
 */
export const attemptDeadlineKey = createContextKey<number | undefined>(undefined, { description: "tt-rpc attempt deadline" });
