/**
 * A DedupeStore shared by every replica of a service, in Redis, so a retried
 * keyed call that lands on another replica still applies once.
 *
 * One Redis string per scope, named by SHA-256 of the scope (the idempotency
 * key may be built from business ids; Redis never sees it in the clear):
 *   claim:     "c" <token> "\n" <fingerprint>           PX claimTtlMs
 *   completed: "d" <fingerprint> "\n" <response bytes>  PX ttlMs
 * Every step is atomic: `begin` is one SET NX PX GET (claims, or returns what
 * holds the scope, in one round trip; Redis >= 7.0); `complete` and `release`
 * are Lua compare-and-set / compare-and-delete on the holder's claim, so a
 * holder whose claim expired can never overwrite or drop someone else's.
 *
 * A claim expires (PX) so a crashed holder frees its scope; a duplicate waits
 * by polling the claim with backoff (one poll per scope and process, however
 * many calls wait), never longer than a claim can live.
 *
 * Bounded time is the Redis client's job (commandTimeout, no offline queue:
 * see state-backends.ts). Every method rejects when Redis fails; the dedupe
 * step answers UNAVAILABLE then (fail closed: never "apply without dedupe").
 */
import { createHash, randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import type { DedupeBegin, DedupeStore } from "./dedupe-store.ts";

export interface RedisDedupeStoreOptions {
  /** A connected client; the caller owns (and closes) it. */
  readonly redis: Redis;
  /** How long a stored response answers repeats (default 24 h, like the memory store). */
  readonly ttlMs?: number;
  /**
   * How long a claim lives without `complete`/`release` (default 60 s): the
   * longest a keyed handler may run before another replica may run it too, and
   * the longest a crashed holder blocks its key.
   */
  readonly claimTtlMs?: number;
  /** Responses larger than this are not stored (their waiters run again), default 1 MiB. */
  readonly maxResponseBytes?: number;
  /** Prefix of every key (default "tt-rpc:dedupe:"). */
  readonly keyPrefix?: string;
  /** First and longest pause between polls of a claim a duplicate waits on (default 10 ms -> 250 ms). */
  readonly pollMs?: { readonly initial: number; readonly max: number };
}

export const REDIS_DEDUPE_DEFAULTS = {
  ttlMs: 24 * 60 * 60 * 1000,
  claimTtlMs: 60_000,
  maxResponseBytes: 1024 * 1024,
  keyPrefix: "tt-rpc:dedupe:",
  pollMs: { initial: 10, max: 250 },
} as const;

/** Replaces a claim that starts with ARGV[1] ("c<token>\n") by the completed entry. */
const COMPLETE_LUA = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local claim = ARGV[1]
if string.sub(v, 1, #claim) ~= claim then return 0 end
redis.call('SET', KEYS[1], 'd' .. string.sub(v, #claim + 1) .. '\\n' .. ARGV[2], 'PX', ARGV[3])
return 1
`;

/** Deletes the key only while it still holds the claim that starts with ARGV[1]. */
const RELEASE_LUA = `
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

interface DedupeScripts {
  ttDedupeComplete(key: string, claim: string, response: Buffer, ttlMs: number): Promise<number>;
  ttDedupeRelease(key: string, claim: string): Promise<number>;
}

const CLAIM = 0x63; // "c"
const DONE = 0x64; // "d"
const NEWLINE = 0x0a;

export function createRedisDedupeStore(options: RedisDedupeStoreOptions): DedupeStore {
  const { redis } = options;
  const ttlMs = positive(options.ttlMs ?? REDIS_DEDUPE_DEFAULTS.ttlMs, "ttlMs");
  const claimTtlMs = positive(options.claimTtlMs ?? REDIS_DEDUPE_DEFAULTS.claimTtlMs, "claimTtlMs");
  const maxResponseBytes = positive(options.maxResponseBytes ?? REDIS_DEDUPE_DEFAULTS.maxResponseBytes, "maxResponseBytes");
  const prefix = options.keyPrefix ?? REDIS_DEDUPE_DEFAULTS.keyPrefix;
  const poll = options.pollMs ?? REDIS_DEDUPE_DEFAULTS.pollMs;
  redis.defineCommand("ttDedupeComplete", { numberOfKeys: 1, lua: COMPLETE_LUA });
  redis.defineCommand("ttDedupeRelease", { numberOfKeys: 1, lua: RELEASE_LUA });
  const scripts = redis as unknown as DedupeScripts;
  /** One poll per claimed key in this process, shared by every call waiting on it. */
  const waits = new Map<string, { readonly claim: string; readonly settled: Promise<void> }>();

  const keyOf = (scope: string) => prefix + createHash("sha256").update(scope).digest("base64url");
  const claimOf = (token: string) => `c${token}\n`;

  /** Resolves once `key` no longer holds `claim` (completed, released, expired), or Redis fails (the next begin reports it). */
  function settledWhenGone(key: string, claim: string): Promise<void> {
    const existing = waits.get(key);
    if (existing?.claim === claim) return existing.settled;
    const settled = pollUntilGone(key, claim).finally(() => {
      if (waits.get(key)?.settled === settled) waits.delete(key);
    });
    waits.set(key, { claim, settled });
    return settled;
  }

  async function pollUntilGone(key: string, claim: string): Promise<void> {
    // A claim never has more than claimTtlMs left, so neither has this wait.
    const giveUpAt = Date.now() + claimTtlMs;
    let delay = poll.initial;
    while (Date.now() < giveUpAt) {
      await sleep(Math.min(delay, Math.max(1, giveUpAt - Date.now())));
      try {
        if ((await redis.getrange(key, 0, claim.length - 1)) !== claim) return;
      } catch {
        return;
      }
      delay = Math.min(delay * 2, poll.max);
    }
  }

  function parse(key: string, value: Buffer): DedupeBegin {
    const newline = value.indexOf(NEWLINE);
    if (newline > 0 && value[0] === CLAIM) {
      const claim = value.toString("latin1", 0, newline + 1);
      return { state: "in_flight", fingerprint: value.toString("utf8", newline + 1), settled: settledWhenGone(key, claim) };
    }
    if (newline > 0 && value[0] === DONE) {
      return { state: "completed", fingerprint: value.toString("utf8", 1, newline), response: value.subarray(newline + 1) };
    }
    // Not written by this store: refuse rather than guess (the dedupe step answers UNAVAILABLE).
    throw new Error(`dedupe entry ${key} has an unknown format`);
  }

  return {
    async begin(scope, fingerprint) {
      if (fingerprint.includes("\n")) throw new TypeError("fingerprint must not contain a newline");
      const key = keyOf(scope);
      const token = randomBytes(16).toString("base64url");
      const held = await redis.setBuffer(key, `${claimOf(token)}${fingerprint}`, "PX", claimTtlMs, "NX", "GET");
      return held === null ? { state: "claimed", token } : parse(key, held);
    },
    async complete(scope, token, response) {
      const key = keyOf(scope);
      // Too large to keep: drop the claim instead, so waiters run the call again (like the memory store).
      if (response.byteLength > maxResponseBytes) {
        await scripts.ttDedupeRelease(key, claimOf(token));
        return;
      }
      await scripts.ttDedupeComplete(key, claimOf(token), Buffer.from(response.buffer, response.byteOffset, response.byteLength), ttlMs);
    },
    async release(scope, token) {
      await scripts.ttDedupeRelease(keyOf(scope), claimOf(token));
    },
  };
}

function positive(value: number, name: string): number {
  if (!(Number.isSafeInteger(value) && value > 0)) throw new RangeError(`${name} must be a positive integer`);
  return value;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
