/**
 * protoc-gen-tt-rpc rejects bad contracts with a message naming the method,
 * and `buf generate` of the committed contracts succeeds. Each case runs the
 * real plugin through `buf generate` on a broken copy of the contracts.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BIN, REPO_ROOT, run } from "../support/exec.ts";

const work: string[] = [];
afterAll(() => work.forEach((d) => rmSync(d, { recursive: true, force: true })));

const TICKET = "proto/tickettoken/ticket/v1/ticket_service.proto";

/** Copies the buf module to a temp dir, applies `edit` to one contract (the ticket one by default), runs our plugin. */
async function generateWith(edit: (src: string) => string, contract = TICKET) {
  const dir = mkdtempSync(join(tmpdir(), "tt-codegen-"));
  work.push(dir);
  cpSync(join(REPO_ROOT, "proto"), join(dir, "proto"), { recursive: true });
  cpSync(join(REPO_ROOT, "buf.yaml"), join(dir, "buf.yaml"));
  const file = join(dir, contract);
  writeFileSync(file, edit(readFileSync(file, "utf8")));
  const template = JSON.stringify({
    version: "v2",
    plugins: [{ local: [BIN("tsx"), join(REPO_ROOT, "src/devtools/codegen/protoc-gen-tt-rpc.ts")], out: "out", strategy: "all", opt: ["target=ts"] }],
  });
  return run(BIN("buf"), ["generate", "--template", template], { cwd: dir, timeoutMs: 90_000 });
}

describe("protoc-gen-tt-rpc contract validation", () => {
  it("generates the committed contracts", async () => {
    const r = await generateWith((s) => s);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("fails on an unknown caller, naming the method and the caller", async () => {
    const r = await generateWith((s) => s.replace('"payment-service",\n        "ops"', '"paymnt-service",\n        "ops"'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('tickettoken.ticket.v1.TicketService.GetTicketStatus: unknown caller "paymnt-service"');
  });

  it("fails on an RPC without an access rule, naming the method", async () => {
    const r = await generateWith((s) =>
      s.replace(
        /(rpc CalculatePrice\(CalculatePriceRequest\) returns \(CalculatePriceResponse\) \{\n    option idempotency_level = NO_SIDE_EFFECTS;\n)    option \(tickettoken\.rpc\.v1\.access\) = \{[^}]*\};\n/,
        "$1",
      ),
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("tickettoken.ticket.v1.TicketService.CalculatePrice: no access rule");
  });

  it("fails on an access rule with no callers", async () => {
    const r = await generateWith((s) => s.replace('callers: ["payment-service"]', "callers: []"));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("tickettoken.ticket.v1.TicketService.CancelTicketsBatch: access rule lists no callers");
  });

  it("fails on a second tenant_key field in one request", async () => {
    const r = await generateWith((s) =>
      s.replace(/(message GetTicketStatusRequest \{[\s\S]*?string ticket_id = 2)/, "$1 [(tickettoken.rpc.v1.tenant_key) = true]"),
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("tickettoken.ticket.v1.TicketService.GetTicketStatus: request tickettoken.ticket.v1.GetTicketStatusRequest marks 2 fields as tenant_key");
  });

  it("fails on a mutating RPC that declares neither IDEMPOTENT nor an idempotency key, naming the method", async () => {
    const r = await generateWith((s) =>
      s.replace(
        /(rpc RecordScan\(RecordScanRequest\) returns \(RecordScanResponse\) \{\n    option \(tickettoken\.rpc\.v1\.access\) = \{[^}]*\};\n)    option \(tickettoken\.rpc\.v1\.call\) = \{idempotency_key: true\};\n/,
        "$1",
      ),
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(
      "tickettoken.ticket.v1.TicketService.RecordScan: mutating RPC declares neither idempotency_level = IDEMPOTENT nor (tickettoken.rpc.v1.call) = {idempotency_key: true}",
    );
  });

  it("accepts a mutating RPC declared IDEMPOTENT without a key", async () => {
    const r = await generateWith((s) =>
      s.replace(
        /(rpc RecordScan\(RecordScanRequest\) returns \(RecordScanResponse\) \{\n)(    option \(tickettoken\.rpc\.v1\.access\) = \{[^}]*\};\n)    option \(tickettoken\.rpc\.v1\.call\) = \{idempotency_key: true\};\n/,
        "$1    option idempotency_level = IDEMPOTENT;\n$2",
      ),
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("fails on an idempotency key on a streaming read method", async () => {
    const r = await generateWith((s) =>
      s.replace("option (tickettoken.rpc.v1.call) = {timeout_ms: 60000};", "option (tickettoken.rpc.v1.call) = {timeout_ms: 60000 idempotency_key: true};"),
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("tickettoken.ticket.v1.TicketService.ListTicketsByEvent: idempotency_key on a NO_SIDE_EFFECTS method");
    expect(r.stderr).toContain("tickettoken.ticket.v1.TicketService.ListTicketsByEvent: idempotency_key is only supported on unary methods");
  });

  it("fails on a framework service (admin) that claims a service identity", async () => {
    const r = await generateWith(
      (s) => s.replace("service AdminService {\n", 'service AdminService {\n  option (tickettoken.rpc.v1.service) = {name: "ticket-service", default_port: 50004};\n'),
      "proto/tickettoken/rpc/v1/admin.proto",
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("tickettoken.rpc.v1.AdminService: a framework service is hosted by every server");
  });

  it("fails on an admin RPC without an access rule, like any contract", async () => {
    const r = await generateWith(
      (s) => s.replace(/(rpc ResetBreaker\(ResetBreakerRequest\) returns \(ResetBreakerResponse\) \{\n    option idempotency_level = IDEMPOTENT;\n)    option \(tickettoken\.rpc\.v1\.access\) = \{[^}]*\};\n/, "$1"),
      "proto/tickettoken/rpc/v1/admin.proto",
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("tickettoken.rpc.v1.AdminService.ResetBreaker: no access rule");
  });

  it("fails on a service port that breaks the port rule", async () => {
    const r = await generateWith((s) => s.replace("default_port: 50004", "default_port: 50999"));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("tickettoken.ticket.v1.TicketService: default_port 50999 does not follow the port rule");
  });
});
