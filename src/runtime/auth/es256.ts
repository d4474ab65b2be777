/**
 * ES256 (ECDSA P-256 + SHA-256) signatures in JWS form, on Node's crypto with
 * a KeyObject and DER signatures, converting DER <-> the JWS raw r||s form
 * (RFC 7518 section 3.4) here.
 *
 * Why not `crypto.sign/verify(..., { key, dsaEncoding: "ieee-p1363" })`: on
 * Node 24 passing an options object instead of a KeyObject re-derives the key
 * on every call, measured 40-50 µs slower per sign and per verify; the
 * conversion below costs about 1 µs. jose stays for key generation, JWK
 * import/export and thumbprints (src/runtime/auth/keys.ts).
 *
 * Attacker input (a signature from a token) never throws here: anything but
 * exactly 64 bytes with 0 < r, s < n is a failed verification.
 * High-S signatures (s > n/2) are accepted, as JWS and every ES256 library
 * do, and Node itself produces them half the time: ECDSA's (r, n - s)
 * malleability gives an attacker a second signature for a token it already
 * holds, and that buys nothing here, because replay protection keys on the
 * signed jti, never on the signature bytes.
 */
import { sign as signDer, verify as verifyDer, type KeyObject } from "node:crypto";

/** Bytes of a raw r||s ES256 signature. */
export const ES256_RAW_BYTES = 64;
/** Characters of that signature in unpadded base64url. */
export const ES256_SIGNATURE_CHARS = 86;

// Order n of the P-256 group, big-endian.
const P256_N = Buffer.from("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", "hex");
// 64 bytes = 512 bits in 86 base64url chars (516 bits): the last char's low 4 bits must be 0.
const CANONICAL_LAST_CHAR = /[AQgw]$/;
const B64URL = /^[A-Za-z0-9_-]+$/;

/**
 * DER ECDSA-Sig-Value (SEQUENCE { INTEGER r, INTEGER s }) -> 64-byte r||s.
 * Strict DER: short-form lengths, minimal positive integers, nothing
 * trailing. Returns undefined for anything else.
 */
export function derToRaw(der: Uint8Array): Buffer | undefined {
  // 0x30 len; len <= 70 (two INTEGERs of at most 33 bytes plus their headers), always short form.
  if (der.length < 8 || der[0] !== 0x30 || der[1] !== der.length - 2) return undefined;
  const raw = Buffer.alloc(ES256_RAW_BYTES);
  const afterR = readInteger(der, 2, raw, 0);
  if (afterR < 0) return undefined;
  const afterS = readInteger(der, afterR, raw, 32);
  if (afterS !== der.length) return undefined;
  return raw;
}

/** Reads one DER INTEGER at `at` into out[offset..offset+32] (left-padded); returns the next index, or -1. */
function readInteger(der: Uint8Array, at: number, out: Buffer, offset: number): number {
  if (at + 2 > der.length || der[at] !== 0x02) return -1;
  const len = der[at + 1]!;
  const start = at + 2;
  const end = start + len;
  if (len === 0 || len > 33 || end > der.length) return -1;
  // Negative numbers are not ECDSA values; a leading 0x00 is allowed only before a byte with its high bit set.
  if (der[start]! & 0x80) return -1;
  if (der[start] === 0x00 && (len === 1 || !(der[start + 1]! & 0x80))) return -1;
  const value = der[start] === 0x00 ? der.subarray(start + 1, end) : der.subarray(start, end);
  if (value.length > 32) return -1;
  out.set(value, offset + 32 - value.length);
  return end;
}

/** 0 < x < n for a 32-byte big-endian scalar. */
function inRange(x: Uint8Array): boolean {
  let nonZero = false;
  for (let i = 0; i < 32; i++) {
    if (x[i] !== 0) {
      nonZero = true;
      break;
    }
  }
  return nonZero && Buffer.compare(x, P256_N) < 0;
}

/** Start of a 32-byte scalar's minimal encoding (leading zero bytes skipped, the last kept). */
function firstSignificant(x: Uint8Array): number {
  let i = 0;
  while (i < 31 && x[i] === 0) i++;
  return i;
}

/** Writes one scalar as a minimal DER INTEGER at `at`; returns the next index. */
function writeInteger(out: Buffer, at: number, x: Uint8Array, from: number): number {
  const pad = x[from]! & 0x80 ? 1 : 0;
  out[at] = 0x02;
  out[at + 1] = pad + 32 - from;
  if (pad) out[at + 2] = 0;
  out.set(x.subarray(from), at + 2 + pad);
  return at + 2 + pad + 32 - from;
}

/** 64-byte r||s -> DER, or undefined unless it has the right length and 0 < r, s < n. */
export function rawToDer(raw: Uint8Array): Buffer | undefined {
  if (raw.length !== ES256_RAW_BYTES) return undefined;
  const r = raw.subarray(0, 32);
  const s = raw.subarray(32, 64);
  if (!inRange(r) || !inRange(s)) return undefined;
  const rFrom = firstSignificant(r);
  const sFrom = firstSignificant(s);
  const rLen = 2 + (r[rFrom]! & 0x80 ? 1 : 0) + 32 - rFrom;
  const sLen = 2 + (s[sFrom]! & 0x80 ? 1 : 0) + 32 - sFrom;
  const out = Buffer.allocUnsafe(2 + rLen + sLen);
  out[0] = 0x30;
  out[1] = rLen + sLen;
  writeInteger(out, writeInteger(out, 2, r, rFrom), s, sFrom);
  return out;
}

/** ES256 signature over `input` as JWS base64url (86 chars). `key` is a P-256 private KeyObject. */
export function signEs256(key: KeyObject, input: Uint8Array): string {
  const raw = derToRaw(signDer("sha256", input, key));
  // OpenSSL's own output is strict DER; anything else is a broken runtime, not an input problem.
  if (raw === undefined) throw new Error("ES256: the signer returned a malformed DER signature");
  return raw.toString("base64url");
}

/**
 * Checks a JWS ES256 signature (base64url of r||s) over `input` with a P-256
 * public KeyObject. False for any malformed signature; never throws on it.
 */
export function verifyEs256(key: KeyObject, input: Uint8Array, signature: string): boolean {
  if (typeof signature !== "string" || signature.length !== ES256_SIGNATURE_CHARS) return false;
  // Buffer's decoder skips characters outside the alphabet; only canonical base64url gets this far.
  if (!B64URL.test(signature) || !CANONICAL_LAST_CHAR.test(signature)) return false;
  const der = rawToDer(Buffer.from(signature, "base64url"));
  if (der === undefined) return false;
  try {
    return verifyDer("sha256", input, key, der);
  } catch {
    // A key of the wrong type is the caller's bug, but a verifier answers no rather than throw.
    return false;
  }
}
