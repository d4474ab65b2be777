/**
 * The one place that builds a server's shared state (dedupe store and replay
 * cache) from configuration: `TT_RPC_REDIS_URL` selects Redis for both, so
 * every replica of a service sees the same keys and tokens; without it, the
 * in-memory stores (correct for one process).
 *
 * The Redis client fails fast instead of queueing: no offline queue, a
 * timeout on every command and on connecting, one retry of a command cut by
 * a lost connection, reconnection with a short capped backoff.
 */
import { Redis, type RedisOptions } from "ioredis";
import { createRedisReplayCache, type ReplayCacheStatus } from "../auth/redis-replay-cache.ts";
import { createReplayCache, type ReplayCache } from "../auth/replay-cache.ts";
import type { Logger } from "../observability/logger.ts";
import { createMemoryDedupeStore, type DedupeStore } from "../resilience/dedupe-store.ts";
import { createRedisDedupeStore, type RedisDedupeStoreOptions } from "../resilience/redis-dedupe-store.ts";
import { throttledWarn } from "../observability/log-throttle.ts";

export const REDIS_URL_VARIABLE = "TT_RPC_REDIS_URL";
export const REDIS_COMMAND_TIMEOUT_VARIABLE = "TT_RPC_REDIS_COMMAND_TIMEOUT_MS";

export const REDIS_CLIENT_DEFAULTS = {
  /** Every command (a dedupe claim, a replay check) answers within this or fails. */
  commandTimeoutMs: 500,
  connectTimeoutMs: 2_000,
  /** Longest pause between reconnection attempts. */
  maxReconnectDelayMs: 1_000,
} as const;

export interface StateBackendsOptions {
  /** This service's workload name: namespaces the keys, so services may share one Redis. */
  readonly service: string;
  /** Where TT_RPC_REDIS_URL and TT_RPC_REDIS_COMMAND_TIMEOUT_MS are read (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Wins over the environment. */
  readonly redisUrl?: string;
  readonly commandTimeoutMs?: number;
  readonly logger?: Logger;
  /** Redis dedupe store settings (TTL, claim TTL, response size). */
  readonly dedupe?: Omit<RedisDedupeStoreOptions, "redis" | "keyPrefix">;
  /** Replay-cache quota (per peer and generation, over all replicas). */
  readonly replay?: { readonly maxPerGeneration?: number; readonly generationSeconds?: number };
}

export interface StateBackendsStatus {
  readonly backend: "memory" | "redis";
  /** The store answers: always for memory; for Redis, the connection is ready. */
  readonly reachable: boolean;
  /** Redis only: the replay cache fell back to this replica's own tokens at its last check. */
  readonly replay?: ReplayCacheStatus;
}

export interface StateBackends {
  readonly dedupeStore: DedupeStore;
  readonly replayCache: ReplayCache;
  /** For readiness (/readyz) and logs; cheap, no round trip. */
  status(): StateBackendsStatus;
  close(): Promise<void>;
}

/** What a redis:// or rediss:// URL names; the password never appears in an error or log. */
export interface RedisConnection {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly tls: boolean;
  readonly username?: string;
  readonly password?: string;
}

/** Parses and checks a Redis URL; errors name `variable` and the expected form, never the value (it may hold a password). */
export function parseRedisUrl(value: string, variable = REDIS_URL_VARIABLE): RedisConnection {
  const form = "redis://[user:password@]host[:port][/db] or rediss://... (TLS)";
  const bad = (why: string) => new Error(`${variable} ${why}: expected ${form}`);
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw bad("is not a URL");
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") throw bad(`has scheme ${JSON.stringify(url.protocol.slice(0, 16))}`);
  if (url.hostname === "") throw bad("has no host");
  if (url.search !== "" || url.hash !== "") throw bad("has a query or fragment");
  const port = url.port === "" ? 6379 : Number(url.port);
  const dbText = url.pathname.replace(/^\//, "");
  if (!/^\d{0,5}$/.test(dbText)) throw bad("has a database that is not a number");
  const db = dbText === "" ? 0 : Number(dbText);
  return {
    // URL keeps IPv6 hosts in brackets; the socket wants them bare.
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port,
    db,
    tls: url.protocol === "rediss:",
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
  };
}

/** A client configured to fail fast (see the header); the caller closes it. */
export function createRedisClient(connection: RedisConnection, options: { commandTimeoutMs?: number; connectionName?: string } = {}): Redis {
  const config: RedisOptions = {
    host: connection.host,
    port: connection.port,
    db: connection.db,
    ...(connection.username !== undefined ? { username: connection.username } : {}),
    ...(connection.password !== undefined ? { password: connection.password } : {}),
    // Certificate and host name are verified (Node's defaults); SNI names the host.
    ...(connection.tls ? { tls: { servername: connection.host } } : {}),
    commandTimeout: options.commandTimeoutMs ?? REDIS_CLIENT_DEFAULTS.commandTimeoutMs,
    connectTimeout: REDIS_CLIENT_DEFAULTS.connectTimeoutMs,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 10), REDIS_CLIENT_DEFAULTS.maxReconnectDelayMs),
    ...(options.connectionName !== undefined ? { connectionName: options.connectionName } : {}),
  };
  return new Redis(config);
}

/**
 * Builds both stores. With Redis, waits (at most the connect timeout) for the
 * first connection, so a healthy start answers its first calls; an
 * unreachable Redis does not stop the start: keyed calls answer UNAVAILABLE
 * and `status().reachable` is false until it connects.
 */
export async function createStateBackends(options: StateBackendsOptions): Promise<StateBackends> {
  const env = options.env ?? process.env;
  const rawUrl = options.redisUrl ?? env[REDIS_URL_VARIABLE];
  if (rawUrl === undefined || rawUrl.trim() === "") {
    return {
      dedupeStore: createMemoryDedupeStore(),
      replayCache: createReplayCache(),
      status: () => ({ backend: "memory", reachable: true }),
      close: async () => {},
    };
  }
  if (!/^[a-z][a-z0-9-]*$/.test(options.service)) throw new Error(`service must be a workload name, got ${JSON.stringify(options.service)}`);
  const connection = parseRedisUrl(rawUrl);
  const commandTimeoutMs = options.commandTimeoutMs ?? timeoutFromEnv(env);
  const redis = createRedisClient(connection, { commandTimeoutMs, connectionName: `tt-rpc:${options.service}` });
  const logger = options.logger;
  const where = { redis: `${connection.host}:${connection.port}/${connection.db}` };
  // Without a listener ioredis prints every connection error; one line per burst is enough.
  const warnConnection = logger ? throttledWarn(logger, "redis connection failed; keyed calls answer UNAVAILABLE until it is back", { perWindow: 1, windowMs: 30_000 }) : undefined;
  redis.on("error", (err: Error) => warnConnection?.({ ...where, err: `${err.name}: ${err.message}` }));
  redis.on("ready", () => logger?.info(where, "redis connection ready"));

  const prefix = `tt-rpc:${options.service}:`;
  const dedupeStore = createRedisDedupeStore({ ...options.dedupe, redis, keyPrefix: `${prefix}dedupe:` });
  const replayCache = createRedisReplayCache({ ...options.replay, redis, keyPrefix: `${prefix}replay:`, ...(logger ? { logger } : {}) });
  await untilReady(redis, REDIS_CLIENT_DEFAULTS.connectTimeoutMs);
  return {
    dedupeStore,
    replayCache,
    status: () => ({ backend: "redis", reachable: redis.status === "ready", replay: replayCache.status() }),
    async close() {
      try {
        await redis.quit();
      } catch {
        redis.disconnect();
      }
    },
  };
}

export function timeoutFromEnv(env: Readonly<Record<string, string | undefined>>): number {
  const raw = env[REDIS_COMMAND_TIMEOUT_VARIABLE];
  if (raw === undefined || raw === "") return REDIS_CLIENT_DEFAULTS.commandTimeoutMs;
  const ms = Number(raw);
  if (!(Number.isSafeInteger(ms) && ms >= 10 && ms <= 60_000)) {
    throw new Error(`${REDIS_COMMAND_TIMEOUT_VARIABLE} must be an integer number of milliseconds from 10 to 60000, got ${JSON.stringify(raw.slice(0, 32))}`);
  }
  return ms;
}

function untilReady(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === "ready") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off("ready", done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    redis.once("ready", done);
  });
}
