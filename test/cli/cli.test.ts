/**
 * The tt-rpc command line as a developer runs it (child processes, real PKI
 * in a temp dir): certs init/show, token and context-token, their usage
 * errors (exit 2, a clear message, no stack trace), and the token's shape.
 * Nothing the CLI prints may contain private key material.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compactVerify, importJWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { contextTokenHash } from "../../src/runtime/auth/context-token.ts";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import type { ExecResult } from "../support/exec.ts";
import { ttRpc, ttRpcBin, ttService } from "./run-cli.ts";

const OPS_ID = "spiffe://tickettoken.internal/ns/dev/sa/ops";
const TICKET_ID = "spiffe://tickettoken.internal/ns/dev/sa/ticket-service";
const TENANT = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const USER = "5f0c2a8e-1d8b-4bde-9e5a-2b7b0c6b1a11";

let tmp: string;
let dir: string;
/** Everything any CLI run printed, checked for secrets at the end. */
const printed: string[] = [];

async function cli(args: string[]): Promise<ExecResult> {
  const r = await ttRpc(args);
  printed.push(r.stdout, r.stderr);
  return r;
}

function decodePart(part: string | undefined): Record<string, unknown> {
  return JSON.parse(Buffer.from(part ?? "", "base64url").toString("utf8")) as Record<string, unknown>;
}

/** Exit 2, the message on stderr, no stack trace. */
function expectUsageError(r: ExecResult, message: RegExp): void {
  expect(r.code, r.stdout + r.stderr).toBe(2);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at .+[(:]\d+/);
  expect(r.stdout.trim()).toBe("");
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "tt-cli-"));
  dir = join(tmp, "pki");
  const r = await cli(["certs", "init", "--dir", dir]);
  expect(r.code, r.stderr).toBe(0);
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("tt-rpc certs", () => {
  it("init created the PKI: CA, every workload's files, the bundle", () => {
    const p = pkiPaths(dir);
    for (const f of [p.caCert, p.caKey, p.bundleCa, p.bundleJson, p.contextKey]) expect(existsSync(f), f).toBe(true);
    for (const w of ["ops", "ticket-service", "payment-service"]) {
      const files = p.workload(w);
      for (const f of [files.cert, files.key, files.jwt]) expect(existsSync(f), f).toBe(true);
    }
    const bundle = JSON.parse(readFileSync(p.bundleJson, "utf8")) as { trust_domain: string; jwt_keys: Record<string, unknown> };
    expect(bundle.trust_domain).toBe("tickettoken.internal");
    expect(Object.keys(bundle.jwt_keys)).toContain(OPS_ID);
  });

  it("init is idempotent: a second run changes nothing and says so", async () => {
    const before = readFileSync(pkiPaths(dir).bundleJson, "utf8");
    const r = await cli(["certs", "init", "--dir", dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("nothing changed");
    expect(r.stdout).not.toMatch(/wrote \d+ file/);
    expect(readFileSync(pkiPaths(dir).bundleJson, "utf8")).toBe(before);
  });

  it("show lists the trust domain and every identity with its expiry", async () => {
    const r = await cli(["certs", "show", "--dir", dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("trust domain: tickettoken.internal");
    expect(r.stdout).toContain(OPS_ID);
    expect(r.stdout).toContain(TICKET_ID);
    expect(r.stdout).not.toMatch(/MISSING|INVALID|EXPIRED/);
  });

  it("show on a directory without a PKI fails with exit 2 naming the bundle", async () => {
    const r = await cli(["certs", "show", "--dir", join(tmp, "nothing-here")]);
    expectUsageError(r, /bundle\.json.*missing/);
  });

  it("the services' bin (tt-service, compiled, what a container runs) serves without the dev tools and fails closed", async () => {
    const help = await ttService(["--help"]);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain("tt-service <service>");
    const r = await ttService(["ticket-service", "--certs", join(tmp, "nothing-here"), "--port", "0"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr + r.stdout).toMatch(/nothing-here[/\\]bundle[/\\]bundle\.json: missing/);
  });

  it("the package bin (src/devtools/bin/tt-rpc.mjs, compiled) runs the same CLI", async () => {
    const r = await ttRpcBin(["certs", "init", "--dir", dir]);
    printed.push(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("nothing changed");
  });
});

describe("tt-rpc token usage errors: exit 2, a clear message, no stack trace", () => {
  it("missing --aud", async () => {
    expectUsageError(await cli(["token", "--certs", dir, "--as", "ops", "--method", "reflection"]), /--aud is required/);
  });

  it("unknown service", async () => {
    expectUsageError(
      await cli(["token", "--certs", dir, "--as", "ops", "--aud", "nope-service", "--method", "reflection"]),
      /unknown service "nope-service"/,
    );
  });

  it("unknown method", async () => {
    expectUsageError(
      await cli(["token", "--certs", dir, "--as", "ops", "--aud", "ticket-service", "--method", "/tickettoken.ticket.v1.TicketService/Nope"]),
      /unknown method "\/tickettoken\.ticket\.v1\.TicketService\/Nope"/,
    );
  });

  it("missing PKI directory", async () => {
    const missing = join(tmp, "no-pki");
    const r = await cli(["token", "--certs", missing, "--as", "ops", "--aud", "ticket-service", "--method", "reflection"]);
    expectUsageError(r, /ops[/\\]jwt-signing\.jwk\.json: missing/);
    expect(r.stderr).toContain("tt-rpc certs init");
  });
});

describe("tt-rpc mesh and serve usage errors: exit 2, a clear message, no stack trace", () => {
  it("mesh --port-offset out of range", async () => {
    expectUsageError(await cli(["mesh", "--certs", dir, "--port-offset", "20000"]), /--port-offset must be an integer from 0 to \d+, got "20000"/);
  });

  it("mesh --only with an unknown service", async () => {
    expectUsageError(await cli(["mesh", "--certs", dir, "--only", "venue-service,nope-service"]), /--only: no contract for "nope-service"/);
  });

  it("serve with an unknown service", async () => {
    expectUsageError(await cli(["serve", "nope-service", "--certs", dir]), /no contract for "nope-service"/);
  });

  it("serve with a bad port", async () => {
    expectUsageError(await cli(["serve", "venue-service", "--certs", dir, "--port", "70000"]), /--port must be a port number/);
  });
});

describe("tt-rpc context-token usage errors", () => {
  it("bad --ttl", async () => {
    const runs = await Promise.all(["0", "301", "abc"].map((ttl) => cli(["context-token", "--certs", dir, "--tenant", TENANT, "--user", USER, "--ttl", ttl])));
    for (const r of runs) expectUsageError(r, /--ttl must be an integer from 1 to 300/);
  });

  it("missing --tenant", async () => {
    expectUsageError(await cli(["context-token", "--certs", dir, "--user", USER]), /--tenant is required/);
  });
});

describe("tt-rpc token output", () => {
  it("is a compact ES256 JWS for ops, aimed at the service and method, living 60 s, verifiable with the published key", async () => {
    const method = "/tickettoken.ticket.v1.TicketService/GetTicketStatus";
    const r = await cli(["token", "--certs", dir, "--as", "ops", "--aud", "ticket-service", "--method", method]);
    expect(r.code, r.stderr).toBe(0);
    const token = r.stdout.trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const [h, p] = token.split(".");
    const header = decodePart(h);
    const claims = decodePart(p);
    expect(header).toMatchObject({ alg: "ES256", typ: "svc-call+jwt" });
    expect(typeof header.kid).toBe("string");
    expect(claims).toMatchObject({ iss: OPS_ID, sub: OPS_ID, aud: TICKET_ID, mth: method });
    expect(claims.ctx).toBeUndefined();
    expect((claims.exp as number) - (claims.iat as number)).toBe(60);
    expect(Math.abs((claims.iat as number) - Date.now() / 1000)).toBeLessThan(60);
    expect(claims.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);

    // Signed by ops' current key, as published in the trust bundle.
    const bundle = JSON.parse(readFileSync(pkiPaths(dir).bundleJson, "utf8")) as { jwt_keys: Record<string, Array<{ kid: string }>> };
    const jwk = bundle.jwt_keys[OPS_ID]!.find((k) => k.kid === header.kid);
    expect(jwk).toBeDefined();
    await expect(compactVerify(token, await importJWK(jwk!, "ES256"))).resolves.toBeTruthy();
  });

  it("aliases resolve to full method paths; --context binds the context token by hash", async () => {
    const ctxRun = await cli(["context-token", "--certs", dir, "--tenant", TENANT, "--user", USER, "--scope", "events:read", "--ttl", "60"]);
    expect(ctxRun.code, ctxRun.stderr).toBe(0);
    const ctx = ctxRun.stdout.trim();
    const ctxClaims = decodePart(ctx.split(".")[1]);
    expect(ctxClaims).toMatchObject({ tid: TENANT, sub: USER });
    expect((ctxClaims.exp as number) - (ctxClaims.iat as number)).toBe(60);

    const [reflection, health, bound] = await Promise.all([
      cli(["token", "--certs", dir, "--aud", "ticket-service", "--method", "reflection"]),
      cli(["token", "--certs", dir, "--aud", "ticket-service", "--method", "health-check"]),
      cli(["token", "--certs", dir, "--aud", "ticket-service", "--method", "/tickettoken.ticket.v1.TicketService/GetTicketStatus", "--context", ctx]),
    ]);
    for (const r of [reflection, health, bound]) expect(r.code, r.stderr).toBe(0);
    expect(decodePart(reflection.stdout.trim().split(".")[1]).mth).toBe("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
    expect(decodePart(health.stdout.trim().split(".")[1]).mth).toBe("/grpc.health.v1.Health/Check");
    expect(decodePart(bound.stdout.trim().split(".")[1]).ctx).toBe(contextTokenHash(ctx));
  });
});

describe("no secrets on the terminal", () => {
  it("nothing printed contains a PEM private key or a private JWK member", () => {
    expect(printed.length).toBeGreaterThan(10);
    for (const out of printed) {
      expect(out).not.toContain("PRIVATE KEY");
      expect(out).not.toMatch(/"d"\s*:/);
      // Tokens printed: their decoded headers and claims carry no key material either.
      for (const jws of out.match(/[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/g) ?? []) {
        const [h, p] = jws.split(".");
        for (const part of [decodePart(h), decodePart(p)]) {
          expect(JSON.stringify(part)).not.toContain("PRIVATE KEY");
          expect(part).not.toHaveProperty("d");
          expect(part).not.toHaveProperty("jwk");
        }
      }
    }
  });
});
