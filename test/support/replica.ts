/**
 * One replica of ticket-service in its own process, for the many-replicas
 * tests: the framework's real server (mTLS, full security chain) on the given
 * port, whose GetTicketStatus answers with this process's pid (as user_id)
 * and counts the calls it served.
 *
 *   node --import tsx test/support/replica.ts <pki dir> <port>
 *
 * Talks to its parent over IPC: sends { ready, pid, port } once listening,
 * answers "count" with { count, pid }; stops on "stop" or SIGTERM, and exits
 * when the parent goes away (IPC closed), so a killed test leaves no orphan.
 */
import { createMaterialSource } from "../../src/runtime/identity/material.ts";
import { createServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";

const [dir, portArg] = process.argv.slice(2);
if (!dir || portArg === undefined || !process.send) {
  console.error("usage (as a child with IPC): replica.ts <pki dir> <port>");
  process.exit(2);
}
const send = (message: object) => process.send?.(message);

let served = 0;
const identity = await createMaterialSource({ dir, workload: "ticket-service", pollMs: 0 });
const server = await createServer({
  identity,
  port: Number(portArg),
  logger: silentLogger(),
  services: [
    implement(TicketServiceContract, {
      getTicketStatus(req) {
        served++;
        return { ticketId: req.ticketId, status: TicketStatus.SOLD, userId: `pid:${process.pid}` };
      },
    }),
  ],
});

async function stop(): Promise<never> {
  await server.stop(1_000);
  identity.close();
  process.exit(0);
}

process.on("message", (m) => {
  if (m === "count") send({ count: served, pid: process.pid });
  if (m === "stop") void stop();
});
process.on("SIGTERM", () => void stop());
process.on("disconnect", () => process.exit(0));
send({ ready: true, pid: process.pid, port: server.port });
