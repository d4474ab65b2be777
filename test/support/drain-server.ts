/**
 * A ticket-service for the drain test, in its own process: the framework's
 * real server (mTLS, full chain, pino JSON logs on stdout) with handlers the
 * test can hold in flight across a SIGTERM.
 *
 *   node --import tsx test/support/drain-server.ts <pki dir> <delay ms> <grace ms>
 *
 * GetTicketStatus "held" and ListTicketsByEvent "finite" run until 700 ms after
 * the drain delay, i.e. past the moment the server stops accepting; "endless"
 * streams until the server cancels it. Tells its parent over IPC when it
 * listens and when a held call has started. On SIGTERM: stop(grace, delay),
 * one last log line, exit 0. Exits when the parent goes away.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createMaterialSource } from "../../src/runtime/identity/material.ts";
import { createLogger, flushLogger } from "../../src/runtime/observability/logger.ts";
import { createServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";

const [dir, delayArg, graceArg] = process.argv.slice(2);
if (!dir || !delayArg || !graceArg || !process.send) {
  console.error("usage (as a child with IPC): drain-server.ts <pki dir> <delay ms> <grace ms>");
  process.exit(2);
}
const delayMs = Number(delayArg);
const graceMs = Number(graceArg);
const send = (message: object) => process.send?.(message);

let terminated: () => void = () => {};
const sigterm = new Promise<void>((resolve) => (terminated = resolve));
/** Held calls end this long after SIGTERM: after the server stopped accepting, well before the grace. */
const holdAfterSigterm = () => sigterm.then(() => sleep(delayMs + 700));

const logger = createLogger({ level: "info" });
const identity = await createMaterialSource({ dir, workload: "ticket-service", pollMs: 0 });
const server = await createServer({
  identity,
  port: 0,
  logger,
  services: [
    implement(TicketServiceContract, {
      async getTicketStatus(req) {
        if (req.ticketId === "held") {
          send({ entered: "unary" });
          await holdAfterSigterm();
        }
        return { ticketId: req.ticketId, status: TicketStatus.SOLD };
      },
      async *listTicketsByEvent(req, ctx) {
        let done = false;
        if (req.eventId === "finite") void holdAfterSigterm().then(() => (done = true));
        for (let i = 0; !done && !ctx.signal.aborted; i++) {
          yield { ticket: { id: `${req.eventId}-${i}` } };
          await sleep(100);
        }
        if (done) yield { ticket: { id: `${req.eventId}-last` } };
      },
    }),
  ],
});

process.on("SIGTERM", () => {
  terminated();
  void server.stop(graceMs, delayMs).then(() => {
    identity.close();
    logger.info("drain-server exiting");
    // As `tt-rpc serve` does after its drain: the last line is out before the exit.
    return flushLogger(logger).then(() => process.exit(0));
  });
});
process.on("disconnect", () => process.exit(0));
send({ ready: true, port: server.port });
