/**
 * Authorization from the contract, deny by default: the caller must be listed
 * in the method's access rule, the context token must carry every required
 * scope, and a request's tenant-key field must equal the context tenant.
 */
import type { Message } from "@bufbuild/protobuf";
import type { MethodContract } from "../contract/types.ts";
import { permissionDenied, quote } from "./errors.ts";
import type { VerifiedCallContext } from "./call-context.ts";

export function authorize(contract: MethodContract, call: VerifiedCallContext, request: Message | undefined): void {
  const { caller } = call;
  if (!(contract.access.callers as readonly string[]).includes(caller.workload)) {
    throw permissionDenied(`${caller.workload} is not an allowed caller of ${contract.path}`);
  }
  for (const scope of contract.access.scopes) {
    if (!call.scopes.includes(scope)) {
      throw permissionDenied(
        call.tenantId === undefined
          ? `${contract.path} requires scope ${scope} but the call carries no context token`
          : `context token lacks scope ${scope} required by ${contract.path}`,
      );
    }
  }
  if (contract.tenantKey !== undefined) {
    const value = request ? (request as unknown as Record<string, unknown>)[contract.tenantKey] : undefined;
    if (call.tenantId === undefined) {
      throw permissionDenied(`${contract.path} is tenant-scoped but the call carries no context token`);
    }
    if (value !== call.tenantId) {
      throw permissionDenied(`request ${contract.tenantKey} ${quote(String(value))} does not match the context tenant`);
    }
  }
}
