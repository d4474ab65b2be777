/**
 * The service every wire-stack benchmark calls: grpc.health.v1.Health/Check,
 * a small unary message, served with a framework contract so the bench runs
 * through the same adapters as production code.
 */
import { Health, HealthCheckResponse_ServingStatus } from "../src/gen/grpc/health/v1/health_pb.ts";
import { defineServiceContract } from "../src/contract/define.ts";
import type { MethodContract, MethodContracts } from "../src/contract/types.ts";
import { implement } from "../src/server/routes.ts";

function contractFor(path: string): MethodContract {
  return { path, access: { callers: ["ops"], scopes: [] }, idempotency: "no_side_effects", idempotencyKey: false };
}

const methods = Object.fromEntries(
  Health.methods.map((m) => [m.localName, contractFor(`/${Health.typeName}/${m.name}`)]),
) as unknown as MethodContracts<typeof Health>;

export const benchContract = defineServiceContract(Health, { name: "ticket-service", defaultPort: 50004, methods });

export const benchService = implement(benchContract, {
  check: () => ({ status: HealthCheckResponse_ServingStatus.SERVING }),
});
