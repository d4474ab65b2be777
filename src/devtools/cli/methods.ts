/**
 * Every method a token can name: the contracts' RPCs plus the framework
 * services (health, reflection v1/v1alpha, admin), with short aliases for humans.
 */
import { serviceContracts } from "@tickettoken/contracts";
import { frameworkContracts } from "@tickettoken/rpc/gen/framework_contracts.js";
import { Health } from "@tickettoken/rpc/gen/grpc/health/v1/health_pb.js";
import { ServerReflection as ReflectionV1 } from "@tickettoken/rpc/gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ReflectionV1alpha } from "@tickettoken/rpc/gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { DescService } from "@bufbuild/protobuf";

const path = (s: DescService, i = 0) => `/${s.typeName}/${s.methods[i]!.name}`;

export const METHOD_ALIASES: Readonly<Record<string, string>> = {
  reflection: path(ReflectionV1),
  "reflection-v1alpha": path(ReflectionV1alpha),
  "health-check": `/${Health.typeName}/${Health.method.check.name}`,
};

export function knownMethods(): Set<string> {
  const all = new Set<string>(Object.values(METHOD_ALIASES));
  for (const s of [Health, ReflectionV1, ReflectionV1alpha, ...frameworkContracts.map((c) => c.service), ...serviceContracts.map((c) => c.service)]) {
    for (const m of s.methods) all.add(`/${s.typeName}/${m.name}`);
  }
  return all;
}
