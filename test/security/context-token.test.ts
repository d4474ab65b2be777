import { webcrypto } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { AuthError } from "../../src/runtime/auth/errors.ts";
import { createCallTokenMinter } from "../../src/runtime/auth/call-token.ts";
import {
  contextTokenHash,
  createContextTokenMinter,
  createContextTokenVerifier,
} from "../../src/runtime/auth/context-token.ts";
import { generateSigningKey, publicJwk, type SigningJwk } from "../../src/runtime/auth/keys.ts";

const ISSUER = "spiffe://tickettoken.internal/ns/dev/sa/api-gateway";
const NOW_MS = 1_800_000_000_000;
const NOW = NOW_MS / 1000;
const clock = () => NOW_MS;
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

let contextKey: SigningJwk;
let serviceKey: SigningJwk;

beforeAll(async () => {
  [contextKey, serviceKey] = await Promise.all([generateSigningKey(), generateSigningKey()]);
});

const verifier = (now = clock) => createContextTokenVerifier({ keys: [publicJwk(contextKey)], now });
const minter = (key: SigningJwk = contextKey) => createContextTokenMinter({ issuer: ISSUER, key, now: clock });

async function forge(payload: Record<string, unknown>, header: Record<string, unknown> = {}, key: SigningJwk = contextKey) {
  const h = b64({ alg: "ES256", typ: "txn+jwt", kid: key.kid, ...header });
  const p = b64(payload);
  const priv = await webcrypto.subtle.importKey(
    "jwk",
    { kty: "EC", crv: "P-256", x: key.x, y: key.y, d: key.d },
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    ["sign"],
  );
  const sig = await webcrypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, priv, Buffer.from(`${h}.${p}`));
  return `${h}.${p}.${Buffer.from(sig).toString("base64url")}`;
}

const goodClaims = (over: Record<string, unknown> = {}) => {
  const c: Record<string, unknown> = {
    iss: ISSUER,
    sub: "user-1",
    aud: "tickettoken.internal",
    tid: "tenant-1",
    scope: "tickets:read",
    txn: "7d3c1c1e-9b0e-4a57-9a7d-0f6e1d2a3b4c",
    iat: NOW,
    exp: NOW + 300,
  };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete c[k];
    else c[k] = v;
  }
  return c;
};

async function rejection(p: Promise<unknown>): Promise<AuthError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected a rejection").toBeInstanceOf(AuthError);
  expect((err as AuthError).kind).toBe("unauthenticated");
  return err as AuthError;
}

describe("context token", () => {
  it("round-trips: mint at the edge, verify on a hop", async () => {
    const token = await minter().mint({ tenantId: "tenant-1", userId: "user-1", scopes: ["tickets:read", "orders:write"] });
    const [h, p] = token.split(".");
    expect(JSON.parse(Buffer.from(h!, "base64url").toString())).toEqual({ alg: "ES256", typ: "txn+jwt", kid: contextKey.kid });
    const claims = JSON.parse(Buffer.from(p!, "base64url").toString());
    expect(claims).toMatchObject({ iss: ISSUER, sub: "user-1", tid: "tenant-1", aud: "tickettoken.internal", iat: NOW, exp: NOW + 300 });
    expect(claims.txn).toMatch(/^[0-9a-f-]{36}$/);

    const ctx = await verifier().verify(token);
    expect(ctx).toEqual({
      tenantId: "tenant-1",
      userId: "user-1",
      scopes: ["tickets:read", "orders:write"],
      txn: claims.txn,
      issuer: ISSUER,
      expiresAt: NOW + 300,
    });
    expect(contextTokenHash(token)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("keeps a given txn and accepts no scopes", async () => {
    const token = await minter().mint({ tenantId: "t", userId: "u", scopes: [], txn: "txn-42", ttlSeconds: 30 });
    expect(await verifier().verify(token)).toMatchObject({ txn: "txn-42", scopes: [], expiresAt: NOW + 30 });
  });

  it("refuses to mint a lifetime over 300 s or a scope with a space", async () => {
    await expect(minter().mint({ tenantId: "t", userId: "u", scopes: [], ttlSeconds: 301 })).rejects.toThrow(RangeError);
    await expect(minter().mint({ tenantId: "t", userId: "u", scopes: ["a b"] })).rejects.toThrow(TypeError);
  });

  const cases: Array<{ name: string; token: () => Promise<string>; reason: string; now?: () => number }> = [
    {
      name: "bad signature (tampered tenant)",
      token: async () => {
        const [h, , s] = (await forge(goodClaims())).split(".");
        return `${h}.${b64(goodClaims({ tid: "tenant-2" }))}.${s}`;
      },
      reason: "signature verification failed",
    },
    {
      name: "expired",
      token: () => minter().mint({ tenantId: "t", userId: "u", scopes: [], ttlSeconds: 60 }),
      now: () => NOW_MS + 66_000,
      reason: "expired",
    },
    {
      name: "signed by a service call key (its own kid)",
      token: async () => forge(goodClaims(), {}, serviceKey),
      reason: "is not published for the context-token issuers",
    },
    {
      name: "signed by a service call key, claiming the context key's kid",
      token: async () => forge(goodClaims(), { kid: contextKey.kid }, serviceKey),
      reason: "signature verification failed",
    },
    {
      name: "minted with the service key through the context minter",
      token: () => minter(serviceKey).mint({ tenantId: "t", userId: "u", scopes: [] }),
      reason: "is not published for the context-token issuers",
    },
    {
      name: "a call token presented as a context token",
      token: () => createCallTokenMinter({ identity: ISSUER, key: contextKey, now: clock }).mint({ audience: "x", method: "/a.B/C" }),
      reason: 'typ "svc-call+jwt" is not txn+jwt',
    },
    { name: "lifetime too long", token: () => forge(goodClaims({ exp: NOW + 301 })), reason: "lifetime 301 s exceeds 300 s" },
    { name: "wrong alg", token: async () => `${b64({ alg: "none", typ: "txn+jwt", kid: contextKey.kid })}.${b64(goodClaims())}.`, reason: 'alg "none"' },
    { name: "aud mismatch", token: () => forge(goodClaims({ aud: "elsewhere" })), reason: 'aud "elsewhere"' },
    { name: "aud array", token: () => forge(goodClaims({ aud: ["tickettoken.internal"] })), reason: "aud [" },
    { name: "missing tid", token: () => forge(goodClaims({ tid: undefined })), reason: "tid (tenant id) missing" },
    { name: "missing sub", token: () => forge(goodClaims({ sub: undefined })), reason: "sub (user id) missing" },
    { name: "missing txn", token: () => forge(goodClaims({ txn: undefined })), reason: "txn missing" },
    { name: "jwk header", token: () => forge(goodClaims(), { jwk: publicJwk(contextKey) }), reason: "header jwk not allowed" },
    {
      name: "over 4 KiB",
      token: () => forge(goodClaims({ scope: "s".repeat(4000) })),
      reason: "over the 4096 byte limit",
    },
  ];

  it.each(cases)("rejects: $name", async (c) => {
    const err = await rejection(verifier(c.now).verify(await c.token()));
    expect(err.reason).toContain(c.reason);
  });

  it("follows a reloaded key list (rotation)", async () => {
    const next = await generateSigningKey();
    let keys = [publicJwk(contextKey)];
    const v = createContextTokenVerifier({ keys: () => keys, now: clock });
    const nextToken = await minter(next).mint({ tenantId: "t", userId: "u", scopes: [] });
    expect((await rejection(v.verify(nextToken))).reason).toContain("not published");
    keys = [publicJwk(next), publicJwk(contextKey)];
    await v.verify(nextToken);
    await v.verify(await minter().mint({ tenantId: "t", userId: "u", scopes: [] }));
  });

  it("names the key that verified a token (what the context cache checks is still published)", async () => {
    const next = await generateSigningKey();
    const v = createContextTokenVerifier({ keys: [publicJwk(next), publicJwk(contextKey)], now: clock });
    const fromOld = await v.verifyWithKid(await minter().mint({ tenantId: "t", userId: "u", scopes: [] }));
    const fromNew = await v.verifyWithKid(await minter(next).mint({ tenantId: "t", userId: "u", scopes: [] }));
    expect(fromOld.kid).toBe(contextKey.kid);
    expect(fromNew.kid).toBe(next.kid);
    expect(fromNew.context).toMatchObject({ tenantId: "t", userId: "u", scopes: [] });
  });
});
