import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { ServiceName, WorkloadName } from "../identity/workloads.ts";

/** Retry safety of a method, from the standard `idempotency_level` option. */
export type Idempotency = "unknown" | "no_side_effects" | "idempotent";

/** Who may call a method (deny by default). */
export interface AccessRule {
  /** Caller workload names, matched against the caller's SPIFFE ID. */
  readonly callers: readonly WorkloadName[];
  /** Scopes the call's signed context token must all carry. */
  readonly scopes: readonly string[];
}

/** Everything the runtime needs to know about one RPC, emitted by protoc-gen-tt-rpc. */
export interface MethodContract {
  /** gRPC path, "/tickettoken.ticket.v1.TicketService/GetTicketStatus". */
  readonly path: string;
  readonly access: AccessRule;
  readonly idempotency: Idempotency;
  /** Default deadline in ms; undefined means the framework default. */
  readonly timeoutMs?: number;
  /** Calls carry an `idempotency-key` header, constant across retries. */
  readonly idempotencyKey: boolean;
  /** localName of the request field that carries the tenant id, if any. */
  readonly tenantKey?: string;
}

export type MethodContracts<S extends DescService> = {
  readonly [K in keyof S["method"]]: MethodContract;
};

export interface ServiceContract<S extends DescService = DescService> {
  readonly service: S;
  /** The implementing service's workload name (its SPIFFE ID ends in /sa/<name>). */
  readonly name: ServiceName;
  readonly defaultPort: number;
  readonly methods: MethodContracts<S>;
  /** The contract files' comments (SourceCodeInfo, base64, by file name), served by reflection. */
  readonly sourceInfo?: Readonly<Record<string, string>>;
}

/**
 * Call metadata of a framework service (admin): every server hosts it and
 * binds its own identity at start-up, which makes it a ServiceContract.
 */
export interface FrameworkContract<S extends DescService = DescService> {
  readonly service: S;
  readonly methods: MethodContracts<S>;
}

/** Looks up the contract of a method descriptor (no method names in runtime code). */
export function methodContract(contract: ServiceContract, method: DescMethod): MethodContract {
  const found = (contract.methods as Record<string, MethodContract>)[method.localName];
  if (found === undefined || method.parent.typeName !== contract.service.typeName) {
    throw new Error(`no contract for ${method.parent.typeName}.${method.name} in ${contract.service.typeName}`);
  }
  return found;
}
