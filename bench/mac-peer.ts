/**
 * Configuration (e), a PROTOTYPE measured in the bench only (issue #12 item
 * 3), never the product: (a) bare grpc-js plus a per-call token bound to the
 * TLS channel and checked with an HMAC instead of an ECDSA signature; the same
 * shape as (b), so (e) against (b) is the price of the token design alone.
 *
 * Design: both ends of an mTLS connection derive one 256-bit key from the TLS
 * 1.3 exporter (RFC 8446 section 7.5, RFC 5705): exportKeyingMaterial(32,
 * "EXPORTER-tt-rpc-call-token-v0"). Only the two endpoints of that connection
 * know it, and each has proven its identity in the handshake (client
 * certificate required), so a MAC under it says "the mTLS peer of this
 * connection made this token" the way an ES256 signature under the peer's
 * published key does; iss/sub/aud are implicit (the connection's two
 * identities). The token is base64url(JSON claims) "." base64url(HMAC-SHA256):
 * `mth`, `iat`, `exp` (iat + 60 s), 128-bit `jti`, `ctx` when a context token
 * travels. The server checks the MAC (timing-safe), size, one authorization
 * value, mth == the routed method, the time window with 5 s skew and max
 * lifetime, and the jti in a replay map: every check of (b) except the key
 * lookup by kid, which the channel replaces.
 *
 * What it gives up (why it is a prototype): a token is valid on its own
 * connection only (it cannot be relayed or logged and replayed elsewhere,
 * which is a gain, but a proxy terminating TLS breaks it), there is no
 * offline-verifiable signature for audit, and grpc-js exposes neither the
 * server stream's socket nor the client's: this file reads grpc-js' private
 * `stream` field on the server and wraps the credentials' secure connector on
 * the client; a product version needs that access from grpc-js upstream (or a
 * connection-level hook) and per-connection keys on the client for
 * round-robin channels.
 */
import { createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from "node:crypto";
import type { Http2Session } from "node:http2";
import type { TLSSocket } from "node:tls";
import * as grpc from "@grpc/grpc-js";

const EXPORTER_LABEL = "EXPORTER-tt-rpc-call-token-v0";
const LIFETIME_S = 60;
const SKEW_S = 5;
const MAX_TOKEN_CHARS = 4096;
const MAC_CHARS = 43; // 32 bytes, unpadded base64url

/** The channel key of a TLS connection (same bytes on both ends), imported once as a KeyObject. */
export function channelKey(socket: TLSSocket): KeyObject {
  // TLS 1.3: an empty context and no context derive the same secret (RFC 8446 section 7.5).
  return createSecretKey(socket.exportKeyingMaterial(32, EXPORTER_LABEL, Buffer.alloc(0)));
}

type MacKey = KeyObject | Buffer;

export function macToken(key: MacKey, claims: object): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
  return `${payload}.${createHmac("sha256", key).update(payload).digest("base64url")}`;
}

/** The claims of a token whose MAC is good under `key`, else undefined. Never throws on input. */
export function macVerify(key: MacKey, token: string): Record<string, unknown> | undefined {
  const dot = token.length - MAC_CHARS - 1;
  if (dot <= 0 || token.charCodeAt(dot) !== 0x2e) return undefined;
  const payload = token.slice(0, dot);
  const expected = createHmac("sha256", key).update(payload).digest();
  const got = Buffer.from(token.slice(dot + 1), "base64url");
  if (got.length !== 32 || !timingSafeEqual(got, expected) || got.toString("base64url") !== token.slice(dot + 1)) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    return claims !== null && typeof claims === "object" && !Array.isArray(claims) ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Client credentials that remember the channel key of each connection they
 * open (one connection per client in the bench: the latest one is used).
 */
export function channelBoundCredentials(creds: grpc.ChannelCredentials): { credentials: grpc.ChannelCredentials; key(): KeyObject | undefined } {
  let current: KeyObject | undefined;
  type Connector = { connect(socket: unknown): Promise<{ socket: TLSSocket; secure: boolean }> };
  const inner = creds as unknown as { _createSecureConnector(...args: unknown[]): Connector };
  const original = inner._createSecureConnector.bind(inner);
  inner._createSecureConnector = (...args: unknown[]) => {
    const connector = original(...args);
    const connect = connector.connect.bind(connector);
    connector.connect = async (socket) => {
      const result = await connect(socket);
      current = channelKey(result.socket);
      return result;
    };
    return connector;
  };
  return { credentials: creds, key: () => current };
}

/** (e) needs its connection (and so its key) before the first call: connect first, as a long-lived client would be. */
export function connected(client: { waitForReady(deadline: grpc.Deadline, cb: (error?: Error) => void): void }): Promise<void> {
  return new Promise((resolve, reject) => client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
}

export function clientMacInterceptor(key: () => KeyObject | undefined): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        const k = key();
        if (k !== undefined) {
          const iat = Math.floor(Date.now() / 1000);
          const token = macToken(k, { mth: options.method_definition.path, iat, exp: iat + LIFETIME_S, jti: randomBytes(16).toString("base64url") });
          metadata.set("authorization", `Bearer ${token}`);
        }
        next(metadata, listener);
      },
    });
}

/** jti -> exp, swept every 1,024 inserts (as (b)). */
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

export function serverMacInterceptor(): grpc.ServerInterceptor {
  const keys = new WeakMap<Http2Session, KeyObject>();
  const fresh = replayMap();
  const deny = (call: grpc.ServerInterceptingCallInterface) =>
    call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: "unauthenticated", metadata: new grpc.Metadata() });
  // PROTOTYPE: grpc-js' private field; the first interceptor gets the base call, which holds the HTTP/2 stream.
  const sessionOf = (call: grpc.ServerInterceptingCallInterface) => (call as unknown as { stream?: { session?: Http2Session } }).stream?.session;

  return (method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMetadata(metadata, mdNext) {
            const session = sessionOf(call);
            let key = session && keys.get(session);
            if (session && key === undefined) {
              key = channelKey(session.socket as TLSSocket);
              keys.set(session, key);
            }
            const values = metadata.get("authorization");
            const value = values.length === 1 ? values[0] : undefined;
            if (key === undefined || typeof value !== "string" || !value.startsWith("Bearer ") || value.length > MAX_TOKEN_CHARS) return deny(call);
            const c = macVerify(key, value.slice(7));
            const now = Math.floor(Date.now() / 1000);
            if (
              c === undefined ||
              c.mth !== method.path ||
              !Number.isSafeInteger(c.iat) ||
              !Number.isSafeInteger(c.exp) ||
              (c.exp as number) <= (c.iat as number) ||
              (c.exp as number) - (c.iat as number) > LIFETIME_S ||
              (c.iat as number) > now + SKEW_S ||
              (c.exp as number) <= now - SKEW_S ||
              typeof c.jti !== "string" ||
              !/^[A-Za-z0-9_-]{21}[AQgw]$/.test(c.jti) ||
              !fresh(c.jti, c.exp as number, now)
            ) {
              return deny(call);
            }
            mdNext(metadata);
          },
        });
      },
    });
}
