/**
 * @tickettoken/rpc: the public face. Generated contracts and clients live
 * under "@tickettoken/rpc/gen/tickettoken/<service>/v1/<service>_service_rpc.ts".
 */
export { createServer, type RpcServer, type ServerOptions } from "./server/server.ts";
export { implement, type ServiceRegistration } from "./server/routes.ts";
export type { ServerInterceptor, ServerCall, ServerNext, CallResult } from "./server/call.ts";
export { createServiceClient, createServiceTransport, closeClient, type ServiceClientOptions } from "./client/service-client.ts";
export { callContext, CONTEXT_TOKEN_HEADER, type VerifiedCallContext, type CallerIdentity } from "./auth/call-context.ts";
export { createMaterialSource, type MaterialSource, type IdentityMaterial } from "./identity/material.ts";
export { createContextTokenMinter } from "./auth/context-token.ts";
export { createLogger, type Logger } from "./observability/logger.ts";
export { ResilienceRegistry, resilienceRegistry } from "./resilience/registry.ts";
export { staleAge, STALE_HEADER } from "./resilience/policy-stack.ts";
export type { ResilienceOptions, ResilienceLimits, FallbackOptions, Clock } from "./resilience/options.ts";
export type { ResilienceEvent, ResilienceObserver } from "./resilience/events.ts";
export type { ServiceContract, MethodContract, AccessRule } from "./contract/types.ts";
export { Code, ConnectError } from "@connectrpc/connect";
export { createMemoryDedupeStore, type DedupeStore, type DedupeBegin, type MemoryDedupeStoreOptions } from "./resilience/dedupe-store.ts";
export { createStateBackends, type StateBackends, type StateBackendsOptions, type StateBackendsStatus } from "./server/state-backends.ts";
export { createRedisDedupeStore, type RedisDedupeStoreOptions } from "./resilience/redis-dedupe-store.ts";
export { createRedisReplayCache, type RedisReplayCache, type RedisReplayCacheOptions } from "./auth/redis-replay-cache.ts";
