/**
 * src/runtime/auth/es256.ts: the ES256 JWS signer/verifier on KeyObjects with DER
 * <-> raw r||s conversion. Round trips, interop with jose both ways, tampered
 * signatures and claims, wrong lengths, out-of-range scalars and DER edge
 * cases; malformed input is a `false`, never an exception.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as nodeSign, type KeyObject } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { compactVerify, CompactSign, importJWK, type JWK } from "jose";
import { derToRaw, ES256_SIGNATURE_CHARS, rawToDer, signEs256, verifyEs256 } from "../../src/runtime/auth/es256.ts";
import { createJwsSigner, createVerifyKeyCache, generateSigningKey, publicJwk, verifyStrictJws, type SigningJwk } from "../../src/runtime/auth/keys.ts";
import { AuthError } from "../../src/runtime/auth/errors.ts";

const N = Buffer.from("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", "hex");
const input = (s: string) => Buffer.from(s, "latin1");
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

let jwk: SigningJwk;
let priv: KeyObject;
let pub: KeyObject;
let otherPub: KeyObject;

beforeAll(async () => {
  jwk = await generateSigningKey();
  priv = createPrivateKey({ key: { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, d: jwk.d }, format: "jwk" });
  pub = createPublicKey({ key: { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y }, format: "jwk" });
  otherPub = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey;
});

/** The AuthError reason a verification was refused with. */
async function reasonOf(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AuthError);
  return (err as AuthError).reason;
}

/** A raw signature with one byte changed, re-encoded. */
function flip(sig: string, byte: number): string {
  const raw = Buffer.from(sig, "base64url");
  raw[byte] = raw[byte]! ^ 0x01;
  return raw.toString("base64url");
}

describe("ES256 sign/verify (es256.ts)", () => {
  it("round-trips: 86 base64url chars that verify over the same input, and only that input and key", () => {
    for (let i = 0; i < 50; i++) {
      const data = input(`header.payload-${i}`);
      const sig = signEs256(priv, data);
      expect(sig).toHaveLength(ES256_SIGNATURE_CHARS);
      expect(sig).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(verifyEs256(pub, data, sig)).toBe(true);
      expect(verifyEs256(pub, input(`header.payload-${i}x`), sig)).toBe(false);
      expect(verifyEs256(otherPub, data, sig)).toBe(false);
    }
  });

  it("a token signed by jose verifies with ours, and ours verifies with jose", async () => {
    const header = { alg: "ES256", typ: "svc-call+jwt", kid: jwk.kid };
    const claims = { iss: "a", sub: "a", aud: "b", jti: "x" };
    const joseKey = await importJWK(jwk, "ES256");
    for (let i = 0; i < 10; i++) {
      const byJose = await new CompactSign(Buffer.from(JSON.stringify({ ...claims, n: i }))).setProtectedHeader(header).sign(joseKey);
      const [h, p, s] = byJose.split(".");
      expect(verifyEs256(pub, input(`${h}.${p}`), s!)).toBe(true);

      const ours = `${b64(header)}.${b64({ ...claims, n: i })}`;
      const token = `${ours}.${signEs256(priv, input(ours))}`;
      const { payload } = await compactVerify(token, await importJWK(publicJwk(jwk), "ES256"));
      expect(JSON.parse(Buffer.from(payload).toString())).toEqual({ ...claims, n: i });
    }
  });

  it("the product signer's tokens verify with jose, and jose-signed tokens pass verifyStrictJws", async () => {
    const signer = createJwsSigner(jwk, "svc-call+jwt");
    const token = await signer.sign({ iss: "a", n: 1 });
    const { payload, protectedHeader } = await compactVerify(token, await importJWK(publicJwk(jwk), "ES256"));
    expect(protectedHeader).toEqual({ alg: "ES256", typ: "svc-call+jwt", kid: jwk.kid });
    expect(JSON.parse(Buffer.from(payload).toString())).toEqual({ iss: "a", n: 1 });

    const byJose = await new CompactSign(Buffer.from(JSON.stringify({ iss: "a", n: 2 })))
      .setProtectedHeader({ alg: "ES256", typ: "svc-call+jwt", kid: jwk.kid })
      .sign(await importJWK(jwk, "ES256"));
    const opts = { label: "call token", typ: "svc-call+jwt", keys: [publicJwk(jwk)], keyOwner: "peer a", cache: createVerifyKeyCache() };
    expect((await verifyStrictJws(byJose, opts)).claims).toEqual({ iss: "a", n: 2 });
    // Second time through the same verifier: header and key come from its caches, same answer.
    expect((await verifyStrictJws(byJose, opts)).claims).toEqual({ iss: "a", n: 2 });
  });

  it("verifyStrictJws refuses a tampered signature or tampered claims, also with the header cached", async () => {
    const signer = createJwsSigner(jwk, "svc-call+jwt");
    const opts = { label: "call token", typ: "svc-call+jwt", keys: [publicJwk(jwk)], keyOwner: "peer a", cache: createVerifyKeyCache() };
    const good = await signer.sign({ iss: "a", tenant: "t1" });
    await verifyStrictJws(good, opts);
    const [h, p, s] = good.split(".") as [string, string, string];
    const forged = `${h}.${b64({ iss: "a", tenant: "t2" })}.${s}`;
    expect(await reasonOf(verifyStrictJws(forged, opts))).toMatch(/signature verification failed/);
    expect(await reasonOf(verifyStrictJws(`${h}.${p}.${flip(s, 10)}`, opts))).toMatch(/signature verification failed/);
    expect(await reasonOf(verifyStrictJws(`${h}.${p}.${flip(s, 40)}`, opts))).toMatch(/signature verification failed/);
    // A cached header never carries over to another typ.
    expect(await reasonOf(verifyStrictJws(good, { ...opts, typ: "txn+jwt" }))).toMatch(/typ "svc-call\+jwt" is not txn\+jwt/);
  });

  it("tampered signatures: every byte flipped fails", () => {
    const data = input("h.p");
    const sig = signEs256(priv, data);
    for (let byte = 0; byte < 64; byte++) expect(verifyEs256(pub, data, flip(sig, byte))).toBe(false);
  });

  it("wrong-length or non-base64url signatures fail without throwing", () => {
    const data = input("h.p");
    const sig = signEs256(priv, data);
    const raw = Buffer.from(sig, "base64url");
    for (const bad of [
      "",
      sig.slice(0, 85),
      `${sig}A`,
      Buffer.concat([raw, Buffer.from([0])]).toString("base64url"),
      raw.subarray(0, 63).toString("base64url"),
      // DER instead of raw: a different length.
      nodeSign("sha256", data, priv).toString("base64url"),
      `${sig.slice(0, 85)}=`,
      `${sig.slice(0, 40)}+${sig.slice(41)}`,
      `${sig.slice(0, 40)}.${sig.slice(41)}`,
      `${sig.slice(0, 40)} ${sig.slice(41)}`,
    ]) {
      expect(verifyEs256(pub, data, bad), JSON.stringify(bad)).toBe(false);
    }
    expect(verifyEs256(pub, data, 42 as unknown as string)).toBe(false);
  });

  it("a non-canonical last character (same bytes, other string) fails", () => {
    const data = input("h.p");
    for (let i = 0; i < 20; i++) {
      const sig = signEs256(priv, input(`h.p${i}`));
      const last = sig[85]!;
      const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
      // The next character encodes the same 4 significant bits with a non-zero padding bit.
      const twin = sig.slice(0, 85) + alphabet[alphabet.indexOf(last) + 1]!;
      expect(Buffer.from(twin, "base64url").equals(Buffer.from(sig, "base64url"))).toBe(true);
      expect(verifyEs256(pub, input(`h.p${i}`), twin)).toBe(false);
      expect(verifyEs256(pub, data, twin)).toBe(false);
    }
  });

  it("out-of-range scalars: r or s zero, equal to n or above, fail before OpenSSL", () => {
    const zero = Buffer.alloc(32);
    const one = Buffer.alloc(32);
    one[31] = 1;
    const max = Buffer.alloc(32, 0xff);
    for (const [r, s] of [
      [zero, one],
      [one, zero],
      [N, one],
      [one, N],
      [max, one],
      [one, max],
    ] as const) {
      const raw = Buffer.concat([r, s]);
      expect(rawToDer(raw)).toBeUndefined();
      expect(verifyEs256(pub, input("h.p"), raw.toString("base64url"))).toBe(false);
    }
    // n - 1 is in range: converted, then simply a wrong signature.
    const nMinus1 = Buffer.from(N);
    nMinus1[31]! -= 1;
    expect(rawToDer(Buffer.concat([nMinus1, one]))).toBeInstanceOf(Buffer);
    expect(verifyEs256(pub, input("h.p"), Buffer.concat([nMinus1, one]).toString("base64url"))).toBe(false);
  });

  it("high-S signatures (the (r, n - s) twin) are accepted, as JWS allows: replay protection keys on the jti", () => {
    const data = input("h.p");
    const raw = Buffer.from(signEs256(priv, data), "base64url");
    const s = BigInt(`0x${raw.subarray(32).toString("hex")}`);
    const twin = Buffer.concat([raw.subarray(0, 32), Buffer.from((BigInt(`0x${N.toString("hex")}`) - s).toString(16).padStart(64, "0"), "hex")]);
    expect(verifyEs256(pub, data, twin.toString("base64url"))).toBe(true);
  });

  it("DER -> raw: minimal integers, leading-zero padding, short scalars", () => {
    const hex = (h: string) => Buffer.from(h.replace(/\s/g, ""), "hex");
    // r = 0x80..(32 bytes, high bit: one 0x00 pad byte), s = 0x01 (1 byte: left-padded to 32).
    const r = Buffer.alloc(32, 0x11);
    r[0] = 0x80;
    const der = Buffer.concat([hex("30 26 02 21 00"), r, hex("02 01 01")]);
    const raw = derToRaw(der)!;
    expect(raw.subarray(0, 32).equals(r)).toBe(true);
    expect(raw.subarray(32).equals(Buffer.concat([Buffer.alloc(31), hex("01")]))).toBe(true);
    // And back: the same DER bytes.
    expect(rawToDer(raw)!.equals(der)).toBe(true);
    // Node's own DER signatures convert both ways unchanged.
    for (let i = 0; i < 100; i++) {
      const d = nodeSign("sha256", input(`x${i}`), priv);
      expect(rawToDer(derToRaw(d)!)!.equals(d)).toBe(true);
    }
  });

  it("DER -> raw refuses malformed DER", () => {
    const hex = (h: string) => Buffer.from(h.replace(/\s/g, ""), "hex");
    const int32 = "02 20" + " 11".repeat(32);
    for (const bad of [
      "",
      "30 00",
      // wrong outer tag, wrong outer length, trailing byte
      `31 44 ${int32} ${int32}`,
      `30 45 ${int32} ${int32}`,
      `30 44 ${int32} ${int32} 00`,
      // negative r, non-minimal leading zero, zero-length, lone zero, 34-byte integer
      `30 44 02 20 ${" 81".repeat(32)} ${int32}`,
      `30 45 02 21 00 ${" 11".repeat(32)} ${int32}`,
      `30 24 02 00 ${int32}`,
      `30 25 02 01 00 ${int32}`,
      `30 46 02 22 00 ${" 91".repeat(33)} ${int32}`,
      // s missing, wrong inner tag, inner length past the end
      `30 22 ${int32}`,
      `30 44 ${int32} 03 20 ${" 11".repeat(32)}`,
      `30 44 ${int32} 02 21 ${" 11".repeat(32)}`,
    ]) {
      expect(derToRaw(hex(bad)), bad).toBeUndefined();
    }
  });
});
