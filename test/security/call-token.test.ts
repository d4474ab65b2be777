import { webcrypto } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { CompactSign, generateKeyPair, type JWK } from "jose";
import { AuthError } from "../../src/runtime/auth/errors.ts";
import { createCallTokenMinter, createCallTokenVerifier } from "../../src/runtime/auth/call-token.ts";
import { contextTokenHash } from "../../src/runtime/auth/context-token.ts";
import { generateSigningKey, publicJwk, type SigningJwk } from "../../src/runtime/auth/keys.ts";
import { createReplayCache } from "../../src/runtime/auth/replay-cache.ts";

const A = "spiffe://tickettoken.internal/ns/dev/sa/api-gateway";
const B = "spiffe://tickettoken.internal/ns/dev/sa/event-service";
const SELF = "spiffe://tickettoken.internal/ns/dev/sa/ticket-service";
const OTHER = "spiffe://tickettoken.internal/ns/dev/sa/payment-service";
const METHOD = "/tickettoken.ticket.v1.TicketService/GetTicket";
const NOW_MS = 1_800_000_000_000;
const NOW = NOW_MS / 1000;
const clock = () => NOW_MS;

const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
const jti = () => webcrypto.getRandomValues(Buffer.alloc(16)).toString("base64url");

let keyA: SigningJwk;
let keyA2: SigningJwk;
let keyB: SigningJwk;
let stranger: SigningJwk;
const published = new Map<string, JWK[]>();

beforeAll(async () => {
  [keyA, keyA2, keyB, stranger] = await Promise.all([
    generateSigningKey(),
    generateSigningKey(),
    generateSigningKey(),
    generateSigningKey(),
  ]);
  published.set(A, [publicJwk(keyA)]);
  published.set(B, [publicJwk(keyB)]);
});

function verifier(opts: { maxPerGeneration?: number } = {}) {
  return createCallTokenVerifier({
    self: SELF,
    keysFor: (peer) => published.get(peer),
    replayCache: createReplayCache({ now: clock, ...opts }),
    now: clock,
  });
}

function claims(over: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = { iss: A, sub: A, aud: SELF, mth: METHOD, iat: NOW, exp: NOW + 60, jti: jti() };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base;
}

/** Signs any header/payload with ES256 directly, so tests can build headers jose refuses to emit. */
async function forge(payload: Record<string, unknown>, header: Record<string, unknown> = {}, key: SigningJwk = keyA) {
  const h = b64({ alg: "ES256", typ: "svc-call+jwt", kid: key.kid, ...header });
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

async function rejection(p: Promise<unknown>): Promise<AuthError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected a rejection").toBeInstanceOf(AuthError);
  const auth = err as AuthError;
  expect(auth.kind).toBe("unauthenticated");
  expect(auth.message).toBe("unauthenticated"); // generic: details stay in reason
  return auth;
}

interface Case {
  name: string;
  /** Authorization values to present (built lazily: keys exist only after beforeAll). */
  values: () => Promise<string[] | undefined>;
  peer?: string;
  method?: string;
  contextToken?: string;
  reason: string;
}

const bearer = async (t: Promise<string> | string) => [`Bearer ${await t}`];

const cases: Case[] = [
  { name: "no value", values: async () => undefined, reason: "no authorization value" },
  { name: "empty value list", values: async () => [], reason: "no authorization value" },
  {
    name: "two values",
    values: async () => [...(await bearer(forge(claims()))), ...(await bearer(forge(claims())))],
    reason: "exactly one authorization value, got 2",
  },
  { name: "not Bearer", values: async () => [`Basic ${b64("a:b")}`], reason: "not a Bearer token" },
  { name: "lowercase bearer", values: async () => [`bearer ${await forge(claims())}`], reason: "not a Bearer token" },
  { name: "oversized", values: async () => bearer(`${"a".repeat(4000)}.${"b".repeat(100)}.c`), reason: "over the 4096 byte limit" },
  { name: "two parts", values: async () => bearer(`${b64({ alg: "ES256" })}.${b64(claims())}`), reason: "3 parts" },
  { name: "four parts", values: async () => bearer(`${await forge(claims())}.x`), reason: "3 parts" },
  { name: "header not JSON", values: async () => bearer(`${b64("nope")}.${b64(claims())}.sig`), reason: "protected header" },
  {
    name: "alg none (hand-built)",
    values: async () => bearer(`${b64({ alg: "none", typ: "svc-call+jwt", kid: keyA.kid })}.${b64(claims())}.`),
    reason: 'alg "none" not allowed',
  },
  {
    name: "HS256 signed with the public key bytes",
    values: async () => {
      const secret = new TextEncoder().encode(JSON.stringify(publicJwk(keyA)));
      const t = await new CompactSign(new TextEncoder().encode(JSON.stringify(claims())))
        .setProtectedHeader({ alg: "HS256", typ: "svc-call+jwt", kid: keyA.kid })
        .sign(secret);
      return bearer(t);
    },
    reason: 'alg "HS256" not allowed',
  },
  {
    name: "RS256",
    values: async () => {
      const { privateKey } = await generateKeyPair("RS256");
      return bearer(
        new CompactSign(new TextEncoder().encode(JSON.stringify(claims())))
          .setProtectedHeader({ alg: "RS256", typ: "svc-call+jwt", kid: keyA.kid })
          .sign(privateKey),
      );
    },
    reason: 'alg "RS256" not allowed',
  },
  {
    name: "EdDSA",
    values: async () => {
      const { privateKey } = await generateKeyPair("EdDSA");
      return bearer(
        new CompactSign(new TextEncoder().encode(JSON.stringify(claims())))
          .setProtectedHeader({ alg: "EdDSA", typ: "svc-call+jwt", kid: keyA.kid })
          .sign(privateKey),
      );
    },
    reason: 'alg "EdDSA" not allowed',
  },
  {
    name: "ES384 (wrong curve family)",
    values: async () => {
      const { privateKey } = await generateKeyPair("ES384");
      return bearer(
        new CompactSign(new TextEncoder().encode(JSON.stringify(claims())))
          .setProtectedHeader({ alg: "ES384", typ: "svc-call+jwt", kid: keyA.kid })
          .sign(privateKey),
      );
    },
    reason: 'alg "ES384" not allowed',
  },
  { name: "missing kid", values: async () => bearer(forge(claims(), { kid: undefined })), reason: "kid missing" },
  { name: "empty kid", values: async () => bearer(forge(claims(), { kid: "" })), reason: "kid missing" },
  {
    name: "unknown kid",
    values: async () => bearer(forge(claims(), {}, stranger)),
    reason: "is not published for peer " + A,
  },
  {
    name: "another identity's kid (signed by B, presented as from A)",
    values: async () => bearer(forge(claims(), {}, keyB)),
    peer: A,
    reason: `kid "${"KID_B"}" is not published for peer ${A}`,
  },
  {
    name: "A's kid on a token signed by B",
    values: async () => bearer(forge(claims(), { kid: keyA.kid }, keyB)),
    reason: "signature verification failed",
  },
  { name: "typ JWT", values: async () => bearer(forge(claims(), { typ: "JWT" })), reason: 'typ "JWT" is not svc-call+jwt' },
  { name: "typ missing", values: async () => bearer(forge(claims(), { typ: undefined })), reason: "typ undefined" },
  {
    name: "context token presented as call token",
    values: async () => bearer(forge(claims(), { typ: "txn+jwt" })),
    reason: 'typ "txn+jwt"',
  },
  { name: "crit header", values: async () => bearer(forge(claims(), { crit: ["exp"] })), reason: "header crit not allowed" },
  { name: "embedded jwk header", values: async () => bearer(forge(claims(), { jwk: publicJwk(keyA) })), reason: "header jwk not allowed" },
  { name: "jku header", values: async () => bearer(forge(claims(), { jku: "https://evil.example/jwks" })), reason: "header jku not allowed" },
  { name: "x5u header", values: async () => bearer(forge(claims(), { x5u: "https://evil.example/c.pem" })), reason: "header x5u not allowed" },
  { name: "x5c header", values: async () => bearer(forge(claims(), { x5c: ["MIIB"] })), reason: "header x5c not allowed" },
  { name: "unknown header", values: async () => bearer(forge(claims(), { cty: "JWT" })), reason: 'unexpected header parameter "cty"' },
  {
    name: "truncated signature",
    values: async () => bearer((await forge(claims())).slice(0, -2)),
    reason: "not a 64-byte ES256 signature",
  },
  {
    name: "tampered payload",
    values: async () => {
      const [h, , s] = (await forge(claims())).split(".");
      return bearer(`${h}.${b64(claims({ mth: "/tickettoken.payment.v1.PaymentService/Refund" }))}.${s}`);
    },
    reason: "signature verification failed",
  },
  {
    name: "flipped signature bit",
    values: async () => {
      const t = await forge(claims());
      const sig = Buffer.from(t.slice(t.lastIndexOf(".") + 1), "base64url");
      sig[10]! ^= 1;
      return bearer(`${t.slice(0, t.lastIndexOf(".") + 1)}${sig.toString("base64url")}`);
    },
    reason: "signature verification failed",
  },
  { name: "payload is an array", values: async () => bearer(forge([1] as never)), reason: "payload is not a JSON object" },
  { name: "aud of another service", values: async () => bearer(forge(claims({ aud: OTHER }))), reason: `aud mismatch: got "${OTHER}"` },
  { name: "aud array", values: async () => bearer(forge(claims({ aud: [SELF] }))), reason: "aud is an array" },
  { name: "aud missing", values: async () => bearer(forge(claims({ aud: undefined }))), reason: "aud missing" },
  { name: "missing exp", values: async () => bearer(forge(claims({ exp: undefined }))), reason: "exp missing" },
  { name: "missing iat", values: async () => bearer(forge(claims({ iat: undefined }))), reason: "iat missing" },
  { name: "missing jti", values: async () => bearer(forge(claims({ jti: undefined }))), reason: "jti missing" },
  { name: "short jti", values: async () => bearer(forge(claims({ jti: "abc" }))), reason: "is not 128 bits" },
  { name: "numeric jti", values: async () => bearer(forge(claims({ jti: 12345 }))), reason: "is not 128 bits" },
  { name: "fractional iat", values: async () => bearer(forge(claims({ iat: NOW + 0.5 }))), reason: "iat 1800000000.5 is not an integer" },
  { name: "string exp", values: async () => bearer(forge(claims({ exp: String(NOW + 60) }))), reason: "is not an integer" },
  { name: "expired", values: async () => bearer(forge(claims({ iat: NOW - 70, exp: NOW - 10 }))), reason: "expired" },
  { name: "iat in the future", values: async () => bearer(forge(claims({ iat: NOW + 30, exp: NOW + 90 }))), reason: "in the future" },
  { name: "lifetime > 60 s", values: async () => bearer(forge(claims({ exp: NOW + 61 }))), reason: "lifetime 61 s exceeds 60 s" },
  { name: "exp before iat", values: async () => bearer(forge(claims({ exp: NOW - 1 }))), reason: "not after iat" },
  { name: "nbf in the future", values: async () => bearer(forge(claims({ nbf: NOW + 30 }))), reason: "nbf" },
  {
    name: "mth of another method",
    values: async () => bearer(forge(claims({ mth: "/tickettoken.ticket.v1.TicketService/TransferTicket" }))),
    reason: 'mth mismatch: got "/tickettoken.ticket.v1.TicketService/TransferTicket"',
  },
  {
    name: "minted by A, sent over B's connection",
    values: async () =>
      bearer(createCallTokenMinter({ identity: A, key: keyA, now: clock }).mint({ audience: SELF, method: METHOD })),
    peer: B,
    reason: `is not published for peer ${B}`,
  },
  {
    name: "signed by B claiming to be A, over B's connection",
    values: async () => bearer(forge(claims(), {}, keyB)),
    peer: B,
    reason: `iss "${A}" is not the mTLS peer ${B}`,
  },
  {
    name: "sub differs from iss",
    values: async () => bearer(forge(claims({ sub: OTHER }))),
    reason: `sub "${OTHER}" is not the mTLS peer`,
  },
  {
    name: "ctx mismatch",
    values: async () => bearer(forge(claims({ ctx: contextTokenHash("context-token-1") }))),
    contextToken: "context-token-2",
    reason: "ctx does not match",
  },
  {
    name: "ctx without context token",
    values: async () => bearer(forge(claims({ ctx: contextTokenHash("context-token-1") }))),
    reason: "carries ctx but no context token",
  },
  {
    name: "context token without ctx",
    values: async () => bearer(forge(claims())),
    contextToken: "context-token-1",
    reason: "has no ctx but a context token was forwarded",
  },
];

describe("call token verifier rejects", () => {
  it.each(cases)("$name", async (c) => {
    const err = await rejection(verifier().verify(await c.values(), { peer: c.peer ?? A, method: c.method ?? METHOD, contextToken: c.contextToken }));
    expect(err.reason).toContain(c.reason.replace("KID_B", keyB.kid));
  });

  it("a replayed jti", async () => {
    const v = verifier();
    const values = await bearer(createCallTokenMinter({ identity: A, key: keyA, now: clock }).mint({ audience: SELF, method: METHOD }));
    await v.verify(values, { peer: A, method: METHOD });
    const err = await rejection(v.verify(values, { peer: A, method: METHOD }));
    expect(err.reason).toContain("replayed");
  });

  it("a replay with a re-encoded (malleated) signature: replay is keyed by jti, not token bytes", async () => {
    const v = verifier();
    const t = await createCallTokenMinter({ identity: A, key: keyA, now: clock }).mint({ audience: SELF, method: METHOD });
    await v.verify([`Bearer ${t}`], { peer: A, method: METHOD });
    // ECDSA (r, s) and (r, n - s) are both valid signatures of the same message.
    const n = BigInt("0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    const raw = Buffer.from(t.split(".")[2]!, "base64url");
    const s = BigInt(`0x${raw.subarray(32).toString("hex")}`);
    const flipped = Buffer.concat([raw.subarray(0, 32), Buffer.from((n - s).toString(16).padStart(64, "0"), "hex")]);
    const malleated = `${t.slice(0, t.lastIndexOf("."))}.${flipped.toString("base64url")}`;
    const err = await rejection(v.verify([`Bearer ${malleated}`], { peer: A, method: METHOD }));
    expect(err.reason).toContain("replayed");
  });

  it("a token older than the freshness window, though not expired", async () => {
    const err = await rejection(verifier().verify(await bearer(forge(claims({ iat: NOW - 20, exp: NOW + 40 }))), { peer: A, method: METHOD }));
    expect(err.reason).toContain("older than the 15 s freshness window");
  });

  it("a replay presented at the last acceptable moment, and the same token once stale", async () => {
    let ms = NOW_MS;
    const v = createCallTokenVerifier({ self: SELF, keysFor: (peer) => published.get(peer), replayCache: createReplayCache({ now: () => ms }), now: () => ms });
    const values = await bearer(forge(claims()));
    await v.verify(values, { peer: A, method: METHOD });
    ms = NOW_MS + 19_999; // iat + window + skew - 1 ms: still fresh, so the cache must still hold the jti
    expect((await rejection(v.verify(values, { peer: A, method: METHOD }))).reason).toContain("replayed");
    ms = NOW_MS + 20_000;
    expect((await rejection(v.verify(values, { peer: A, method: METHOD }))).reason).toContain("freshness window");
  });
  it("a published key whose kid is not its thumbprint", async () => {
    const bogus = { ...publicJwk(stranger), kid: "not-a-thumbprint" };
    const v = createCallTokenVerifier({
      self: SELF,
      keysFor: () => [bogus],
      replayCache: createReplayCache({ now: clock }),
      now: clock,
    });
    const err = await rejection(v.verify(await bearer(forge(claims(), { kid: "not-a-thumbprint" }, stranger)), { peer: A, method: METHOD }));
    expect(err.reason).toContain("not the key's RFC 7638 thumbprint");
  });

  it("never puts the token in the reason", async () => {
    const token = await forge(claims({ aud: OTHER }));
    const err = await rejection(verifier().verify([`Bearer ${token}`], { peer: A, method: METHOD }));
    expect(err.reason).not.toContain(token.split(".")[2]);
    expect(err.reason).not.toContain(token.split(".")[1]);
  });
});

describe("call token replay quota", () => {
  it("a peer over its replay-cache quota is refused with resource_exhausted, alone", async () => {
    const v = verifier({ maxPerGeneration: 1 });
    const mA = createCallTokenMinter({ identity: A, key: keyA, now: clock });
    const mB = createCallTokenMinter({ identity: B, key: keyB, now: clock });
    await v.verify(await bearer(mA.mint({ audience: SELF, method: METHOD })), { peer: A, method: METHOD });
    const err = await v.verify(await bearer(mA.mint({ audience: SELF, method: METHOD })), { peer: A, method: METHOD }).then(
      () => undefined,
      (e: unknown) => e as AuthError,
    );
    expect(err).toBeInstanceOf(AuthError);
    expect(err!.kind).toBe("resource_exhausted");
    expect(err!.message).toBe("resource exhausted");
    expect(err!.reason).toContain(`quota of peer ${A}`);
    // Another peer is unaffected.
    await v.verify(await bearer(mB.mint({ audience: SELF, method: METHOD })), { peer: B, method: METHOD });
  });
});

describe("call token happy path", () => {
  it("mints the documented header and claims and verifies them", async () => {
    const m = createCallTokenMinter({ identity: A, key: keyA, now: clock });
    const token = await m.mint({ audience: SELF, method: METHOD });
    const [h, p] = token.split(".");
    expect(JSON.parse(Buffer.from(h!, "base64url").toString())).toEqual({ alg: "ES256", typ: "svc-call+jwt", kid: keyA.kid });
    const payload = JSON.parse(Buffer.from(p!, "base64url").toString());
    expect(payload).toMatchObject({ iss: A, sub: A, aud: SELF, mth: METHOD, iat: NOW, exp: NOW + 60 });
    expect(payload.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(payload).not.toHaveProperty("ctx");

    const got = await verifier().verify([`Bearer ${token}`], { peer: A, method: METHOD });
    expect(got).toEqual({ iss: A, sub: A, aud: SELF, mth: METHOD, iat: NOW, exp: NOW + 60, jti: payload.jti });
  });

  it("binds and checks the context token hash", async () => {
    const m = createCallTokenMinter({ identity: A, key: keyA, now: clock });
    const token = await m.mint({ audience: SELF, method: METHOD, contextToken: "ctx-token" });
    const got = await verifier().verify([`Bearer ${token}`], { peer: A, method: METHOD, contextToken: "ctx-token" });
    expect(got.ctx).toBe(contextTokenHash("ctx-token"));
    expect(got.ctx).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("computes the kid when the private JWK has none", async () => {
    const { kid: _kid, ...noKid } = keyA;
    const token = await createCallTokenMinter({ identity: A, key: noKid, now: clock }).mint({ audience: SELF, method: METHOD });
    await verifier().verify([`Bearer ${token}`], { peer: A, method: METHOD });
  });

  it("refuses a signing key whose kid is not its thumbprint", async () => {
    const m = createCallTokenMinter({ identity: A, key: { ...keyA, kid: "made-up" }, now: clock });
    await expect(m.mint({ audience: SELF, method: METHOD })).rejects.toThrow(/thumbprint/);
  });

  it("accepts tokens within the 5 s skew and the freshness window", async () => {
    await verifier().verify(await bearer(forge(claims({ iat: NOW + 5, exp: NOW + 65 }))), { peer: A, method: METHOD });
    // iat + 15 s window + 5 s skew is the last second a token is accepted.
    await verifier().verify(await bearer(forge(claims({ iat: NOW - 19, exp: NOW + 41 }))), { peer: A, method: METHOD });
    await verifier().verify(await bearer(forge(claims({ iat: NOW - 30, exp: NOW - 4 }))), { peer: A, method: METHOD }).then(
      () => expect.unreachable("a token older than the window must be refused"),
      (e: unknown) => expect((e as AuthError).reason).toContain("freshness window"),
    );
  });
});

describe("call token key rotation", () => {
  it("accepts the old kid while published and rejects it once removed", async () => {
    const bundle = new Map<string, JWK[]>([[A, [publicJwk(keyA2), publicJwk(keyA)]]]);
    const v = createCallTokenVerifier({
      self: SELF,
      keysFor: (peer) => bundle.get(peer),
      replayCache: createReplayCache({ now: clock }),
      now: clock,
    });
    const oldMinter = createCallTokenMinter({ identity: A, key: keyA, now: clock });
    const newMinter = createCallTokenMinter({ identity: A, key: keyA2, now: clock });

    await v.verify(await bearer(oldMinter.mint({ audience: SELF, method: METHOD })), { peer: A, method: METHOD });
    await v.verify(await bearer(newMinter.mint({ audience: SELF, method: METHOD })), { peer: A, method: METHOD });

    bundle.set(A, [publicJwk(keyA2)]); // overlap window over: old key unpublished
    const err = await rejection(v.verify(await bearer(oldMinter.mint({ audience: SELF, method: METHOD })), { peer: A, method: METHOD }));
    expect(err.reason).toContain(`kid "${keyA.kid}" is not published for peer ${A}`);
    await v.verify(await bearer(newMinter.mint({ audience: SELF, method: METHOD })), { peer: A, method: METHOD });
  });
});
