/**
 * The legacy-route inventory (proto/tickettoken/legacy_routes.json) and the
 * contracts agree both ways: every row names an RPC that exists, every RPC
 * replaces at least one row, and each RPC's `Replaces:` comment names a row.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { serviceContracts } from "../../src/contracts/gen/contracts.ts";
import { frameworkContracts } from "../../src/runtime/gen/framework_contracts.ts";
import { REPO_ROOT } from "../support/exec.ts";

interface Row {
  service: string;
  kind: "http" | "client" | "job" | "webhook";
  method: string;
  path: string;
  rpc: string;
}

const rows = JSON.parse(readFileSync(`${REPO_ROOT}proto/tickettoken/legacy_routes.json`, "utf8")) as Row[];

/** service undefined: a framework RPC (admin), hosted by every service, so any service's row may name it. */
const rpcs = new Map<string, { service: string | undefined; file: string; name: string }>();
for (const contract of serviceContracts) {
  for (const method of contract.service.methods) {
    rpcs.set(`/${contract.service.typeName}/${method.name}`, {
      service: contract.name,
      file: contract.service.file.name,
      name: method.name,
    });
  }
}
for (const contract of frameworkContracts) {
  for (const method of contract.service.methods) {
    rpcs.set(`/${contract.service.typeName}/${method.name}`, { service: undefined, file: contract.service.file.name, name: method.name });
  }
}

/** `Replaces:` lines of each RPC, read from the .proto source (comments are not in the runtime descriptors). */
function replacesComments(file: string): Map<string, string[]> {
  const src = readFileSync(`${REPO_ROOT}proto/${file}.proto`, "utf8").split("\n");
  const out = new Map<string, string[]>();
  let pending: string[] = [];
  for (const line of src) {
    const t = line.trim();
    const m = /^\/\/ (?:Also r|R)eplaces: (.+)$/.exec(t);
    if (m) pending.push(m[1]!);
    const rpc = /^rpc (\w+)\(/.exec(t);
    if (rpc) {
      out.set(rpc[1]!, pending);
      pending = [];
    } else if (!t.startsWith("//")) {
      pending = [];
    }
  }
  return out;
}

/** True when the RPC's leading comment has a `// New:` line (an RPC that replaces no legacy route). */
function newComment(file: string, name: string): boolean {
  const src = readFileSync(`${REPO_ROOT}proto/${file}.proto`, "utf8").split("\n");
  const at = src.findIndex((l) => new RegExp(`^\\s*rpc ${name}\\(`).test(l));
  for (let i = at - 1; i >= 0 && src[i]!.trim().startsWith("//"); i--) if (src[i]!.trim().startsWith("// New:")) return true;
  return false;
}

describe("legacy route inventory", () => {
  it("covers the 8 services and their 50+ RPCs", () => {
    expect(new Set(serviceContracts.map((c) => c.name))).toEqual(
      new Set(["auth-service", "ticket-service", "event-service", "payment-service", "venue-service", "order-service", "minting-service", "notification-service"]),
    );
    expect(rpcs.size).toBeGreaterThanOrEqual(57);
  });

  it("every row is well-formed and names an existing RPC of the right service", () => {
    for (const row of rows) {
      expect(["http", "client", "job", "webhook"], JSON.stringify(row)).toContain(row.kind);
      if (row.kind === "http" || row.kind === "webhook") expect(row.method, JSON.stringify(row)).toMatch(/^(GET|POST|PUT|PATCH|DELETE)$/);
      expect(row.path, JSON.stringify(row)).not.toBe("");
      const target = rpcs.get(row.rpc);
      expect(target, `inventory row ${JSON.stringify(row)} names an RPC that does not exist`).toBeDefined();
      if (target!.service !== undefined) expect(target!.service, `inventory row ${JSON.stringify(row)}`).toBe(row.service);
    }
  });

  it("every RPC that declares Replaces: has inventory rows; every other RPC says it is new", () => {
    const covered = new Set(rows.map((r) => r.rpc));
    const byFile = new Map<string, Map<string, string[]>>();
    for (const [rpc, info] of rpcs) {
      if (!byFile.has(info.file)) byFile.set(info.file, replacesComments(info.file));
      const declares = (byFile.get(info.file)!.get(info.name) ?? []).length > 0;
      if (declares) expect(covered.has(rpc), `${rpc} declares Replaces: but has no legacy route row`).toBe(true);
      else expect(newComment(info.file, info.name), `${rpc} has neither a "// Replaces:" nor a "// New:" comment`).toBe(true);
    }
  });

  it("each RPC's Replaces: comment names its inventory rows", () => {
    const byFile = new Map<string, Map<string, string[]>>();
    for (const [rpc, info] of rpcs) {
      if (!byFile.has(info.file)) byFile.set(info.file, replacesComments(info.file));
      const comments = byFile.get(info.file)!.get(info.name) ?? [];
      const expected = rows
        .filter((r) => r.rpc === rpc)
        .map((r) => (r.kind === "http" || r.kind === "webhook" ? `${r.method} ${r.path}` : `${r.kind} ${r.path}`));
      if (expected.length > 0) expect(comments.length, `${rpc} has legacy rows but no "// Replaces:" comment`).toBeGreaterThan(0);
      for (const e of expected) {
        expect(comments.some((c) => c.startsWith(e)), `${rpc}: comment should name "${e}", has ${JSON.stringify(comments)}`).toBe(true);
      }
    }
  });

  it("every RPC has an access rule with at least one known caller", () => {
    for (const contract of serviceContracts) {
      for (const [name, m] of Object.entries(contract.methods)) {
        expect(m.access.callers.length, `${contract.service.typeName}.${name}`).toBeGreaterThan(0);
      }
    }
  });
});
