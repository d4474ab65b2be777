/**
 * tickettoken.rpc.v1.AdminService: what operators use instead of the legacy
 * /health/circuit-breakers routes. It only reads and resets what a
 * BreakerAdmin exposes; access (ops only) comes from admin.proto.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { AdminService, BreakerState as WireState, type BreakerSchema } from "../gen/tickettoken/rpc/v1/admin_pb.ts";
import { AdminServiceFrameworkContract } from "../gen/tickettoken/rpc/v1/admin_rpc.ts";
import type { ServiceName } from "../identity/workloads.ts";
import type { BreakerAdmin, BreakerSnapshot, BreakerState } from "../resilience/breaker-admin.ts";
import { hostFrameworkContract } from "./framework-contracts.ts";
import { implement, type ServiceRegistration } from "./routes.ts";

export interface AdminServiceHost {
  registration(host: ServiceName): ServiceRegistration<typeof AdminService>;
}

/** What a process without a breaker registry reports: no breakers. */
export const NO_BREAKERS: BreakerAdmin = Object.freeze({ list: () => [], reset: () => false });

const WIRE_STATE: Record<BreakerState, WireState> = {
  closed: WireState.CLOSED,
  open: WireState.OPEN,
  half_open: WireState.HALF_OPEN,
};

function toWire(b: BreakerSnapshot): MessageInitShape<typeof BreakerSchema> {
  return {
    target: b.target,
    state: WIRE_STATE[b.state],
    windowCalls: b.windowCalls,
    windowFailures: b.windowFailures,
    ...(b.changedAt !== undefined ? { changedAt: timestampFromMs(b.changedAt) } : {}),
  };
}

export function createAdminService(breakers: BreakerAdmin): AdminServiceHost {
  return {
    registration(host) {
      return implement(hostFrameworkContract(AdminServiceFrameworkContract, host), {
        listBreakers: () => ({
          breakers: breakers.list().sort((a, b) => a.target.localeCompare(b.target)).map(toWire),
        }),
        resetBreaker(req) {
          if (req.target === "") throw new ConnectError("target is required", Code.InvalidArgument);
          if (!breakers.reset(req.target)) throw new ConnectError("no breaker for this target", Code.NotFound);
          const after = breakers.list().find((b) => b.target === req.target);
          return after ? { breaker: toWire(after) } : {};
        },
      });
    },
  };
}
