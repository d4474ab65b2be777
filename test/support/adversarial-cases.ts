/**
 * The adversarial token / authorization cases, as one table that several
 * suites run: test/security/adversarial.test.ts (gRPC port) and
 * test/security/port-parity.test.ts (gRPC and Connect ports). Each case
 * builds an Attempt (whose certificate, which server, which authorization
 * values, context token, headers, request tenant) and says the exact status
 * the server must answer and the reason its log must name.
 *
 * The forging helpers need the suite's PKI and context tokens, which exist
 * only after its beforeAll: createAdversarialKit takes getters for them.
 */
import { createHmac, createPublicKey, randomBytes } from "node:crypto";
import { expect } from "vitest";
import { CompactSign, generateKeyPair, importJWK, type CryptoKey, type JWK } from "jose";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { EventServiceContract } from "../../src/contracts/gen/tickettoken/event/v1/event_service_rpc.ts";
import type { VerifiedCallContext } from "../../src/runtime/auth/call-context.ts";
import { createCallTokenMinter } from "../../src/runtime/auth/call-token.ts";
import { contextTokenHash, createContextTokenMinter } from "../../src/runtime/auth/context-token.ts";
import { generateSigningKey } from "../../src/runtime/auth/keys.ts";
import type { IdentityMaterial } from "../../src/runtime/identity/material.ts";
import { loadContextSigningKey } from "../../src/devtools/pki/dev-ca.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";
import type { WorkloadName } from "../../src/runtime/identity/workloads.ts";

export const TENANT = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
export const OTHER_TENANT = "0b6f3c1e-9f7e-4d1a-8c55-3e2d1f0a9b77";
export const USER = "5f0c2a8e-1d8b-4bde-9e5a-2b7b0c6b1a11";
export const OK = 0;
export const UNAUTHENTICATED = 16;
export const PERMISSION_DENIED = 7;
export const TICKET_PATH = TicketServiceContract.methods.getTicketStatus.path;
export const EVENT_PATH = EventServiceContract.methods.getEvent.path;
export const TICKET_ID = workloadSpiffeId("ticket-service");
export const EVENT_ID = workloadSpiffeId("event-service");
const id = (w: WorkloadName) => workloadSpiffeId(w);

export interface Outcome {
  readonly code: number;
  readonly details: string;
  readonly value?: unknown;
}

/** What a case may check about the call its handler saw. */
export interface HandledCall {
  readonly ctx: VerifiedCallContext;
  readonly tenantField: string;
}

export interface Attempt {
  /** Whose certificate the connection presents. */
  readonly caller: WorkloadName;
  readonly target: "ticket" | "event";
  /** authorization values, each added as a separate metadata entry (undefined: none). */
  readonly authorization?: readonly string[];
  readonly context?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly tenantId?: string;
}

export interface Case {
  readonly name: string;
  readonly build: () => Promise<Attempt>;
  readonly code: number;
  /** What the server log must say about this call (the reason the caller never sees). */
  readonly reason?: RegExp;
  /** Extra checks on a successful call. */
  readonly then?: (o: Outcome, seen: HandledCall | undefined) => void;
}

export interface CaseEnv {
  /** The current material of a workload the suite loaded. */
  readonly material: (w: WorkloadName) => IdentityMaterial;
  /** The suite PKI's directory (context-token signing key). */
  readonly pkiDir: () => string;
  /** Context tokens: tenant TENANT with events:read, TENANT with no scope, OTHER_TENANT with events:read. */
  readonly tokens: () => { readonly ctxToken: string; readonly ctxNoScope: string; readonly ctxOtherTenant: string };
  /** Records a token the suite put on the wire (no log may ever contain it). */
  readonly secret: <T extends string>(t: T) => T;
}

type Claims = Record<string, unknown>;

export function createAdversarialKit(env: CaseEnv) {
  const m = env.material;
  const tok = env.tokens;
  const secret = env.secret;

  // ---------------------------------------------------------------- token forging

  const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
  const nowSec = () => Math.floor(Date.now() / 1000);
  const jti = () => randomBytes(16).toString("base64url");

  async function privateKeyOf(jwk: JWK): Promise<CryptoKey> {
    return (await importJWK({ kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y!, d: jwk.d! }, "ES256")) as CryptoKey;
  }

  /** Claims a well-behaved `caller` would mint for GetTicketStatus on ticket-service with `ctx`. */
  function claimsFor(caller: WorkloadName, opts: { aud?: string; mth?: string; ctx?: string | undefined } = {}): Claims {
    const iat = nowSec();
    const claims: Claims = {
      iss: id(caller),
      sub: id(caller),
      aud: opts.aud ?? TICKET_ID,
      mth: opts.mth ?? TICKET_PATH,
      iat,
      exp: iat + 60,
      jti: jti(),
    };
    const ctx = "ctx" in opts ? opts.ctx : tok().ctxToken;
    if (ctx !== undefined) claims.ctx = contextTokenHash(ctx);
    return claims;
  }

  /**
   * An ES256 JWS over `claims` with `signer`'s key (default payment-service's
   * current key); `header` entries override (undefined removes) the default
   * {alg, typ, kid}; `omit` drops claims.
   */
  async function forge(
    o: { signer?: JWK; header?: Record<string, unknown>; claims?: Claims; omit?: string[]; typ?: string } = {},
  ): Promise<string> {
    const key = o.signer ?? m("payment-service").workload.jwt.current;
    const header: Record<string, unknown> = { alg: "ES256", typ: o.typ ?? "svc-call+jwt", kid: key.kid, ...o.header };
    for (const [k, v] of Object.entries(header)) if (v === undefined) delete header[k];
    const claims: Claims = { ...(o.claims ?? claimsFor("payment-service")) };
    for (const k of o.omit ?? []) delete claims[k];
    return new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
      .setProtectedHeader(header as { alg: string })
      .sign(await privateKeyOf(key));
  }

  /** A compact JWS whose signature is HMAC-SHA256 keyed with the public key's PEM (the classic alg confusion). */
  function hs256WithPublicKey(claims: Claims, jwk: JWK): string {
    const pem = createPublicKey({ key: { kty: "EC", crv: "P-256", x: jwk.x!, y: jwk.y! }, format: "jwk" })
      .export({ type: "spki", format: "pem" })
      .toString();
    const input = `${b64({ alg: "HS256", typ: "svc-call+jwt", kid: jwk.kid })}.${b64(claims)}`;
    return `${input}.${createHmac("sha256", pem).update(input).digest("base64url")}`;
  }

  async function foreignAlg(alg: "RS256" | "EdDSA", claims: Claims, kid: string): Promise<string> {
    const { privateKey } = await generateKeyPair(alg);
    return new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
      .setProtectedHeader({ alg, typ: "svc-call+jwt", kid })
      .sign(privateKey);
  }

  /** The real client-side minter of `caller` (what the framework client sends). */
  function realToken(caller: WorkloadName, audience: string, method: string, contextToken?: string): Promise<string> {
    const w = m(caller).workload;
    return createCallTokenMinter({ identity: w.spiffeId, key: w.jwt.current }).mint({ audience, method, contextToken });
  }

  // ---------------------------------------------------------------- the token / authorization table





  const bearer = (t: string) => `Bearer ${secret(t)}`;

  /** A ticket-service GetTicketStatus call from payment-service carrying `token` and the standard context. */
  const ticket = async (token: string | Promise<string>, more: Partial<Attempt> = {}): Promise<Attempt> => ({
    caller: "payment-service",
    target: "ticket",
    authorization: [bearer(await token)],
    context: tok().ctxToken,
    ...more,
  });


  const tokenCases: Case[] = [
    // -- control: a well-formed forged token is accepted, so every rejection below is about its one defect
    {
      name: "control: hand-built token with every rule satisfied is accepted",
      build: () => ticket(forge()),
      code: OK,
      then: (_o, seen) => expect(seen?.ctx.caller.workload).toBe("payment-service"),
    },
    // -- the authorization header
    { name: "no token", build: async () => ({ ...(await ticket(forge())), authorization: [] }), code: UNAUTHENTICATED, reason: /no authorization value/ },
    {
      name: "two authorization values in one field (\"Bearer a, Bearer b\")",
      build: async () => ({ ...(await ticket(forge())), authorization: [`${bearer(await forge())}, ${bearer(await forge())}`] }),
      code: UNAUTHENTICATED,
      reason: /expected exactly one authorization value, got 2/,
    },
    {
      name: "not a Bearer token (Basic scheme)",
      build: async () => ({ ...(await ticket(forge())), authorization: [`Basic ${secret(await forge())}`] }),
      code: UNAUTHENTICATED,
      reason: /not a Bearer token/,
    },
    {
      name: "oversized token (validly signed, > 4 KiB)",
      build: () => ticket(forge({ claims: { ...claimsFor("payment-service"), pad: "x".repeat(3500) } })),
      code: UNAUTHENTICATED,
      reason: /over the 4096 byte limit/,
    },
    // -- algorithms
    {
      name: "alg none (unsigned)",
      build: async () => {
        const kid = m("payment-service").workload.jwt.current.kid;
        return ticket(`${b64({ alg: "none", typ: "svc-call+jwt", kid })}.${b64(claimsFor("payment-service"))}.`);
      },
      code: UNAUTHENTICATED,
      reason: /alg "none" not allowed/,
    },
    {
      name: "HS256 keyed with the caller's public key",
      build: async () => ticket(hs256WithPublicKey(claimsFor("payment-service"), m("payment-service").workload.jwt.current)),
      code: UNAUTHENTICATED,
      reason: /alg "HS256" not allowed/,
    },
    {
      name: "RS256 with a fresh RSA key and the caller's kid",
      build: () => ticket(foreignAlg("RS256", claimsFor("payment-service"), m("payment-service").workload.jwt.current.kid)),
      code: UNAUTHENTICATED,
      reason: /alg "RS256" not allowed/,
    },
    {
      name: "EdDSA with a fresh Ed25519 key and the caller's kid",
      build: () => ticket(foreignAlg("EdDSA", claimsFor("payment-service"), m("payment-service").workload.jwt.current.kid)),
      code: UNAUTHENTICATED,
      reason: /alg "EdDSA" not allowed/,
    },
    // -- header parameters
    { name: "kid missing", build: () => ticket(forge({ header: { kid: undefined } })), code: UNAUTHENTICATED, reason: /kid missing/ },
    {
      name: "unknown kid (fresh P-256 key, its own thumbprint)",
      build: async () => ticket(forge({ signer: await generateSigningKey() })),
      code: UNAUTHENTICATED,
      reason: /kid "[^"]+" is not published for peer spiffe:\/\/tickettoken.internal\/ns\/dev\/sa\/payment-service/,
    },
    {
      name: "another service's kid (order-service's published key, over payment-service's connection)",
      build: () => ticket(forge({ signer: m("order-service").workload.jwt.current })),
      code: UNAUTHENTICATED,
      reason: /is not published for peer .*payment-service/,
    },
    {
      name: "caller's kid but signed with another service's key",
      build: () => ticket(forge({ signer: m("order-service").workload.jwt.current, header: { kid: m("payment-service").workload.jwt.current.kid } })),
      code: UNAUTHENTICATED,
      reason: /signature verification failed/,
    },
    { name: "wrong typ (JWT)", build: () => ticket(forge({ typ: "JWT" })), code: UNAUTHENTICATED, reason: /typ "JWT" is not svc-call\+jwt/ },
    { name: "typ missing", build: () => ticket(forge({ header: { typ: undefined } })), code: UNAUTHENTICATED, reason: /typ undefined is not svc-call\+jwt/ },
    {
      name: "embedded jwk header (key injection)",
      build: () => ticket(forge({ header: { jwk: { kty: "EC", crv: "P-256", x: "AA", y: "AA" } } })),
      code: UNAUTHENTICATED,
      reason: /header jwk not allowed/,
    },
    // -- audience, method, identity binding
    {
      name: "aud of another service (event-service)",
      build: () => ticket(forge({ claims: claimsFor("payment-service", { aud: EVENT_ID }) })),
      code: UNAUTHENTICATED,
      reason: /aud mismatch/,
    },
    {
      name: "aud array containing this service",
      build: () => ticket(forge({ claims: { ...claimsFor("payment-service"), aud: [TICKET_ID] } })),
      code: UNAUTHENTICATED,
      reason: /aud is an array/,
    },
    {
      name: "mth of another method (CancelTicketsBatch)",
      build: () => ticket(forge({ claims: claimsFor("payment-service", { mth: TicketServiceContract.methods.cancelTicketsBatch.path }) })),
      code: UNAUTHENTICATED,
      reason: /mth mismatch/,
    },
    {
      name: "token minted by payment-service sent over ops's connection (ops may call the method)",
      build: async () => ticket(realToken("payment-service", TICKET_ID, TICKET_PATH, tok().ctxToken), { caller: "ops" }),
      code: UNAUTHENTICATED,
      reason: /is not published for peer .*\/sa\/ops/,
    },
    {
      name: "iss/sub of another service, signed with the caller's own key",
      build: () => ticket(forge({ claims: { ...claimsFor("payment-service"), iss: id("order-service"), sub: id("order-service") } })),
      code: UNAUTHENTICATED,
      reason: /iss "spiffe:\/\/tickettoken.internal\/ns\/dev\/sa\/order-service" is not the mTLS peer/,
    },
    // -- required claims and time
    { name: "exp missing", build: () => ticket(forge({ omit: ["exp"] })), code: UNAUTHENTICATED, reason: /exp missing/ },
    { name: "iat missing", build: () => ticket(forge({ omit: ["iat"] })), code: UNAUTHENTICATED, reason: /iat missing/ },
    { name: "jti missing", build: () => ticket(forge({ omit: ["jti"] })), code: UNAUTHENTICATED, reason: /jti missing/ },
    {
      name: "jti shorter than 128 bits",
      build: () => ticket(forge({ claims: { ...claimsFor("payment-service"), jti: "abc" } })),
      code: UNAUTHENTICATED,
      reason: /jti "abc" is not 128 bits/,
    },
    {
      name: "expired (exp 60 s ago)",
      build: () => ticket(forge({ claims: { ...claimsFor("payment-service"), iat: nowSec() - 120, exp: nowSec() - 60 } })),
      code: UNAUTHENTICATED,
      reason: /token expired/,
    },
    {
      name: "iat in the future (+60 s)",
      build: () => ticket(forge({ claims: { ...claimsFor("payment-service"), iat: nowSec() + 60, exp: nowSec() + 110 } })),
      code: UNAUTHENTICATED,
      reason: /iat \d+ is in the future/,
    },
    {
      name: "lifetime 61 s (> 60 s)",
      build: () => ticket(forge({ claims: { ...claimsFor("payment-service"), iat: nowSec(), exp: nowSec() + 61 } })),
      code: UNAUTHENTICATED,
      reason: /lifetime 61 s exceeds 60 s/,
    },
    {
      name: "lifetime 1 h",
      build: () => ticket(forge({ claims: { ...claimsFor("payment-service"), iat: nowSec(), exp: nowSec() + 3600 } })),
      code: UNAUTHENTICATED,
      reason: /lifetime 3600 s exceeds 60 s/,
    },
    // -- integrity and binding to the context token
    {
      name: "tampered payload (ctx swapped to another tenant's context token, signature kept)",
      build: async () => {
        const [h, p, s] = (await forge()).split(".") as [string, string, string];
        const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as Claims;
        claims.ctx = contextTokenHash(tok().ctxOtherTenant);
        return ticket(`${h}.${b64(claims)}.${s}`, { context: tok().ctxOtherTenant, tenantId: OTHER_TENANT });
      },
      code: UNAUTHENTICATED,
      reason: /signature verification failed/,
    },
    {
      name: "context token swapped under a valid call token (ctx hash mismatch)",
      build: () => ticket(forge(), { context: tok().ctxOtherTenant, tenantId: OTHER_TENANT }),
      code: UNAUTHENTICATED,
      reason: /ctx does not match the forwarded context token/,
    },
    {
      name: "context token added to a call token minted without one",
      build: () => ticket(forge({ claims: claimsFor("payment-service", { ctx: undefined }) })),
      code: UNAUTHENTICATED,
      reason: /has no ctx but a context token was forwarded/,
    },
    {
      name: "context token stripped from a call token bound to one",
      build: () => ticket(forge(), { context: undefined }),
      code: UNAUTHENTICATED,
      reason: /carries ctx but no context token was forwarded/,
    },
    // -- authorization from the contract and tenancy
    {
      name: "caller not allowed by the contract (order-service -> GetTicketStatus)",
      build: async () => ticket(realToken("order-service", TICKET_ID, TICKET_PATH, tok().ctxToken), { caller: "order-service" }),
      code: PERMISSION_DENIED,
      reason: /order-service is not an allowed caller of \/tickettoken.ticket.v1.TicketService\/GetTicketStatus/,
    },
    {
      name: "scope missing (GetEvent needs events:read; context token has none)",
      build: async () => ({
        caller: "order-service",
        target: "event",
        authorization: [bearer(await realToken("order-service", EVENT_ID, EVENT_PATH, tok().ctxNoScope))],
        context: tok().ctxNoScope,
      }),
      code: PERMISSION_DENIED,
      reason: /context token lacks scope events:read/,
    },
    {
      name: "scope missing (GetEvent without any context token)",
      build: async () => ({ caller: "order-service", target: "event", authorization: [bearer(await realToken("order-service", EVENT_ID, EVENT_PATH))] }),
      code: PERMISSION_DENIED,
      reason: /requires scope events:read but the call carries no context token/,
    },
    {
      name: "tenant-keyed method without a context token",
      build: () => ticket(forge({ claims: claimsFor("payment-service", { ctx: undefined }) }), { context: undefined }),
      code: PERMISSION_DENIED,
      reason: /is tenant-scoped but the call carries no context token/,
    },
    {
      name: "request tenant_id not matching the context token's tenant",
      build: () => ticket(forge(), { tenantId: OTHER_TENANT }),
      code: PERMISSION_DENIED,
      reason: /request tenantId "0b6f3c1e-9f7e-4d1a-8c55-3e2d1f0a9b77" does not match the context tenant/,
    },
    {
      name: "request tenant_id matching an x-tenant-id header but not the context token",
      build: () => ticket(forge(), { tenantId: OTHER_TENANT, headers: { "x-tenant-id": OTHER_TENANT } }),
      code: PERMISSION_DENIED,
      reason: /does not match the context tenant/,
    },
    {
      name: "x-tenant-id header contradicting the context token is ignored (handler sees the context tenant)",
      build: () => ticket(forge(), { headers: { "x-tenant-id": OTHER_TENANT, "x-user-id": "intruder" } }),
      code: OK,
      then: (_o, seen) => {
        expect(seen?.ctx.tenantId).toBe(TENANT);
        expect(seen?.ctx.userId).toBe(USER);
        expect(seen?.tenantField).toBe(TENANT);
      },
    },
    // -- the context token itself
    {
      name: "context token signed with a service key (payment-service's, its kid)",
      build: async () => {
        const w = m("payment-service").workload;
        const iat = nowSec();
        const bad = await forge({
          signer: w.jwt.current,
          typ: "txn+jwt",
          claims: { iss: id("api-gateway"), sub: USER, aud: "tickettoken.internal", tid: TENANT, scope: "events:read", txn: "t-1", iat, exp: iat + 300 },
        });
        return ticket(forge({ claims: claimsFor("payment-service", { ctx: bad }) }), { context: secret(bad) });
      },
      code: UNAUTHENTICATED,
      reason: /context token kid "[^"]+" is not published for the context-token issuers/,
    },
    {
      name: "context token with the context key's kid but a service key's signature",
      build: async () => {
        const ctxKid = (await loadContextSigningKey(env.pkiDir())).current.kid;
        const iat = nowSec();
        const bad = await forge({
          signer: m("payment-service").workload.jwt.current,
          typ: "txn+jwt",
          header: { kid: ctxKid },
          claims: { iss: id("api-gateway"), sub: USER, aud: "tickettoken.internal", tid: TENANT, scope: "events:read", txn: "t-2", iat, exp: iat + 300 },
        });
        return ticket(forge({ claims: claimsFor("payment-service", { ctx: bad }) }), { context: secret(bad) });
      },
      code: UNAUTHENTICATED,
      reason: /context token signature verification failed/,
    },
    {
      name: "context token expired (minted 10 min ago, 5 min life)",
      build: async () => {
        const key = (await loadContextSigningKey(env.pkiDir())).current;
        const old = createContextTokenMinter({ issuer: id("api-gateway"), key, now: () => Date.now() - 10 * 60_000 });
        const expired = secret(await old.mint({ tenantId: TENANT, userId: USER, scopes: ["events:read"] }));
        return ticket(forge({ claims: claimsFor("payment-service", { ctx: expired }) }), { context: expired });
      },
      code: UNAUTHENTICATED,
      reason: /context token token expired/,
    },
    {
      name: "two context tokens in one field",
      build: async () => {
        const two = `${tok().ctxToken}, ${tok().ctxOtherTenant}`;
        return ticket(forge({ claims: claimsFor("payment-service", { ctx: two }) }), { context: two });
      },
      code: UNAUTHENTICATED,
      reason: /expected at most one tt-context value/,
    },
  ];

  return { b64, nowSec, jti, claimsFor, forge, hs256WithPublicKey, foreignAlg, realToken, bearer, ticket, tokenCases };
}
