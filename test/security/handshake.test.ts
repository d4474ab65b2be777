/**
 * Issue #7 item 1: a peer whose client certificate does not chain to the
 * trust bundle, is not valid now, or is not usable for client authentication
 * fails the TLS handshake itself, on the gRPC port and on the Connect port:
 * it never receives a single decrypted application byte (no HTTP/2 SETTINGS,
 * no gRPC status). Asserted at the socket level with a raw tls.connect; the
 * control (a good certificate) shows the probe does see the server's HTTP/2
 * preface when the handshake succeeds.
 */
import { readFileSync } from "node:fs";
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { TicketServiceContract, createTicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { Code, ConnectError } from "../../src/runtime/wire/status.ts";
import type { IdentityMaterial, MaterialSource } from "../../src/runtime/identity/material.ts";
import { importPrivateKeyPem, type IssuedCert } from "../../src/devtools/pki/cert-issue.ts";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import * as x509 from "../../src/runtime/identity/x509.ts";
import { HANDSHAKE_REFUSED_KINDS, issueTestLeaf } from "../support/test-certs.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { captureLogs } from "../support/log-capture.ts";

const { logger, lines: logLines } = captureLogs();

let pki: TestPki;
let caPem: string;
let server: RpcServer;
let payment: MaterialSource;
let handled = 0;
const leaves = new Map<string, IssuedCert>();
const clients: object[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  caPem = readFileSync(pkiPaths(pki.dir).caCert, "utf8");
  const ca = {
    cert: new x509.X509Certificate(caPem),
    privateKey: await importPrivateKeyPem(readFileSync(pkiPaths(pki.dir).caKey, "utf8")),
  };
  for (const kind of HANDSHAKE_REFUSED_KINDS) leaves.set(kind, await issueTestLeaf(ca, kind, { workload: "payment-service" }));
  payment = await pki.material("payment-service");
  server = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    connectPort: 0,
    logger,
    services: [
      implement(TicketServiceContract, {
        getTicketStatus: (req) => {
          handled++;
          return { ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true };
        },
      }),
    ],
  });
});

afterAll(async () => {
  clients.forEach(closeClient);
  await server?.stop(200);
  pki?.cleanup();
});

interface Probe {
  /** Application bytes decrypted from the server (an HTTP/2 server speaks first: SETTINGS). */
  readonly appBytes: number;
  readonly error: string | undefined;
  /** The server ended the connection (not our own time limit). */
  readonly closedByServer: boolean;
}

/** A raw TLS 1.3 client offering h2 with `cert` (or none), recording every byte it decrypts from the server. */
function probe(port: number, cert: { certPem: string; keyPem: string } | undefined, waitMs = 3000): Promise<Probe> {
  return new Promise((resolve) => {
    let appBytes = 0;
    let error: string | undefined;
    let timedOut = false;
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      ca: caPem,
      ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}),
      ALPNProtocols: ["h2"],
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, waitMs);
    socket.on("data", (chunk: Buffer) => {
      appBytes += chunk.length;
    });
    socket.on("error", (err) => {
      error = err.message;
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ appBytes, error, closedByServer: !timedOut });
    });
  });
}

const ports = () => [
  ["gRPC", server.port],
  ["Connect", server.connectPort!],
] as const;

describe("the TLS handshake refuses unauthenticated peers on both ports", () => {
  it("control: a good certificate completes the handshake and receives the server's HTTP/2 SETTINGS", async () => {
    for (const [name, port] of ports()) {
      const w = payment.current().workload;
      const p = await probe(port, { certPem: w.certPem, keyPem: w.keyPem }, 500);
      expect(p.appBytes, name).toBeGreaterThan(0);
    }
  });

  it("no client certificate: TLS alert certificate_required, no application byte", async () => {
    for (const [name, port] of ports()) {
      const mark = logLines.length;
      const p = await probe(port, undefined);
      expect({ name, ...p }).toMatchObject({ name, appBytes: 0, closedByServer: true });
      expect(p.error, name).toMatch(/alert certificate required/);
      await until(() => /peer did not return a certificate/.test(logLines.slice(mark).join("")));
      expect(logLines.slice(mark).join(""), name).toMatch(/"peer":"127\.0\.0\.1:\d+","reason":"[^"]*peer did not return a certificate[^"]*","msg":"TLS handshake rejected"/);
    }
  });

  for (const [kind, logReason] of [
    ["other-ca", /UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE/],
    ["self-signed", /DEPTH_ZERO_SELF_SIGNED_CERT/],
    ["expired", /CERT_HAS_EXPIRED/],
    ["not-yet-valid", /CERT_NOT_YET_VALID/],
    ["server-auth-only", /INVALID_PURPOSE/],
  ] as const) {
    it(`${kind} client certificate: the connection ends in the handshake, no application byte, reason logged`, async () => {
      const handledBefore = handled;
      for (const [name, port] of ports()) {
        const mark = logLines.length;
        const p = await probe(port, leaves.get(kind));
        expect({ name, appBytes: p.appBytes, closedByServer: p.closedByServer }).toEqual({ name, appBytes: 0, closedByServer: true });
        await until(() => logReason.test(logLines.slice(mark).join("")));
        expect(logLines.slice(mark).join(""), name).toMatch(new RegExp(`"peer":"127\\.0\\.0\\.1:\\d+","reason":"(${logReason.source})","msg":"TLS handshake rejected"`));
      }
      expect(handled).toBe(handledBefore);
    });
  }
});

function withLeaf(base: MaterialSource, leaf: { certPem: string; keyPem: string }): MaterialSource {
  const cur = base.current();
  const swapped: IdentityMaterial = { workload: { ...cur.workload, certPem: leaf.certPem, keyPem: leaf.keyPem }, bundle: cur.bundle };
  return { current: () => swapped, onChange: () => () => {}, refresh: async () => false, close() {} };
}

const ownReason = {
  "other-ca": /does not chain to the trust bundle/,
  "self-signed": /self-signed, not issued by the trust bundle/,
  expired: /expired at /,
  "not-yet-valid": /not valid before /,
  "server-auth-only": /extendedKeyUsage lacks clientAuth/,
} as const;

describe("our own client, with a certificate the server would refuse", () => {
  for (const kind of HANDSHAKE_REFUSED_KINDS) {
    it(`${kind}: the framework client gets UNAUTHENTICATED naming the TLS failure, not a retryable UNAVAILABLE`, async () => {
      const client = createTicketServiceClient({ identity: withLeaf(payment, leaves.get(kind)!), address: `127.0.0.1:${server.port}` });
      clients.push(client);
      const err = await client.getTicketStatus({ ticketId: "t-1", tenantId: "7c9e6679-7425-40de-944b-e07fc1f90ae7" }, { timeoutMs: 5000 }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(err?.code, err?.rawMessage).toBe(Code.Unauthenticated);
      expect(err?.rawMessage).toMatch(new RegExp(`mTLS handshake failed: .*tt-rpc: client certificate unusable: ${ownReason[kind].source}`));
    });
  }
});

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}
