/**
 * A ReplayCache shared by every replica of a service, in Redis: a call token
 * accepted by one replica is refused by all of them.
 *
 * Each check first asks a local memory cache (this replica's own tokens,
 * synchronous, no round trip for a same-replica replay), then runs one Lua
 * script in Redis that, atomically:
 *   - answers "replayed" if the (peer, jti) key exists;
 *   - counts the jti against the peer's quota for its generation (INCR with a
 *     PX that ends with the generation, like the memory cache's generations);
 *   - records the jti with SET PX <the token's remaining lifetime>.
 * The quota is per (service, peer) across all replicas, so one peer over its
 * quota is refused alone (RESOURCE_EXHAUSTED), as with the memory cache.
 *
 * Redis unreachable (the call rejects or times out): the local verdict stands,
 * so same-replica replays are still caught and calls keep working; a replay
 * sent to another replica is not caught until Redis is back. That state is
 * logged (throttled) and reported by `status()` for readiness; for
 * `retryAfterMs` after a failure Redis is not asked, so a hung Redis costs one
 * command timeout per second, not one per call.
 */
import type { Redis } from "ioredis";
import type { Logger } from "../observability/logger.ts";
import { throttledWarn } from "../observability/log-throttle.ts";
import { createReplayCache, REPLAY_CACHE_DEFAULTS, type MemoryReplayCache, type ReplayCache, type ReplayVerdict } from "./replay-cache.ts";

export interface RedisReplayCacheOptions {
  /** A connected client; the caller owns (and closes) it. */
  readonly redis: Redis;
  /** Quota: new jtis one peer may add per generation, over all replicas (default as the memory cache). */
  readonly maxPerGeneration?: number;
  /** Width of a quota generation, in seconds of keepUntil (default 5). */
  readonly generationSeconds?: number;
  /** This replica's own cache, asked first and alone while Redis is unreachable (default: a memory cache). */
  readonly local?: MemoryReplayCache;
  /** Prefix of every key (default "tt-rpc:replay:"); name the service in it when services share a Redis. */
  readonly keyPrefix?: string;
  readonly logger?: Logger;
  /** After a failed Redis check, answer from the local cache alone for this long before asking Redis again (default 1 s). */
  readonly retryAfterMs?: number;
  /** Clock in epoch milliseconds (tests inject one). */
  readonly now?: () => number;
}

export interface ReplayCacheStatus {
  readonly backend: "redis";
  /** True while the last Redis check failed: only same-replica replays are caught. */
  readonly degraded: boolean;
  /** Epoch ms of the first failure of the current degraded period. */
  readonly degradedSince: number | undefined;
}

export interface RedisReplayCache extends ReplayCache {
  check(peer: string, jti: string, keepUntil: number): Promise<ReplayVerdict>;
  status(): ReplayCacheStatus;
}

/** 0 fresh, 1 replayed, 2 over quota. KEYS: jti, quota; ARGV: jti PX, quota, quota PX. */
const CHECK_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
if n > tonumber(ARGV[2]) then return 2 end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return 0
`;

interface ReplayScripts {
  ttReplayCheck(jtiKey: string, quotaKey: string, jtiTtlMs: number, quota: number, quotaTtlMs: number): Promise<number>;
}

const VERDICTS: readonly ReplayVerdict[] = ["fresh", "replayed", "over_quota"];

export function createRedisReplayCache(options: RedisReplayCacheOptions): RedisReplayCache {
  const { redis, logger } = options;
  const now = options.now ?? Date.now;
  const maxPerGeneration = options.maxPerGeneration ?? REPLAY_CACHE_DEFAULTS.maxPerGeneration;
  const generationSeconds = options.generationSeconds ?? REPLAY_CACHE_DEFAULTS.generationSeconds;
  if (!(Number.isSafeInteger(maxPerGeneration) && maxPerGeneration > 0)) throw new RangeError("maxPerGeneration must be a positive integer");
  if (!(Number.isSafeInteger(generationSeconds) && generationSeconds > 0)) throw new RangeError("generationSeconds must be a positive integer");
  const local = options.local ?? createReplayCache({ now });
  const prefix = options.keyPrefix ?? "tt-rpc:replay:";
  redis.defineCommand("ttReplayCheck", { numberOfKeys: 2, lua: CHECK_LUA });
  const scripts = redis as unknown as ReplayScripts;
  const warnDegraded = logger
    ? throttledWarn(logger, "replay cache: Redis unreachable; only replays to this replica are caught until it is back", { perWindow: 1, windowMs: 30_000 })
    : undefined;
  const retryAfterMs = options.retryAfterMs ?? 1_000;
  let degradedSince: number | undefined;
  /** A hung Redis costs a command timeout per check: after a failure, calls skip it until then. */
  let skipRedisUntil = 0;

  return {
    async check(peer, jti, keepUntil) {
      // Also validates the arguments (throws on a malformed jti or a keepUntil too far ahead).
      const verdict = local.check(peer, jti, keepUntil);
      if (verdict !== "fresh") return verdict;
      const t = now();
      const jtiTtlMs = Math.ceil(keepUntil * 1000 - t);
      // Already past: every later presentation is stale, nothing to share.
      if (jtiTtlMs <= 0) return "fresh";
      if (t < skipRedisUntil) return verdict;
      const generation = Math.floor(keepUntil / generationSeconds);
      const quotaTtlMs = Math.max(1, Math.ceil((generation + 1) * generationSeconds * 1000 - t));
      // The {peer} hash tag keeps both keys of a check in one Redis Cluster slot.
      const tag = `${prefix}{${peer}}`;
      let answer: number;
      try {
        answer = await scripts.ttReplayCheck(`${tag}:j:${jti}`, `${tag}:q:${generation}`, jtiTtlMs, maxPerGeneration, quotaTtlMs);
      } catch (err) {
        degradedSince ??= t;
        skipRedisUntil = now() + retryAfterMs;
        warnDegraded?.({ err: errorSummary(err) });
        return verdict;
      }
      if (degradedSince !== undefined) {
        degradedSince = undefined;
        logger?.info("replay cache: Redis reachable again; replays are caught across replicas");
      }
      const shared = VERDICTS[answer];
      if (shared === undefined) throw new Error(`replay check script answered ${String(answer)}`);
      return shared;
    },
    status: () => ({ backend: "redis", degraded: degradedSince !== undefined, degradedSince }),
  };
}

/** The error's name and message only: a Redis error never carries a token, but its stack is noise in a burst. */
function errorSummary(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
