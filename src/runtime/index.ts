/**
 * @tickettoken/rpc: the public face, what a service needs to implement and call
 * contracts. Hosting a service process (configuration, identity material, shared
 * state) is "@tickettoken/rpc/host"; the strict ES256 JWS helpers are
 * "@tickettoken/rpc/jws". Generated service contracts and clients live in
 * @tickettoken/contracts; the framework's own protos under "@tickettoken/rpc/gen/*.js".
 */
export { createServer, type RpcServer, type ServerOptions } from "./server/server.ts";
export { implement, type ServiceRegistration } from "./server/routes.ts";
export type { ServerInterceptor, ServerCall, ServerNext, CallResult } from "./contract/call.ts";
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
export { defineServiceContract } from "./contract/define.ts";
export { isServiceName, type ServiceName, type WorkloadName } from "./identity/workloads.ts";
export { IDEMPOTENCY_KEY_HEADER } from "./observability/headers.ts";
export { workloadSpiffeId } from "./identity/spiffe-id.ts";
