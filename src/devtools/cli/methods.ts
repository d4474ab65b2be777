/**
 * Every method a token can name: the contracts' RPCs plus the framework
 * services (health, reflection v1/v1alpha, admin), with short aliases for humans.
 * Plain generated strings: no descriptor decoding, no runtime (`tt-rpc token` starts fast).
 */
import { methodPaths as serviceMethods } from "@tickettoken/contracts/method_paths";
import { methodPaths as frameworkMethods } from "@tickettoken/rpc/gen/method_paths.js";

export const METHOD_ALIASES: Readonly<Record<string, string>> = {
  reflection: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
  "reflection-v1alpha": "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
  "health-check": "/grpc.health.v1.Health/Check",
};

export function knownMethods(): Set<string> {
  return new Set<string>([...frameworkMethods, ...serviceMethods]);
}
