import type { DescService } from "@bufbuild/protobuf";
import type { ServiceName } from "../identity/workloads.ts";
import type { FrameworkContract, MethodContracts, ServiceContract } from "./types.ts";

/**
 * Binds generated call metadata to a service descriptor. Called only by
 * generated code; the typed `methods` map makes a contract that misses a
 * method (or names one that does not exist) a compile error.
 */
export function defineServiceContract<S extends DescService>(
  service: S,
  meta: { name: ServiceName; defaultPort: number; methods: MethodContracts<S>; sourceInfo?: Readonly<Record<string, string>> },
): ServiceContract<S> {
  const { name, defaultPort, methods, sourceInfo } = meta;
  return Object.freeze(sourceInfo === undefined ? { service, name, defaultPort, methods } : { service, name, defaultPort, methods, sourceInfo });
}

/** Binds generated call metadata to a framework service descriptor (generated code only). */
export function defineFrameworkContract<S extends DescService>(
  service: S,
  meta: { methods: MethodContracts<S> },
): FrameworkContract<S> {
  return Object.freeze({ service, methods: meta.methods });
}
