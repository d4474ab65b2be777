import { describe, expect, it } from "vitest";
import {
  SpiffeIdError,
  TRUST_DOMAIN,
  parseSpiffeId,
  parseWorkloadId,
  workloadSpiffeId,
} from "../../src/runtime/identity/spiffe-id.ts";

const VALID: Array<[string, string, string]> = [
  // [input, trust domain, path]
  ["spiffe://tickettoken.internal", "tickettoken.internal", ""],
  ["spiffe://tickettoken.internal/ns/dev/sa/ticket-service", "tickettoken.internal", "/ns/dev/sa/ticket-service"],
  ["spiffe://a", "a", ""],
  ["spiffe://a-b_c.d0/x", "a-b_c.d0", "/x"],
  ["spiffe://td/A.Z-a_z.0", "td", "/A.Z-a_z.0"],
  ["spiffe://td/...", "td", "/..."], // three dots is an ordinary segment
  ["spiffe://td/.a/a./..b", "td", "/.a/a./..b"],
  ["spiffe://td/" + "a".repeat(2048 - "spiffe://td/".length), "td", "/" + "a".repeat(2048 - "spiffe://td/".length)],
];

const INVALID: Array<[string, RegExp]> = [
  ["", /empty/],
  ["SPIFFE://td/x", /lowercase "spiffe"/],
  ["Spiffe://td/x", /lowercase "spiffe"/],
  ["https://td/x", /scheme must be "spiffe"/],
  ["spiffe:td/x", /followed by "\/\/"/],
  ["spiffe:/td/x", /followed by "\/\/"/],
  ["td/x", /scheme must be "spiffe"/],
  ["spiffe://", /missing its trust domain/],
  ["spiffe:///x", /missing its trust domain/],
  ["spiffe://TD/x", /trust domain must be lowercase/],
  ["spiffe://Tickettoken.internal", /trust domain must be lowercase/],
  ["spiffe://user@td/x", /userinfo/],
  ["spiffe://td:443/x", /port/],
  ["spiffe://t%64/x", /trust domain must not contain percent-encoding/],
  ["spiffe://t d/x", /trust domain contains invalid character/],
  ["spiffe://td!/x", /trust domain contains invalid character "!"/],
  ["spiffe://tdé/x", /trust domain contains invalid character/],
  ["spiffe://" + "a".repeat(256), /trust domain is longer than 255 bytes/],
  ["spiffe://td/", /must not end with a slash/],
  ["spiffe://td/x/", /must not end with a slash/],
  ["spiffe://td//x", /empty segments/],
  ["spiffe://td/x//y", /empty segments/],
  ["spiffe://td/.", /must not be "\." or "\.\."/],
  ["spiffe://td/..", /must not be "\." or "\.\."/],
  ["spiffe://td/x/./y", /must not be "\." or "\.\."/],
  ["spiffe://td/x/../y", /must not be "\." or "\.\."/],
  ["spiffe://td/x%2Fy", /path segment must not contain percent-encoding/],
  ["spiffe://td/x y", /path segment contains invalid character " "/],
  ["spiffe://td/x*", /invalid character "\*"/],
  ["spiffe://td/é", /invalid character/],
  ["spiffe://td/x?y=1", /query/],
  ["spiffe://td?x", /query/],
  ["spiffe://td/x#frag", /fragment/],
  ["spiffe://td#", /fragment/],
  ["spiffe://td/" + "a".repeat(2049 - "spiffe://td/".length), /longer than 2048 bytes/],
  // Multi-byte characters count in bytes, not UTF-16 units.
  ["spiffe://td/" + "é".repeat(1100), /longer than 2048 bytes/],
];

describe("parseSpiffeId", () => {
  it.each(VALID)("accepts %s", (input, trustDomain, path) => {
    const id = parseSpiffeId(input);
    expect(id.trustDomain).toBe(trustDomain);
    expect(id.path).toBe(path);
    expect(id.toString()).toBe(input);
    expect(String(id)).toBe(input);
  });

  it.each(INVALID)("rejects %j", (input, message) => {
    expect(() => parseSpiffeId(input)).toThrow(SpiffeIdError);
    expect(() => parseSpiffeId(input)).toThrow(message);
  });
});

describe("workloadSpiffeId", () => {
  it("builds the Istio-style ID in our trust domain", () => {
    expect(TRUST_DOMAIN).toBe("tickettoken.internal");
    expect(workloadSpiffeId("ticket-service")).toBe("spiffe://tickettoken.internal/ns/dev/sa/ticket-service");
    expect(workloadSpiffeId("ops", "staging")).toBe("spiffe://tickettoken.internal/ns/staging/sa/ops");
  });

  it.each([
    ["ticket/service", "dev"],
    ["", "dev"],
    ["..", "dev"],
    ["ticket-service", "d v"],
    ["ticket-service", ""],
  ])("rejects workload %j env %j", (workload, env) => {
    expect(() => workloadSpiffeId(workload, env)).toThrow(SpiffeIdError);
  });
});

describe("parseWorkloadId", () => {
  it("returns env and workload", () => {
    expect(parseWorkloadId("spiffe://tickettoken.internal/ns/prod/sa/payment-service")).toEqual({
      spiffeId: "spiffe://tickettoken.internal/ns/prod/sa/payment-service",
      env: "prod",
      workload: "payment-service",
    });
  });

  it("honours a given trust domain", () => {
    expect(parseWorkloadId("spiffe://other.test/ns/dev/sa/x", "other.test").workload).toBe("x");
  });

  it.each([
    ["spiffe://evil.example/ns/dev/sa/ticket-service", /trust domain "evil.example" is not "tickettoken.internal"/],
    ["spiffe://tickettoken.internal", /not of the form/],
    ["spiffe://tickettoken.internal/ticket-service", /not of the form/],
    ["spiffe://tickettoken.internal/ns/dev/sa", /not of the form/],
    ["spiffe://tickettoken.internal/ns/dev/sa/x/y", /not of the form/],
    ["spiffe://tickettoken.internal/NS/dev/sa/x", /not of the form/],
    ["spiffe://tickettoken.internal/ns/dev/svc/x", /not of the form/],
    ["spiffe://tickettoken.internal/ns/dev/sa/../x", /must not be/],
  ])("rejects %s", (input, message) => {
    expect(() => parseWorkloadId(input)).toThrow(SpiffeIdError);
    expect(() => parseWorkloadId(input)).toThrow(message);
  });
});
