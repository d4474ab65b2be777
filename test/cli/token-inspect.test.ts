/**
 * `tt-rpc token inspect`: the developer's side of a generic UNAUTHENTICATED.
 * Tokens minted by the real CLI, inspected by the real CLI (child processes),
 * against the trust bundle: what passes, and for what fails, the check named.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { ttRpc } from "./run-cli.ts";

let pki: TestPki;
let other: TestPki;
const METHOD = "/tickettoken.ticket.v1.TicketService/GetTicketStatus";

beforeAll(async () => {
  [pki, other] = await Promise.all([createTestPki(), createTestPki()]);
});
afterAll(() => {
  pki?.cleanup();
  other?.cleanup();
});

async function mint(dir: string, ...extra: string[]): Promise<string> {
  const r = await ttRpc(["token", "--certs", dir, "--aud", "ticket-service", "--method", METHOD, ...extra]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

const inspect = (...args: string[]) => ttRpc(["token", "inspect", ...args, "--certs", pki.dir]);

describe("tt-rpc token inspect", () => {
  it("a fresh call token: decoded, and accepted for its method, once", async () => {
    const r = await inspect(await mint(pki.dir));
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('"typ":"svc-call+jwt"');
    expect(r.stdout).toContain(`"mth":"${METHOD}"`);
    expect(r.stdout).toMatch(/verdict: ACCEPT until .*single-use/);
  });

  it("checked against the call actually made: another method is rejected, naming the mismatch", async () => {
    const r = await inspect(await mint(pki.dir), "--method", "/tickettoken.ticket.v1.TicketService/TransferTicket");
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/verdict: REJECT: call token mth mismatch/);
    expect(r.stdout).toMatch(/caller sees UNAUTHENTICATED/);
  });

  it("a token bound to a context token needs it, and only it", async () => {
    const ctx = (await ttRpc(["context-token", "--certs", pki.dir, "--tenant", "t-1", "--user", "u-1"])).stdout.trim();
    const token = await mint(pki.dir, "--context", ctx);
    expect((await inspect(token)).stdout).toMatch(/REJECT: call token carries ctx but no context token was forwarded/);
    const ok = await inspect(token, "--context", ctx);
    expect(ok.code, ok.stdout).toBe(0);
    // The context token itself: verified against the context-token keys.
    const c = await inspect(ctx);
    expect(c.code, c.stdout).toBe(0);
    expect(c.stdout).toMatch(/context token for tenant t-1, user u-1/);
  });

  it("a token from another PKI: rejected, the key named as unknown", async () => {
    const r = await inspect(await mint(other.dir));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/verdict: REJECT: call token/);
  });

  it("not a JWT: says so", async () => {
    const r = await inspect("not-a-token");
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^not a JWT/m);
  });
});
