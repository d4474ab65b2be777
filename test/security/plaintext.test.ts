/**
 * A client that forgot TLS (grpcurl -plaintext, curl http://) is told so at
 * once on both ports: HTTP/2 clients get each stream answered with a
 * trailers-only UNAUTHENTICATED "TLS required ...", then a GOAWAY covering
 * those streams; HTTP/1.1 clients a 400 saying the same; then the connection
 * is closed. An independent gRPC
 * implementation (Python grpcio, insecure channel) fails fast instead of
 * waiting out its timeout. TLS clients are unaffected (the rest of the suite).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as net from "node:net";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import { captureLogs } from "../support/log-capture.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";

let pki: TestPki;
let server: RpcServer;
const logs = captureLogs();

beforeAll(async () => {
  pki = await createTestPki();
  server = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    connectPort: 0,
    logger: logs.logger,
    services: [implement(TicketServiceContract, {})],
  });
});

afterAll(async () => {
  await server?.stop(500);
  pki?.cleanup();
});

/** Sends `bytes` over plain TCP; resolves with what came back once the server closed, and how long that took. */
function plainExchange(port: number, bytes: Buffer | string): Promise<{ reply: Buffer; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const chunks: Buffer[] = [];
    const socket = net.connect(port, "127.0.0.1", () => socket.write(bytes));
    socket.on("data", (d) => chunks.push(d));
    socket.on("error", () => {});
    socket.on("close", () => resolve({ reply: Buffer.concat(chunks), ms: performance.now() - t0 }));
    setTimeout(() => reject(new Error("server did not close the plaintext connection within 8 s")), 8000).unref();
  });
}

const H2_PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

function parseFrames(buf: Buffer): { type: number; flags: number; stream: number; payload: Buffer }[] {
  const frames = [];
  for (let at = 0; at + 9 <= buf.length; ) {
    const length = buf.readUIntBE(at, 3);
    frames.push({ type: buf[at + 3]!, flags: buf[at + 4]!, stream: buf.readUInt32BE(at + 5) & 0x7fffffff, payload: buf.subarray(at + 9, at + 9 + length) });
    at += 9 + length;
  }
  return frames;
}
const ports = () => [
  ["gRPC", server.port],
  ["Connect", server.connectPort!],
] as const;

describe("plaintext to a TLS port", () => {
  it("an HTTP/2 client's stream is answered UNAUTHENTICATED \"TLS required\", then GOAWAY covering it, then close", async () => {
    for (const [name, port] of ports()) {
      // Preface, empty SETTINGS, and a HEADERS frame opening stream 1 (its block is never decoded).
      const hello = Buffer.concat([Buffer.from(H2_PREFACE), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]), Buffer.from([0, 0, 1, 1, 4, 0, 0, 0, 1, 0x82])]);
      const { reply, ms } = await plainExchange(port, hello);
      const frames = parseFrames(reply);
      expect(frames.map((f) => [f.type, f.flags, f.stream]), name).toEqual([
        [4, 0, 0], // our SETTINGS
        [4, 1, 0], // ACK of theirs
        [1, 5, 1], // HEADERS on stream 1, END_STREAM | END_HEADERS: a trailers-only gRPC response
        [7, 0, 0], // GOAWAY
      ]);
      const trailers = frames[2]!.payload.toString("latin1");
      expect(trailers, name).toContain("grpc-status\x0216");
      expect(trailers, name).toContain("TLS required");
      // GOAWAY's last stream id covers stream 1: a client must not transparently retry it.
      expect(frames[3]!.payload.readUInt32BE(0), name).toBe(1);
      expect(ms, name).toBeLessThan(1500);
    }
  });

  it("an HTTP/1.1 client gets a 400 saying TLS is required", async () => {
    for (const [name, port] of ports()) {
      const { reply, ms } = await plainExchange(port, "POST /tickettoken.ticket.v1.TicketService/GetTicketStatus HTTP/1.1\r\nhost: x\r\n\r\n");
      expect(reply.toString(), name).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*\r\n\r\nTLS required/);
      expect(ms, name).toBeLessThan(1000);
    }
  });

  it("logs the refusal with the peer address", () => {
    const line = logs.lines.map((l) => JSON.parse(l)).find((l) => l.msg === "plaintext connection refused: TLS required");
    expect(line?.peer).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it("Python grpcio on an insecure channel fails fast with UNAUTHENTICATED \"TLS required\", not at its 10 s timeout", async () => {
    const script = fileURLToPath(new URL("../support/py_grpc_call.py", import.meta.url));
    const t0 = performance.now();
    const out = await new Promise<{ code: number; details?: string }>((resolve, reject) => {
      const child = execFile("/usr/bin/python3", [script], { timeout: 30_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`python grpcio failed (is python3-grpcio installed? .ci/run installs it): ${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout));
      });
      child.stdin!.end(
        JSON.stringify({
          plaintext: true,
          target: `127.0.0.1:${server.port}`,
          ca: pkiPaths(pki.dir).bundleCa,
          method: "/tickettoken.ticket.v1.TicketService/GetTicketStatus",
          request: "",
          metadata: [],
        }),
      );
    });
    const ms = performance.now() - t0;
    expect(out.code).toBe(16); // UNAUTHENTICATED
    expect(out.details).toMatch(/^TLS required/);
    // Python start-up included; the call itself has a 10 s timeout it must not wait out.
    expect(ms).toBeLessThan(5000);
  });
});
