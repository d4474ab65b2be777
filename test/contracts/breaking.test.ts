/**
 * `buf breaking` guards the contracts: the committed ones pass against the
 * committed baseline image, and a deliberately broken copy fails.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BIN, REPO_ROOT, run } from "../support/exec.ts";

const BASELINE = join(REPO_ROOT, "proto/baseline.binpb");
const work: string[] = [];
afterAll(() => work.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function breakingWith(file: string, edit: (src: string) => string) {
  const dir = mkdtempSync(join(tmpdir(), "tt-breaking-"));
  work.push(dir);
  cpSync(join(REPO_ROOT, "proto"), join(dir, "proto"), { recursive: true });
  cpSync(join(REPO_ROOT, "buf.yaml"), join(dir, "buf.yaml"));
  const path = join(dir, file);
  writeFileSync(path, edit(readFileSync(path, "utf8")));
  return run(BIN("buf"), ["breaking", "--against", BASELINE], { cwd: dir, timeoutMs: 60_000 });
}

describe("buf breaking against the baseline", () => {
  it("passes for the committed contracts", async () => {
    const r = await run(BIN("buf"), ["breaking", "--against", BASELINE], { timeoutMs: 60_000 });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("fails when an RPC is removed", async () => {
    const r = await breakingWith("proto/tickettoken/payment/v1/payment_service.proto", (s) =>
      s.replace(/\n  \/\/ Replaces: [^\n]*\n(?:  \/\/[^\n]*\n)*  rpc GetPaymentStatus\([\s\S]*?\n  \}\n/, "\n"),
    );
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/GetPaymentStatus/);
  });

  it("fails when a field changes type", async () => {
    const r = await breakingWith("proto/tickettoken/ticket/v1/ticket_service.proto", (s) =>
      s.replace(/(message GetTicketStatusRequest \{[\s\S]*?)string ticket_id = 2;/, "$1int64 ticket_id = 2;"),
    );
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/ticket_id/);
  });
});
