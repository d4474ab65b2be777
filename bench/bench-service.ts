/**
 * What the benchmarks call. Wire-stack runs use grpc.health.v1.Health/Check
 * (a small unary message) with no interceptors; full-chain runs use a real
 * contract method, TicketService.GetTicketStatus, through createServer.
 */
import { Health, HealthCheckResponse_ServingStatus } from "../src/gen/grpc/health/v1/health_pb.ts";
import { TicketServiceContract } from "../src/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { TicketStatus } from "../src/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { frameworkContract, HEALTH_CALLERS } from "../src/server/framework-contracts.ts";
import { implement } from "../src/server/routes.ts";

export const benchContract = frameworkContract(Health, "ticket-service", HEALTH_CALLERS);

export const benchService = implement(benchContract, {
  check: () => ({ status: HealthCheckResponse_ServingStatus.SERVING }),
});

export const benchTicketService = implement(TicketServiceContract, {
  getTicketStatus: (req) => ({ ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true }),
});
