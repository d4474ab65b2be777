import { createPrivateKey, createPublicKey, sign, verify, X509Certificate as NodeX509 } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, stat, unlink, writeFile, copyFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { calculateJwkThumbprint, importJWK, jwtVerify, SignJWT } from "jose";
import * as x509 from "../../src/runtime/identity/x509.ts";
import {
  PkiError,
  initPki,
  loadContextSigningKey,
  loadTrustBundle,
  loadWorkloadMaterial,
  pkiPaths,
  rotateJwtKey,
  rotateLeaf,
} from "../../src/devtools/pki/dev-ca.ts";
import { SERVICE_NAMES, WORKLOAD_NAMES } from "../../src/runtime/identity/workloads.ts";
import { parseKeyFile } from "../../src/runtime/identity/jwt-keys.ts";
import { runCerts } from "../../src/devtools/cli/certs.ts";

const HOUR = 3_600_000;
const tempDirs: string[] = [];

async function freshDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "tt-pki-"));
  tempDirs.push(d);
  return join(d, "certs");
}

afterAll(async () => {
  for (const d of tempDirs) await rm(d, { recursive: true, force: true });
});

/** path -> [mode, mtime, content] for every file and directory under dir. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    const st = await stat(d);
    out.set(relative(dir, d) || ".", `dir ${(st.mode & 0o777).toString(8)}`);
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else {
        const fst = await stat(p);
        out.set(relative(dir, p), `${(fst.mode & 0o777).toString(8)} ${fst.mtimeMs} ${await readFile(p, "utf8")}`);
      }
    }
  };
  await walk(dir);
  return out;
}

function changed(a: Map<string, string>, b: Map<string, string>): string[] {
  const keys = new Set([...a.keys(), ...b.keys()]);
  return [...keys].filter((k) => a.get(k) !== b.get(k)).sort();
}

const readCert = async (path: string) => new x509.X509Certificate(await readFile(path, "utf8"));

describe("initPki", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await freshDir();
    const started = Date.now();
    await initPki({ dir });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("creates the documented layout with the right modes", async () => {
    const snap = await snapshot(dir);
    const expected = new Map<string, string>([
      [".", "dir 700"],
      ["ca", "dir 700"],
      ["ca/ca.crt", "644"],
      ["ca/ca.key", "600"],
      ["bundle", "dir 700"],
      ["bundle/ca.crt", "644"],
      ["bundle/bundle.json", "644"],
      ["context", "dir 700"],
      ["context/context-signing.jwk.json", "600"],
    ]);
    for (const w of WORKLOAD_NAMES) {
      expected.set(w, "dir 700");
      expected.set(`${w}/tls.crt`, "644");
      expected.set(`${w}/tls.key`, "600");
      expected.set(`${w}/jwt-signing.jwk.json`, "600");
    }
    expect([...snap.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [path, mode] of expected) expect(snap.get(path)!.startsWith(mode), path).toBe(true);
  });

  it("is idempotent: a second run writes nothing", async () => {
    const before = await snapshot(dir);
    const { written } = await initPki({ dir });
    expect(written).toEqual([]);
    expect(changed(before, await snapshot(dir))).toEqual([]);
  });

  it("issues a proper root CA", async () => {
    const ca = await readCert(pkiPaths(dir).caCert);
    const bc = ca.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc.ca).toBe(true);
    expect(bc.critical).toBe(true);
    const ku = ca.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.critical).toBe(true);
    expect(ku.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(await ca.isSelfSigned()).toBe(true);
    expect(ca.publicKey.algorithm).toMatchObject({ name: "ECDSA", namedCurve: "P-256" });
    const days = (ca.notAfter.getTime() - Date.now()) / (24 * HOUR);
    expect(days).toBeGreaterThan(364);
    expect(days).toBeLessThanOrEqual(365);
    expect(await readFile(pkiPaths(dir).bundleCa, "utf8")).toBe(await readFile(pkiPaths(dir).caCert, "utf8"));
  });

  it("issues X509-SVID leaves with exactly the promised properties", async () => {
    const ca = await readCert(pkiPaths(dir).caCert);
    const serials = new Set<string>();
    for (const w of WORKLOAD_NAMES) {
      const p = pkiPaths(dir).workload(w);
      const cert = await readCert(p.cert);
      serials.add(cert.serialNumber);
      expect(await cert.verify({ publicKey: ca.publicKey, signatureOnly: true }), w).toBe(true);
      expect(cert.issuer).toBe(ca.subject);
      expect(cert.publicKey.algorithm).toMatchObject({ name: "ECDSA", namedCurve: "P-256" });

      const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
      expect([bc.ca, bc.critical]).toEqual([false, true]);
      const ku = cert.getExtension(x509.KeyUsagesExtension)!;
      expect([ku.usages, ku.critical]).toEqual([x509.KeyUsageFlags.digitalSignature, true]);
      expect(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]);

      const names = cert.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON();
      const uri = { type: "url", value: `spiffe://tickettoken.internal/ns/dev/sa/${w}` };
      const service = (SERVICE_NAMES as readonly string[]).includes(w);
      expect(names).toEqual(
        service
          ? [uri, { type: "dns", value: w }, { type: "dns", value: "localhost" }, { type: "ip", value: "127.0.0.1" }]
          : [uri],
      );

      const hours = (cert.notAfter.getTime() - Date.now()) / HOUR;
      expect(hours).toBeGreaterThan(24 * 7 - 1);
      expect(hours).toBeLessThanOrEqual(24 * 7);
      expect(cert.notBefore.getTime()).toBeLessThanOrEqual(Date.now());

      // The key on disk is the certificate's key: it signs, the cert verifies.
      const keyPem = await readFile(p.key, "utf8");
      expect(keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
      const sig = sign("sha256", Buffer.from("hello"), createPrivateKey(keyPem));
      expect(verify("sha256", Buffer.from("hello"), new NodeX509(await readFile(p.cert)).publicKey, sig)).toBe(true);
      expect(
        createPublicKey(keyPem).export({ type: "spki", format: "der" }).equals(Buffer.from(cert.publicKey.rawData)),
      ).toBe(true);
    }
    expect(serials.size).toBe(WORKLOAD_NAMES.length);
  });

  it("creates ES256 JWT keys whose kid is the RFC 7638 thumbprint, published in the bundle", async () => {
    const bundle = await loadTrustBundle(pkiPaths(dir).bundleJson);
    expect(bundle.trustDomain).toBe("tickettoken.internal");
    expect([...bundle.jwtKeys.keys()]).toEqual(WORKLOAD_NAMES.map((w) => `spiffe://tickettoken.internal/ns/dev/sa/${w}`));
    const kids = new Set<string>();
    for (const w of WORKLOAD_NAMES) {
      const file = await parseKeyFile(await readFile(pkiPaths(dir).workload(w).jwt, "utf8"));
      expect(file.keys).toHaveLength(1);
      const jwk = file.keys[0]!.jwk;
      expect(jwk).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig", kid: file.current });
      expect(jwk.kid).toBe(await calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }));
      kids.add(jwk.kid);
      const published = bundle.jwtKeys.get(`spiffe://tickettoken.internal/ns/dev/sa/${w}`)!;
      const { d: _d, ...pub } = jwk;
      expect(published).toEqual([pub]);
    }
    expect(kids.size).toBe(WORKLOAD_NAMES.length);
    const raw = await readFile(pkiPaths(dir).bundleJson, "utf8");
    expect(raw).not.toMatch(/"d"\s*:/);
    expect(raw).not.toMatch(/PRIVATE KEY/);
  });

  it("signs with the workload key and verifies with the published key", async () => {
    const m = await loadWorkloadMaterial(dir, "api-gateway");
    const bundle = await loadTrustBundle(pkiPaths(dir).bundleJson);
    const token = await new SignJWT({ mth: "/x.Y/Z" })
      .setProtectedHeader({ alg: "ES256", kid: m.jwt.current.kid })
      .sign(await importJWK(m.jwt.current, "ES256"));
    const pub = bundle.jwtKeys.get(m.spiffeId)![0]!;
    await expect(jwtVerify(token, await importJWK(pub, "ES256"))).resolves.toBeTruthy();

    const ctx = await loadContextSigningKey(dir);
    expect(bundle.contextKeys.map((k) => k.kid)).toEqual([ctx.current.kid]);
  });

  it("loads a workload's material", async () => {
    const m = await loadWorkloadMaterial(dir, "ticket-service");
    expect(m.spiffeId).toBe("spiffe://tickettoken.internal/ns/dev/sa/ticket-service");
    expect(m.env).toBe("dev");
    expect(m.certPem).toMatch(/BEGIN CERTIFICATE/);
    expect(m.keyPem).toMatch(/BEGIN PRIVATE KEY/);
    expect(m.jwt.keys).toHaveLength(1);
  });
});

describe.concurrent("renewal and rotation", () => {
  it("reissues only leaves near expiry; CA and JWT keys stay", async () => {
    const dir = await freshDir();
    await initPki({ dir });
    const before = await snapshot(dir);
    const leafExpiry = (await readCert(pkiPaths(dir).workload("ops").cert)).notAfter.getTime();
    // 25 h before expiry: still fine.
    expect((await initPki({ dir, now: new Date(leafExpiry - 25 * HOUR) })).written).toEqual([]);
    // 23 h before expiry: every leaf is renewed, nothing else.
    const later = new Date(leafExpiry - 23 * HOUR);
    await initPki({ dir, now: later });
    const diff = changed(before, await snapshot(dir));
    expect(diff).toEqual(WORKLOAD_NAMES.flatMap((w) => [`${w}/tls.crt`, `${w}/tls.key`]).sort());
    const renewed = await readCert(pkiPaths(dir).workload("ops").cert);
    expect(renewed.notAfter.getTime()).toBeGreaterThan(leafExpiry);
  });

  it("rotateLeaf changes only that workload's tls.crt and tls.key", async () => {
    const dir = await freshDir();
    await initPki({ dir });
    const p = pkiPaths(dir).workload("ticket-service");
    const oldCert = await readCert(p.cert);
    const before = await snapshot(dir);
    const r = await rotateLeaf({ dir, workload: "ticket-service" });
    expect(r.spiffeId).toBe("spiffe://tickettoken.internal/ns/dev/sa/ticket-service");
    expect(changed(before, await snapshot(dir))).toEqual(["ticket-service/tls.crt", "ticket-service/tls.key"]);
    const newCert = await readCert(p.cert);
    expect(newCert.serialNumber).not.toBe(oldCert.serialNumber);
    expect(Buffer.from(newCert.publicKey.rawData).equals(Buffer.from(oldCert.publicKey.rawData))).toBe(false);
    await expect(loadWorkloadMaterial(dir, "ticket-service")).resolves.toBeTruthy();
    // and init still considers everything in place
    expect((await initPki({ dir })).written).toEqual([]);
  });

  it("rotateJwtKey keeps the previous key published and prunes after the grace period", async () => {
    const dir = await freshDir();
    const t0 = new Date();
    await initPki({ dir, now: t0 });
    const path = pkiPaths(dir).workload("order-service").jwt;
    const id = "spiffe://tickettoken.internal/ns/dev/sa/order-service";
    const k0 = (await parseKeyFile(await readFile(path, "utf8"))).current;
    const before = await snapshot(dir);

    const r1 = await rotateJwtKey({ dir, workload: "order-service", now: new Date(t0.getTime() + 1000) });
    expect(r1.published).toEqual([r1.kid, k0]);
    expect(changed(before, await snapshot(dir))).toEqual(["bundle/bundle.json", "order-service/jwt-signing.jwk.json"]);
    let bundle = await loadTrustBundle(pkiPaths(dir).bundleJson);
    expect(bundle.jwtKeys.get(id)!.map((k) => k.kid)).toEqual([r1.kid, k0]);
    expect((await loadWorkloadMaterial(dir, "order-service")).jwt.current.kid).toBe(r1.kid);

    // A second rotation within the grace period keeps all three.
    const r2 = await rotateJwtKey({ dir, workload: "order-service", now: new Date(t0.getTime() + 2000) });
    expect(r2.published).toEqual([r2.kid, r1.kid, k0]);

    // Past the grace period, only current + previous survive.
    const r3 = await rotateJwtKey({ dir, workload: "order-service", now: new Date(t0.getTime() + 2 * HOUR) });
    expect(r3.published).toEqual([r3.kid, r2.kid]);
    bundle = await loadTrustBundle(pkiPaths(dir).bundleJson);
    expect(bundle.jwtKeys.get(id)!.map((k) => k.kid)).toEqual([r3.kid, r2.kid]);
    // Other workloads untouched; init keeps the rotated state.
    expect((await initPki({ dir })).written).toEqual([]);
  });

  it("a new env reissues leaves under the new identity and re-keys the bundle", async () => {
    const dir = await freshDir();
    await initPki({ dir });
    await initPki({ dir, env: "staging" });
    const m = await loadWorkloadMaterial(dir, "ops");
    expect(m.spiffeId).toBe("spiffe://tickettoken.internal/ns/staging/sa/ops");
    const bundle = await loadTrustBundle(pkiPaths(dir).bundleJson);
    expect(bundle.jwtKeys.has("spiffe://tickettoken.internal/ns/staging/sa/ops")).toBe(true);
    expect(bundle.jwtKeys.has("spiffe://tickettoken.internal/ns/dev/sa/ops")).toBe(false);
    expect((await rotateLeaf({ dir, workload: "ops" })).spiffeId).toBe("spiffe://tickettoken.internal/ns/staging/sa/ops");
  });

  it("replaces a leaf signed by a CA that is no longer ours", async () => {
    const dir = await freshDir();
    await initPki({ dir });
    const other = await freshDir();
    await initPki({ dir: other });
    const p = pkiPaths(dir).workload("file-service");
    const q = pkiPaths(other).workload("file-service");
    await copyFile(q.cert, p.cert);
    await copyFile(q.key, p.key);
    const { written } = await initPki({ dir });
    expect(written.sort()).toEqual([p.cert, p.key].sort());
  });
});

describe.concurrent("fail closed on missing or bad material", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await freshDir();
    await initPki({ dir });
  });

  it("names a missing file", async () => {
    const d = await freshDir();
    await initPki({ dir: d });
    await unlink(pkiPaths(d).workload("ticket-service").key);
    await expect(loadWorkloadMaterial(d, "ticket-service")).rejects.toThrow(PkiError);
    await expect(loadWorkloadMaterial(d, "ticket-service")).rejects.toThrow(/ticket-service\/tls\.key: missing/);
    await expect(loadTrustBundle(join(d, "nope.json"))).rejects.toThrow(/nope\.json: missing/);
  });

  it("rejects a key that does not match the certificate", async () => {
    const d = await freshDir();
    await initPki({ dir: d });
    await copyFile(pkiPaths(d).workload("ops").key, pkiPaths(d).workload("ticket-service").key);
    await expect(loadWorkloadMaterial(d, "ticket-service")).rejects.toThrow(/tls\.key: key does not match/);
  });

  it("rejects a certificate for another workload", async () => {
    const d = await freshDir();
    await initPki({ dir: d });
    for (const f of ["cert", "key"] as const) {
      await copyFile(pkiPaths(d).workload("ops")[f], pkiPaths(d).workload("ticket-service")[f]);
    }
    await expect(loadWorkloadMaterial(d, "ticket-service")).rejects.toThrow(/tls\.crt: certificate is for .*\/sa\/ops/);
  });

  it("rejects an expired certificate", async () => {
    await expect(loadWorkloadMaterial(dir, "ops", { now: new Date(Date.now() + 30 * 24 * HOUR) })).rejects.toThrow(
      /certificate expired/,
    );
  });

  it("rejects unknown workloads, listing valid ones", async () => {
    await expect(loadWorkloadMaterial(dir, "evil-service")).rejects.toThrow(/unknown workload "evil-service"; valid names: api-gateway/);
    await expect(rotateLeaf({ dir, workload: "../ca" })).rejects.toThrow(/unknown workload/);
  });

  it("rejects a bundle that publishes a private key or a wrong kid", async () => {
    const path = pkiPaths(dir).bundleJson;
    const good = JSON.parse(await readFile(path, "utf8"));
    const d = await freshDir();
    const bad = join(d, "..", "bundle.json");

    const withPrivate = structuredClone(good);
    const jwt = JSON.parse(await readFile(pkiPaths(dir).workload("ops").jwt, "utf8"));
    withPrivate.context_keys = [jwt.keys[0].jwk];
    await writeFile(bad, JSON.stringify(withPrivate));
    await expect(loadTrustBundle(bad)).rejects.toThrow(/context_keys\[0\] is a private key/);

    const wrongKid = structuredClone(good);
    wrongKid.context_keys[0].kid = "abc";
    await writeFile(bad, JSON.stringify(wrongKid));
    await expect(loadTrustBundle(bad)).rejects.toThrow(/kid is not its RFC 7638 thumbprint/);

    const foreignId = structuredClone(good);
    foreignId.jwt_keys["spiffe://evil.example/ns/dev/sa/ops"] = good.context_keys;
    await writeFile(bad, JSON.stringify(foreignId));
    await expect(loadTrustBundle(bad)).rejects.toThrow(/invalid SPIFFE ID/);

    const noRoots = { ...good, x509_authorities: [] };
    await writeFile(bad, JSON.stringify(noRoots));
    await expect(loadTrustBundle(bad)).rejects.toThrow(/x509_authorities is empty/);
  });

  it("refuses to replace half a CA", async () => {
    const d = await freshDir();
    await initPki({ dir: d });
    await unlink(pkiPaths(d).caKey);
    await expect(initPki({ dir: d })).rejects.toThrow(/ca\.key: CA key missing/);
  });

  it("refuses a corrupt JWT key file instead of overwriting it", async () => {
    const d = await freshDir();
    await initPki({ dir: d });
    await writeFile(pkiPaths(d).workload("ops").jwt, "{}");
    await expect(initPki({ dir: d })).rejects.toThrow(/ops\/jwt-signing\.jwk\.json: expected/);
  });

  it("repairs loose permissions on private files", async () => {
    const d = await freshDir();
    await initPki({ dir: d });
    const { chmod } = await import("node:fs/promises");
    await chmod(pkiPaths(d).caKey, 0o644);
    await initPki({ dir: d });
    expect((await stat(pkiPaths(d).caKey)).mode & 0o777).toBe(0o600);
  });
});

describe("tt-rpc certs", () => {
  const run = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCerts(args, { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out: out.join("\n"), err: err.join("\n") };
  };

  it("init, show, rotate, rotate-jwt; never prints key material", async () => {
    const dir = await freshDir();
    const init = await run("init", "--dir", dir, "--env", "dev");
    expect(init.code).toBe(0);
    expect(init.out).toMatch(/wrote \d+ file/);
    expect((await run("init", "--dir", dir)).out).toMatch(/nothing changed/);

    const show = await run("show", "--dir", dir);
    expect(show.code).toBe(0);
    for (const w of WORKLOAD_NAMES) expect(show.out).toContain(`spiffe://tickettoken.internal/ns/dev/sa/${w}`);

    expect((await run("rotate", "ticket-service", "--dir", dir)).code).toBe(0);
    const rj = await run("rotate-jwt", "ticket-service", "--dir", dir);
    expect(rj.code).toBe(0);
    expect(rj.out).toMatch(/current kid/);

    const ds = new Set<string>();
    for (const w of WORKLOAD_NAMES) {
      for (const k of (await parseKeyFile(await readFile(pkiPaths(dir).workload(w).jwt, "utf8"))).keys) ds.add(k.jwk.d);
    }
    for (const text of [init.out, show.out, rj.out]) {
      expect(text).not.toMatch(/PRIVATE KEY/);
      for (const d of ds) expect(text).not.toContain(d);
    }
  });

  it("rejects bad input with exit code 2", async () => {
    const dir = await freshDir();
    const unknown = await run("rotate", "evil-service", "--dir", dir);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("unknown workload");
    expect(unknown.err).toContain("scanning-service");
    expect((await run()).code).toBe(2);
    expect((await run("frobnicate")).code).toBe(2);
    expect((await run("init", "--bogus")).code).toBe(2);
    expect((await run("rotate", "--dir", dir)).code).toBe(2);
    expect((await run("rotate-jwt", "a", "b", "--dir", dir)).code).toBe(2);
    expect((await run("show", "--env", "x", "--dir", dir)).code).toBe(2);
    expect((await run("init", "--dir", dir, "--env", "bad/env")).code).toBe(2);
    const missing = await run("show", "--dir", dir);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/bundle\.json: missing/);
  });
});
