/**
 * @tickettoken/rpc/host: what the process hosting a service needs besides the
 * public API: settings primitives (addresses, resilience limits, message size,
 * Redis), identity material from the PKI directory, shared-state backends,
 * log flushing. Services' handlers import "@tickettoken/rpc" only.
 */
export { createServer, type RpcServer, type ServerOptions } from "./server/server.ts";
export { createStateBackends, parseRedisUrl, timeoutFromEnv, REDIS_CLIENT_DEFAULTS, type RedisConnection, type StateBackends } from "./server/state-backends.ts";
export { createMaterialSource, type MaterialSource } from "./identity/material.ts";
export { DEFAULT_CERTS_DIR, PkiError, loadContextSigningKey, loadTrustBundle, loadWorkloadMaterial, pkiPaths, type TrustBundle, type WorkloadMaterial } from "./identity/pki-files.ts";
export { createLogger, flushLogger, type Logger } from "./observability/logger.ts";
export { addressEnvKey, addressVariable, isHostName, parseRpcAddress, parseServiceUrl, resolveAddress } from "./client/address.ts";
export { DEFAULT_LIMITS, LIMIT_SETTINGS, envPrefix, limitForm, limitInRange, resolveLimits, type ResilienceLimits } from "./resilience/options.ts";
export { DEFAULT_MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES_FORM, MAX_MESSAGE_BYTES_VARIABLE, parseMaxMessageBytes } from "./wire/message-size.ts";
