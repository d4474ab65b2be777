/**
 * Per-component costs of the full path, measured in one process with the
 * product's own modules: mint a call token, verify one (its replay check
 * included), the replay check alone, contract authorization, one "rpc" log
 * line through the product logger to a file, one server metrics observation.
 * Each is the mean over `n` sequential operations after a warm-up.
 */
import { performance } from "node:perf_hooks";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import type { JWK } from "jose";
import { createCallTokenMinter, createCallTokenVerifier, replayKeepUntil } from "../src/runtime/auth/call-token.ts";
import { createReplayCache } from "../src/runtime/auth/replay-cache.ts";
import { authorize } from "../src/runtime/auth/authorize.ts";
import { methodContract } from "../src/runtime/contract/types.ts";
import { asyncDestination, createLogger, flatLineLogger } from "../src/runtime/observability/logger.ts";
import { createMetrics } from "../src/runtime/telemetry/metrics.ts";
import type { MaterialSource } from "../src/runtime/identity/material.ts";
import type { ServerCall } from "../src/runtime/contract/call.ts";
import { TicketServiceContract } from "../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { smallRequest, TENANT, TicketService, UNARY_PATH } from "./shared.ts";
import { macToken, macVerify } from "./mac-peer.ts";
import { createSecretKey } from "node:crypto";

export type MicroCosts = Record<
  "signCallToken" | "verifyCallToken" | "replayCheck" | "authorize" | "logLine" | "metricsObservation" | "signMacToken" | "verifyMacToken",
  number
>;

async function timeEach(n: number, op: (i: number) => unknown): Promise<number> {
  // Warm-up (JIT) on indices after the measured ones, so each index is used once (fresh jtis).
  for (let i = 0; i < Math.min(200, n); i++) await op(n + i);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await op(i);
  return ((performance.now() - t0) * 1000) / n;
}

export async function measureMicroCosts(opts: { caller: MaterialSource; server: MaterialSource; contextToken: string; logFile: string; n: number }): Promise<MicroCosts> {
  const { n } = opts;
  const caller = opts.caller.current().workload;
  const server = opts.server.current();
  const self = server.workload.spiffeId;
  const minter = createCallTokenMinter({ identity: caller.spiffeId, key: caller.jwt.current });
  const mint = () => minter.mint({ audience: self, method: UNARY_PATH, contextToken: opts.contextToken });
  const signCallToken = await timeEach(n, mint);

  // Fresh tokens (the verifier refuses a replayed jti), minted before the clock starts.
  const total = n + Math.min(200, n);
  const tokens: string[] = [];
  for (let i = 0; i < total; i++) tokens.push(`Bearer ${await mint()}`);
  const verifier = createCallTokenVerifier({
    self,
    keysFor: (peer) => server.bundle.jwtKeys.get(peer) as JWK[] | undefined,
    replayCache: createReplayCache(),
  });
  const verifyCallToken = await timeEach(n, (i) => verifier.verify([tokens[i]!], { peer: caller.spiffeId, method: UNARY_PATH, contextToken: opts.contextToken }));

  const replay = createReplayCache();
  const jtis = Array.from({ length: total }, () => randomBytes(16).toString("base64url"));
  const now = Math.floor(Date.now() / 1000);
  const keep = replayKeepUntil(now, now + 60);
  const replayCheck = await timeEach(n, (i) => replay.check(caller.spiffeId, jtis[i]!, keep));

  const contract = methodContract(TicketServiceContract, TicketService.method.getTicketStatus);
  const verified = {
    caller: { spiffeId: caller.spiffeId, workload: caller.workload, env: caller.env },
    tenantId: TENANT,
    userId: "bench-user",
    scopes: [],
    txn: "bench-txn",
  };
  const authorizeUs = await timeEach(n, () => authorize(contract, verified, smallRequest));

  // The product logger (same redaction, timestamp and asynchronous destination) writing the fields of the framework's "rpc" line.
  const destination = asyncDestination(opts.logFile);
  await once(destination, "ready");
  const logger = flatLineLogger(createLogger({ level: "info", destination }).child({ service: "ticket-service" }));
  const logLine = await timeEach(n, (i) =>
    logger.info({ method: UNARY_PATH, protocol: "grpc", peer: caller.workload, tenant: TENANT, code: "OK", durationMs: i / 1000, requestId: undefined, attempt: 1 }, "rpc"),
  );

  destination.flushSync();
  destination.end();

  const metrics = createMetrics();
  const call = { service: TicketService, method: TicketService.method.getTicketStatus, contract } as unknown as ServerCall;
  const metricsObservation = await timeEach(n, (i) => {
    metrics.server.started?.(call);
    metrics.server.finished({ call, code: 0, durationMs: i / 1000 });
  });

  // The (e) prototype's token: HMAC-SHA256 under a per-connection key (as the TLS exporter would give), claims parsed.
  const macKey = createSecretKey(randomBytes(32));
  const macClaims = (i: number) => ({ mth: UNARY_PATH, iat: now, exp: now + 60, jti: jtis[i]! });
  const signMacToken = await timeEach(n, (i) => macToken(macKey, macClaims(i)));
  const macTokens = Array.from({ length: total }, (_, i) => macToken(macKey, macClaims(i)));
  const verifyMacToken = await timeEach(n, (i) => {
    if (macVerify(macKey, macTokens[i]!) === undefined) throw new Error("MAC token did not verify");
  });

  return { signCallToken, verifyCallToken, replayCheck, authorize: authorizeUs, logLine, metricsObservation, signMacToken, verifyMacToken };
}
