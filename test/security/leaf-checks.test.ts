import { X509Certificate as NodeX509 } from "node:crypto";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import * as x509 from "../../src/runtime/identity/x509.ts";
import {
  LeafCheckError,
  createPeerIdentityCache,
  inspectPeerLeaf,
  type LeafCheckCode,
} from "../../src/runtime/identity/leaf-checks.ts";
import { type CaMaterial, type IssuedCert, issueCertificate, issueWorkloadLeaf } from "../../src/devtools/pki/cert-issue.ts";
import { BAD_LEAF_KINDS, type TestLeafKind, createTestCa, issueTestLeaf } from "../support/test-certs.ts";
import { TRUST_DOMAIN } from "../../src/runtime/identity/spiffe-id.ts";

const opts = { trustDomain: TRUST_DOMAIN };
const der = (leaf: IssuedCert) => new Uint8Array(leaf.cert.rawData);

let ca: CaMaterial & { certPem: string };
const leaves = new Map<TestLeafKind, IssuedCert>();
let server: IssuedCert;

beforeAll(async () => {
  ca = await createTestCa();
  for (const kind of ["good", ...BAD_LEAF_KINDS] as const) leaves.set(kind, await issueTestLeaf(ca, kind));
  server = await issueWorkloadLeaf(ca, { workload: "payment-service" });
});

const leaf = (kind: TestLeafKind) => leaves.get(kind)!;

function expectReject(input: Uint8Array, code: LeafCheckCode, message: RegExp): void {
  let caught: unknown;
  try {
    inspectPeerLeaf(input, opts);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(LeafCheckError);
  expect((caught as LeafCheckError).code).toBe(code);
  expect((caught as LeafCheckError).message).toMatch(message);
}

describe("inspectPeerLeaf", () => {
  it("accepts a good leaf and reports its identity", () => {
    const good = leaf("good");
    const id = inspectPeerLeaf(der(good), opts);
    const node = new NodeX509(Buffer.from(der(good)));
    expect(id).toEqual({
      spiffeId: "spiffe://tickettoken.internal/ns/dev/sa/ticket-service",
      env: "dev",
      workload: "ticket-service",
      notAfter: good.cert.notAfter,
      fingerprint256: node.fingerprint256,
    });
    expect(id.notAfter.getTime()).toBe(new Date(node.validTo).getTime());
  });

  const cases: Array<[TestLeafKind, LeafCheckCode, RegExp]> = [
    ["ca-true", "is-ca", /CA:TRUE/],
    ["key-cert-sign", "key-usage", /keyCertSign/],
    ["crl-sign", "key-usage", /cRLSign/],
    ["no-digital-signature", "key-usage", /lacks digitalSignature/],
    ["two-uri-sans", "uri-san-count", /2 URI SANs; exactly one/],
    ["no-uri-san", "uri-san-count", /0 URI SANs; exactly one/],
    ["bad-spiffe-grammar", "bad-spiffe-id", /not a valid SPIFFE ID: .*"\." or "\.\."/],
    ["other-trust-domain", "trust-domain", /"evil.example" is not "tickettoken.internal"/],
    ["bad-shape", "id-shape", /not of the form \/ns\/<env>\/sa\/<workload>/],
  ];
  it.each(cases)("rejects %s with %s", (kind, code, message) => {
    expectReject(der(leaf(kind)), code, message);
  });

  it("rejects a leaf whose trust domain differs from the one asked for", () => {
    expect(() => inspectPeerLeaf(der(leaf("good")), { trustDomain: "other.test" })).toThrow(/trust domain/);
  });

  it("reads a Buffer that is a view into a larger ArrayBuffer (as Node hands them out)", () => {
    const raw = Buffer.from(der(leaf("good")));
    const view = Buffer.concat([Buffer.from([0x30, 0x82, 1]), raw, Buffer.from([0])]).subarray(3, 3 + raw.length);
    expect(view.byteOffset).toBeGreaterThan(0);
    expect(inspectPeerLeaf(view, opts).workload).toBe("ticket-service");
  });

  it("rejects garbage DER", () => {
    expectReject(new Uint8Array([0x30, 0x03, 0x02, 0x01]), "unparsable", /does not parse/);
  });

  it("rejects a repeated extension", async () => {
    const dup = await issueCertificate(ca, {
      uris: ["spiffe://tickettoken.internal/ns/dev/sa/ticket-service"],
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3_600_000),
      extraExtensions: [new x509.BasicConstraintsExtension(false)],
    });
    expectReject(der(dup), "duplicate-extension", /2\.5\.29\.19 appears twice/);
  });

  it("leaves chain and validity checks to TLS: other-CA and expired leaves pass these checks", () => {
    expect(inspectPeerLeaf(der(leaf("other-ca")), opts).workload).toBe("ticket-service");
    expect(inspectPeerLeaf(der(leaf("expired")), opts).workload).toBe("ticket-service");
  });
});

describe("SANs as Node sees them", () => {
  it("service leaves carry URI, DNS and IP SANs", () => {
    const node = new NodeX509(leaf("good").certPem);
    expect(node.subjectAltName).toBe(
      "URI:spiffe://tickettoken.internal/ns/dev/sa/ticket-service, DNS:ticket-service, DNS:localhost, IP Address:127.0.0.1",
    );
    expect(node.checkHost("ticket-service")).toBe("ticket-service");
    expect(node.checkHost("localhost")).toBe("localhost");
    expect(node.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(node.ca).toBe(false);
  });

  it("the ops leaf carries only its URI SAN", async () => {
    const ops = await issueWorkloadLeaf(ca, { workload: "ops" });
    expect(new NodeX509(ops.certPem).subjectAltName).toBe("URI:spiffe://tickettoken.internal/ns/dev/sa/ops");
    expect(inspectPeerLeaf(der(ops), opts).workload).toBe("ops");
  });

  it("Node and @peculiar/x509 agree on every bad leaf's SANs", () => {
    for (const kind of BAD_LEAF_KINDS) {
      const l = leaf(kind);
      const ours = (l.cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? [])
        .filter((n) => n.type === "url")
        .map((n) => `URI:${n.value}`);
      const theirs = (new NodeX509(l.certPem).subjectAltName ?? "").split(", ").filter((s) => s.startsWith("URI:"));
      expect(ours, kind).toEqual(theirs);
    }
  });
});

/** Real TLS 1.3 with client auth, as the runtime configures it. */
async function clientHandshake(client: IssuedCert): Promise<{ ok: true; peerDer: Uint8Array } | { ok: false; error: string }> {
  const srv = tls.createServer({
    key: server.keyPem,
    cert: server.certPem,
    ca: ca.certPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const sockets: tls.TLSSocket[] = [];
  try {
    return await new Promise((resolve) => {
      srv.on("secureConnection", (s) => {
        sockets.push(s);
        resolve({ ok: true, peerDer: new Uint8Array(s.getPeerX509Certificate()!.raw) });
      });
      srv.on("tlsClientError", (err) => resolve({ ok: false, error: err.message }));
      const c = tls.connect({
        host: "127.0.0.1",
        port: (srv.address() as AddressInfo).port,
        key: client.keyPem,
        cert: client.certPem,
        ca: ca.certPem,
        minVersion: "TLSv1.3",
      });
      sockets.push(c);
      c.on("error", () => {}); // the server's verdict is what we assert
    });
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => srv.close(r));
  }
}

describe("TLS handshake + leaf checks together", () => {
  it("a good client leaf passes both", async () => {
    const r = await clientHandshake(leaf("good"));
    expect(r.ok).toBe(true);
    if (r.ok) expect(inspectPeerLeaf(r.peerDer, opts).workload).toBe("ticket-service");
  });

  it.each([["other-ca"], ["expired"]] as const)("OpenSSL rejects a %s client leaf", async (kind) => {
    const r = await clientHandshake(leaf(kind));
    expect(r.ok).toBe(false);
  });

  it.each([["ca-true"], ["two-uri-sans"], ["no-uri-san"], ["other-trust-domain"], ["bad-shape"]] as const)(
    "OpenSSL accepts a %s client leaf; only our leaf checks stop it",
    async (kind) => {
      const r = await clientHandshake(leaf(kind));
      expect(r.ok).toBe(true);
      if (r.ok) expect(() => inspectPeerLeaf(r.peerDer, opts)).toThrow(LeafCheckError);
    },
  );

  it("no bad leaf gets through handshake and leaf checks", async () => {
    for (const kind of BAD_LEAF_KINDS) {
      const r = await clientHandshake(leaf(kind));
      const admitted = r.ok && (() => {
        try {
          inspectPeerLeaf(r.peerDer, opts);
          return true;
        } catch {
          return false;
        }
      })();
      expect(admitted, kind).toBe(false);
    }
  });

  it("the client verifies the server by IP, localhost and service name", async () => {
    const srv = tls.createServer({ key: server.keyPem, cert: server.certPem, minVersion: "TLSv1.3" });
    await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
    const port = (srv.address() as AddressInfo).port;
    const connect = (servername?: string) =>
      new Promise<string | undefined>((resolve) => {
        const c = tls.connect({ host: "127.0.0.1", port, ca: ca.certPem, ...(servername ? { servername } : {}) });
        c.on("secureConnect", () => {
          c.destroy();
          resolve(undefined);
        });
        c.on("error", (err) => resolve(err.message));
      });
    try {
      expect(await connect()).toBeUndefined();
      expect(await connect("localhost")).toBeUndefined();
      expect(await connect("payment-service")).toBeUndefined();
      expect(await connect("ticket-service")).toMatch(/does not match|not in the cert's altnames/i);
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });
});

describe("createPeerIdentityCache", () => {
  it("parses once per connection", () => {
    const cache = createPeerIdentityCache();
    const socket = {};
    let calls = 0;
    const read = () => {
      calls++;
      return der(leaf("good"));
    };
    const a = cache.get(socket, read);
    const b = cache.get(socket, read);
    expect(a).toBe(b);
    expect(calls).toBe(1);
    cache.get({}, read);
    expect(calls).toBe(2);
  });

  it("caches failures and throws every time", () => {
    const cache = createPeerIdentityCache({ trustDomain: TRUST_DOMAIN });
    const socket = {};
    let calls = 0;
    const read = () => {
      calls++;
      return der(leaf("ca-true"));
    };
    const errors: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      try {
        cache.get(socket, read);
      } catch (err) {
        errors.push(err);
      }
    }
    expect(calls).toBe(1);
    expect(errors).toHaveLength(3);
    for (const e of errors) {
      expect(e).toBeInstanceOf(LeafCheckError);
      expect((e as LeafCheckError).code).toBe("is-ca");
    }
  });

  it("treats a missing or unreadable certificate as a cached failure", () => {
    const cache = createPeerIdentityCache();
    const s1 = {};
    const s2 = {};
    expect(() => cache.get(s1, () => undefined)).toThrow(/no certificate/);
    expect(() => cache.get(s1, () => der(leaf("good")))).toThrow(/no certificate/);
    expect(() =>
      cache.get(s2, () => {
        throw new Error("socket gone");
      }),
    ).toThrow(/could not read peer certificate: socket gone/);
  });
});
