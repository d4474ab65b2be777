/**
 * grpc.health.v1.Health: what load balancers, Kubernetes gRPC probes and
 * peers ask before sending traffic. The empty service name "" is the whole
 * server. Event-driven (no timers), so it never keeps the process alive.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthCheckRequest,
  type HealthCheckResponseSchema,
} from "../gen/grpc/health/v1/health_pb.ts";
import type { ServiceName } from "../identity/workloads.ts";
import { frameworkContract, HEALTH_CALLERS } from "./framework-contracts.ts";
import { implement, type ServiceRegistration } from "./routes.ts";

type Status = "SERVING" | "NOT_SERVING";
type CheckResponse = MessageInitShape<typeof HealthCheckResponseSchema>;

export interface HealthService {
  registration(host: ServiceName): ServiceRegistration<typeof Health>;
  setStatus(service: string, status: Status): void;
  /** For shutdown: everything reports NOT_SERVING and later setStatus calls are ignored. */
  setAllNotServing(): void;
  /**
   * For shutdown, once the server stops accepting: every Watch stream sends its
   * last status (NOT_SERVING) and ends with UNAVAILABLE "server shutting down",
   * so watchers retry elsewhere and an endless stream does not hold the drain.
   */
  endWatches(): void;
}

export function createHealth(): HealthService {
  const statuses = new Map<string, ServingStatus>([["", ServingStatus.SERVING]]);
  // Each Watch call parks a wake-up here; it re-reads its own status when woken.
  const watchers = new Set<() => void>();
  let draining = false;
  let watchesEnded = false;

  function changed(): void {
    for (const wake of watchers) wake();
  }

  function check(req: HealthCheckRequest): CheckResponse {
    const status = statuses.get(req.service);
    // Never echo the request: a 1 MB service name would come back as a 1 MB grpc-message trailer.
    if (status === undefined) throw new ConnectError("unknown service", Code.NotFound);
    return { status };
  }

  async function* watch(req: HealthCheckRequest, ctx: HandlerContext): AsyncGenerator<CheckResponse> {
    let wake: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    watchers.add(notify);
    ctx.signal.addEventListener("abort", notify, { once: true });
    try {
      let last: ServingStatus | undefined;
      while (!ctx.signal.aborted) {
        // Unknown is a status here, not an error: the service may appear later.
        const current = statuses.get(req.service) ?? ServingStatus.SERVICE_UNKNOWN;
        if (current !== last) {
          last = current;
          yield { status: current };
          continue;
        }
        // Checked only after the latest status went out: the watcher sees NOT_SERVING before the end.
        if (watchesEnded) throw new ConnectError("server shutting down", Code.Unavailable);
        // Only the latest status matters, so a burst of changes costs one message.
        await new Promise<void>((resolve) => (wake = resolve));
      }
      // Ended by the deadline or a cancel: say so (DEADLINE_EXCEEDED / CANCELLED), never end with OK.
      throw ctx.signal.reason;
    } finally {
      watchers.delete(notify);
      ctx.signal.removeEventListener("abort", notify);
    }
  }

  return {
    registration(host) {
      return implement(frameworkContract(Health, host, HEALTH_CALLERS), {
        check,
        watch,
        list: () => ({ statuses: Object.fromEntries([...statuses].map(([name, status]) => [name, { status }])) }),
      });
    },
    setStatus(service, status) {
      // A late "SERVING" during shutdown must not pull traffic back in.
      if (draining) return;
      statuses.set(service, status === "SERVING" ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
      changed();
    },
    setAllNotServing() {
      draining = true;
      for (const name of statuses.keys()) statuses.set(name, ServingStatus.NOT_SERVING);
      changed();
    },
    endWatches() {
      watchesEnded = true;
      changed();
    },
  };
}
