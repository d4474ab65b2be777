/**
 * Random bytes for per-call ids (call-token jti, trace and span ids), drawn
 * from a pooled buffer that crypto.randomFillSync refills 4 KiB at a time:
 * one OpenSSL draw per ~170 calls instead of two or three per call (Node's
 * randomUUID pools the same way). Same CSPRNG; bytes are handed out once.
 */
import { randomFillSync } from "node:crypto";

const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

/** `n` (<= 4096) fresh random bytes, valid until the next call (copy or encode them at once). */
function take(n: number): Buffer {
  if (offset + n > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = pool.subarray(offset, offset + n);
  offset += n;
  return out;
}

/** 128 random bits as 22 unpadded base64url characters (a call token's jti). */
export function randomId128(): string {
  return take(16).toString("base64url");
}

/** `bytes` random bytes as lowercase hex (W3C trace-id: 16, span-id: 8). */
export function randomHex(bytes: number): string {
  return take(bytes).toString("hex");
}
