/**
 * Issue #7 item 9: bounded resources per connection. Real sockets against
 * real createServer listeners (gRPC and Connect ports); file descriptors are
 * counted in /proc/self/fd (client and server share this process, so every
 * leaked connection would show up twice).
 */
import { readdirSync, readFileSync } from "node:fs";
import * as net from "node:net";
import * as tls from "node:tls";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { throttledWarn } from "../../src/runtime/observability/log-throttle.ts";
import { DEFAULT_LISTENER_LIMITS, listenerLimits } from "../../src/runtime/server/limits.ts";
import type { MaterialSource } from "../../src/runtime/identity/material.ts";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { captureLogs } from "../support/log-capture.ts";

const { logger, lines: logLines } = captureLogs();
const countSince = (mark: number, msg: string) => logLines.slice(mark).filter((l) => l.includes(`"msg":"${msg}"`)).length;

let pki: TestPki;
let caPem: string;
let payment: MaterialSource;
let server: RpcServer;
let capped: RpcServer;

const services = [
  implement(TicketServiceContract, {
    getTicketStatus: (req) => ({ ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true }),
  }),
];

beforeAll(async () => {
  pki = await createTestPki();
  caPem = readFileSync(pkiPaths(pki.dir).caCert, "utf8");
  payment = await pki.material("payment-service");
  const identity = await pki.material("ticket-service");
  server = await createServer({ identity, port: 0, connectPort: 0, logger, services, limits: { handshakeTimeoutMs: 300, maxConnections: 200 } });
  capped = await createServer({ identity, port: 0, connectPort: 0, logger, services, limits: { maxConnections: 3 } });
});

afterAll(async () => {
  await Promise.all([server?.stop(200), capped?.stop(200)]);
  pki?.cleanup();
});

const fdCount = () => readdirSync("/proc/self/fd").length;

async function until(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return cond();
}

/** A TCP connection that never sends a byte; resolves true if the server closed it before `ms`. */
function silentConnection(port: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.on("error", () => {});
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, ms);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function goodTls(port: number): Promise<tls.TLSSocket> {
  const w = payment.current().workload;
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, ca: caPem, cert: w.certPem, key: w.keyPem, ALPNProtocols: ["h2"], checkServerIdentity: () => undefined });
    s.once("secureConnect", () => resolve(s));
    s.once("error", reject);
    s.once("close", () => reject(new Error("closed before the handshake completed")));
  });
}

const ports = (s: RpcServer) => [
  ["gRPC", s.port],
  ["Connect", s.connectPort!],
] as const;

describe("handshake timeout and connection churn", () => {
  it("TCP connections that never start TLS are closed by the server; fds return to the baseline; the log stays bounded", async () => {
    for (const [name, port] of ports(server)) {
      const baseline = fdCount();
      const mark = logLines.length;
      const closedByServer = await Promise.all(Array.from({ length: 60 }, () => silentConnection(port, 5000)));
      expect({ name, closedByServer: closedByServer.filter(Boolean).length }).toEqual({ name, closedByServer: 60 });
      expect(await until(() => fdCount() <= baseline), `${name}: ${fdCount()} fds, baseline ${baseline}`).toBe(true);
      // 60 timed-out handshakes in one window: logged, but at most 20 lines (log-throttle default).
      const lines = countSince(mark, "TLS handshake rejected");
      expect(lines, name).toBeGreaterThan(0);
      expect(lines, name).toBeLessThanOrEqual(20);
    }
  });

  it("peers that leave first (mid-handshake or right after connecting) leave nothing behind", async () => {
    for (const [name, port] of ports(server)) {
      const baseline = fdCount();
      await Promise.all(
        Array.from(
          { length: 40 },
          (_, i) =>
            new Promise<void>((resolve) => {
              // Half hang up right away, half after sending the start of a ClientHello.
              const socket = net.connect({ host: "127.0.0.1", port }, () => {
                if (i % 2) socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
                socket.destroy();
              });
              socket.on("error", () => {});
              socket.on("close", () => resolve());
            }),
        ),
      );
      expect(await until(() => fdCount() <= baseline), `${name}: ${fdCount()} fds, baseline ${baseline}`).toBe(true);
    }
  });

  it("refused client certificates do not keep connections open", async () => {
    for (const [name, port] of ports(server)) {
      const baseline = fdCount();
      await Promise.all(
        Array.from(
          { length: 30 },
          () =>
            new Promise<void>((resolve) => {
              const s = tls.connect({ host: "127.0.0.1", port, ca: caPem, ALPNProtocols: ["h2"], checkServerIdentity: () => undefined });
              s.on("error", () => {});
              s.on("close", () => resolve());
            }),
        ),
      );
      expect(await until(() => fdCount() <= baseline), `${name}: ${fdCount()} fds, baseline ${baseline}`).toBe(true);
    }
  });
});

describe("connection cap per listener", () => {
  it("a connection beyond maxConnections is closed on accept, logged, and a slot frees up when one closes", async () => {
    for (const [name, port] of ports(capped)) {
      const mark = logLines.length;
      const held = await Promise.all([goodTls(port), goodTls(port), goodTls(port)]);
      await expect(goodTls(port), name).rejects.toThrow();
      await until(() => countSince(mark, "connection refused: listener at its connection cap") > 0, 2000);
      expect(countSince(mark, "connection refused: listener at its connection cap"), name).toBeGreaterThan(0);
      held.pop()!.destroy();
      // The server counts the closed connection asynchronously: retry a bounded number of times.
      let again: tls.TLSSocket | undefined;
      for (let i = 0; i < 50 && !again; i++) {
        again = await goodTls(port).catch(() => undefined);
        if (!again) await new Promise((r) => setTimeout(r, 20));
      }
      expect(again, name).toBeDefined();
      again!.destroy();
      for (const s of held) s.destroy();
    }
  });
});

describe("limits and log throttle (units)", () => {
  it("defaults are documented values; overrides are validated", () => {
    expect(listenerLimits()).toEqual(DEFAULT_LISTENER_LIMITS);
    expect(listenerLimits({ maxConnections: 10 }).maxConnections).toBe(10);
    expect(() => listenerLimits({ maxConcurrentStreams: 0 })).toThrow(/maxConcurrentStreams/);
    expect(() => listenerLimits({ handshakeTimeoutMs: 1.5 })).toThrow(/handshakeTimeoutMs/);
  });

  it("throttledWarn writes at most perWindow lines per window and reports how many it dropped", () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = pino(
      { level: "info" },
      new Writable({
        write(chunk: Buffer | string, _enc, cb) {
          lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
          cb();
        },
      }),
    );
    let now = 1_000;
    const warn = throttledWarn(sink, "flood", { perWindow: 3, windowMs: 1_000, now: () => now });
    for (let i = 0; i < 10; i++) warn({ i });
    expect(lines.map((l) => l.i)).toEqual([0, 1, 2]);
    now += 1_000;
    warn({ i: 10 });
    expect(lines.at(-1)).toMatchObject({ i: 10, suppressed: 7, msg: "flood" });
    warn({ i: 11 });
    expect(lines.at(-1)).not.toHaveProperty("suppressed");
  });
});
