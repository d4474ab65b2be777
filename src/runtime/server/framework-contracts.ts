/**
 * Contracts for the framework's own services. Health and reflection have
 * no .proto options of ours to generate from, so the contract is derived from
 * the descriptor at start-up: same access-rule shape as generated contracts,
 * so the auth interceptors treat them like any other service. The admin
 * service's contract is generated from admin.proto without an identity; each
 * server binds its own.
 */
import type { DescService } from "@bufbuild/protobuf";
import type { FrameworkContract, MethodContract, MethodContracts, ServiceContract } from "../contract/types.ts";
import { defineServiceContract } from "../contract/define.ts";
import { defaultRpcPort, WORKLOAD_NAMES, type ServiceName, type WorkloadName } from "../identity/workloads.ts";

/** Every workload may probe health (load balancers, peers, operators). */
export const HEALTH_CALLERS: readonly WorkloadName[] = WORKLOAD_NAMES;

/** Reflection exposes the contracts' schema, which no workload of our trust domain needs hidden (grpcurl from any pod). */
export const REFLECTION_CALLERS: readonly WorkloadName[] = WORKLOAD_NAMES;

/**
 * Read-only built-ins that admit any peer whose certificate passed mTLS in our
 * trust domain WITHOUT a call token: grpcurl's `list`/`describe` send several
 * reflection requests with the same headers (a single-use token would be a
 * replay on the second), and probes should not need a signing key. A token
 * that is sent is still verified in full.
 */
export const MTLS_ONLY_METHODS: ReadonlySet<string> = new Set([
  "/grpc.health.v1.Health/Check",
  "/grpc.health.v1.Health/Watch",
  "/grpc.health.v1.Health/List",
  "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
]);

export function frameworkContract<S extends DescService>(
  service: S,
  host: ServiceName,
  callers: readonly WorkloadName[],
): ServiceContract<S> {
  const access = Object.freeze({ callers: Object.freeze([...callers]), scopes: Object.freeze([]) });
  const methods: Record<string, MethodContract> = {};
  for (const method of service.methods) {
    methods[method.localName] = Object.freeze({
      path: `/${service.typeName}/${method.name}`,
      access,
      // Health and reflection only read state: safe to retry and hedge.
      idempotency: "no_side_effects",
      idempotencyKey: false,
    });
  }
  return defineServiceContract(service, {
    name: host,
    defaultPort: defaultRpcPort(host),
    // Built from the descriptor's own method list, so it is complete by construction.
    methods: Object.freeze(methods) as MethodContracts<S>,
  });
}

/** Binds a generated framework contract (admin) to the identity of the server hosting it. */
export function hostFrameworkContract<S extends DescService>(contract: FrameworkContract<S>, host: ServiceName): ServiceContract<S> {
  return defineServiceContract(contract.service, { name: host, defaultPort: defaultRpcPort(host), methods: contract.methods });
}
