/**
 * Configuration (b): what a team would hand-roll on grpc-js with jose for
 * the same per-call token as SPEC section 4: ES256, kid, typ svc-call+jwt,
 * iss = sub = caller, aud = callee, mth, iat, exp = iat + 60 s, 128-bit jti;
 * the server checks the signature with the key of the mTLS peer, iss/sub ==
 * peer, aud, mth, lifetime and iat (5 s skew), and the jti in a Map.
 * Bench-only: the product's own path is src/runtime/auth.
 */
import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { importJWK, jwtVerify, SignJWT, type JWK } from "jose";
import { uriSan } from "./shared.ts";

const TYP = "svc-call+jwt";
const LIFETIME_S = 60;
const SKEW_S = 5;

export async function clientJwtInterceptor(identity: string, audience: string, jwk: JWK & { kid?: string }): Promise<grpc.Interceptor> {
  const key = await importJWK(jwk, "ES256");
  const kid = jwk.kid!;
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        const iat = Math.floor(Date.now() / 1000);
        new SignJWT({ mth: options.method_definition.path, jti: randomBytes(16).toString("base64url") })
          .setProtectedHeader({ alg: "ES256", kid, typ: TYP })
          .setIssuer(identity)
          .setSubject(identity)
          .setAudience(audience)
          .setIssuedAt(iat)
          .setExpirationTime(iat + LIFETIME_S)
          .sign(key)
          .then(
            (token) => {
              metadata.set("authorization", `Bearer ${token}`);
              next(metadata, listener);
            },
            (err: Error) => listener.onReceiveStatus?.({ code: grpc.status.INTERNAL, details: err.message, metadata: new grpc.Metadata() }),
          );
      },
    });
}

/** jti -> exp (epoch s); expired entries are swept every 1,024 inserts so the Map stays bounded by traffic x lifetime. */
function replayMap() {
  const seen = new Map<string, number>();
  let inserts = 0;
  return (jti: string, exp: number, now: number): boolean => {
    if (seen.has(jti)) return false;
    seen.set(jti, exp);
    if (++inserts % 1024 === 0) for (const [k, e] of seen) if (e < now) seen.delete(k);
    return true;
  };
}

export async function serverJwtInterceptor(self: string, keysByPeer: Map<string, JWK[]>): Promise<grpc.ServerInterceptor> {
  const keys = new Map<string, Awaited<ReturnType<typeof importJWK>>>();
  for (const [peer, jwks] of keysByPeer) keys.set(peer, await importJWK(jwks[0]!, "ES256"));
  const fresh = replayMap();
  const deny = (call: grpc.ServerInterceptingCallInterface, code: grpc.status) =>
    call.sendStatus({ code, details: code === grpc.status.UNAUTHENTICATED ? "unauthenticated" : "permission denied", metadata: new grpc.Metadata() });

  return (method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, mdNext) {
            const values = metadata.get("authorization");
            const peer = uriSan(call.getAuthContext().sslPeerCertificate?.subjectaltname);
            const key = peer === undefined ? undefined : keys.get(peer);
            const value = values.length === 1 ? values[0] : undefined;
            if (key === undefined || typeof value !== "string" || !value.startsWith("Bearer ") || value.length > 4096) {
              deny(call, grpc.status.UNAUTHENTICATED);
              return;
            }
            jwtVerify(value.slice(7), key, {
              algorithms: ["ES256"],
              typ: TYP,
              issuer: peer,
              subject: peer,
              audience: self,
              maxTokenAge: LIFETIME_S,
              clockTolerance: SKEW_S,
              requiredClaims: ["iat", "exp", "jti", "mth"],
            }).then(
              ({ payload }) => {
                const now = Math.floor(Date.now() / 1000);
                if (payload.mth !== method.path || payload.exp! - payload.iat! > LIFETIME_S || !fresh(payload.jti!, payload.exp!, now)) {
                  deny(call, grpc.status.UNAUTHENTICATED);
                  return;
                }
                mdNext(metadata);
              },
              () => deny(call, grpc.status.UNAUTHENTICATED),
            );
          },
        });
      },
    });
}
