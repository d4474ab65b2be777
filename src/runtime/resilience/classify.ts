/**
 * What a failed attempt means: may it be retried, does it count against the
 * target's health, may a stale answer stand in for it. One place, so the
 * retry, breaker and fallback steps can never disagree.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { RetryInfoSchema } from "../gen/google/rpc/error_details_pb.ts";
import { isServerAnswer } from "../wire/downstream.ts";

export const PUSHBACK_HEADER = "grpc-retry-pushback-ms";

/** Failures our own policies produced (no network involved). */
export type LocalRejection = "breaker_open" | "bulkhead_full";
const localRejections = new WeakMap<ConnectError, LocalRejection>();

export function localRejection(err: ConnectError, kind: LocalRejection): ConnectError {
  localRejections.set(err, kind);
  return err;
}

export function rejectionKind(err: ConnectError): LocalRejection | undefined {
  return localRejections.get(err);
}

/**
 * Server pushback in ms: `grpc-retry-pushback-ms` (gRFC A6), else a
 * google.rpc.RetryInfo detail. Negative means "do not retry".
 */
export function pushbackMs(err: ConnectError): number | undefined {
  const header = err.metadata.get(PUSHBACK_HEADER);
  if (header !== null) {
    const ms = Number.parseInt(header, 10);
    // A6: a malformed value means "do not retry", like a negative one.
    return Number.isFinite(ms) ? ms : -1;
  }
  if (err.details.length === 0) return undefined;
  const info = err.findDetails(RetryInfoSchema)[0];
  if (!info?.retryDelay) return undefined;
  return Number(info.retryDelay.seconds) * 1000 + Math.floor(info.retryDelay.nanos / 1e6);
}

// grpc-js wording for "the request never left this process": no connection, or the stream was refused.
const NEVER_SENT = /ECONNREFUSED|Stream refused by server/;

/** The request provably never reached the server, so even a non-idempotent call may be sent again once. */
export function neverSent(err: ConnectError): boolean {
  return err.code === Code.Unavailable && NEVER_SENT.test(err.rawMessage);
}

// RESOURCE_EXHAUSTED raised by the HTTP/2 layer (ENHANCE_YOUR_CALM), not a server's own limit.
const TRANSPORT_EXHAUSTED = /Bandwidth exhausted|memory limit exceeded/;

/**
 * Counts against the target's breaker: the target (or the way to it) is
 * unwell. Client errors, the caller's cancellation and our own rejections never count,
 * nor an INTERNAL/UNKNOWN the target's server sent as its status (e.g. its boundary
 * mapping a dependency's refusal to INTERNAL): a live server decided that. Only
 * INTERNAL/UNKNOWN with no status from the server (reset stream, missing
 * grpc-status, unparsable answer: marked by the transport) count.
 */
export function isInfrastructureFailure(err: unknown): boolean {
  if (!(err instanceof ConnectError) || localRejections.has(err)) return false;
  switch (err.code) {
    case Code.Unavailable:
    case Code.DeadlineExceeded:
    case Code.DataLoss:
      return true;
    case Code.Internal:
    case Code.Unknown:
      return !isServerAnswer(err);
    case Code.ResourceExhausted:
      return TRANSPORT_EXHAUSTED.test(err.rawMessage);
    default:
      return false;
  }
}

/** A stale answer may stand in: the target is unreachable or overloaded, never a refusal of the request itself. */
export function isAvailabilityFailure(err: ConnectError): boolean {
  return localRejections.has(err) || err.code === Code.Unavailable || err.code === Code.DeadlineExceeded;
}

/** Codes a retry-safe call may try again; RESOURCE_EXHAUSTED only when the server said when. */
export function isRetryableCode(err: ConnectError, pushback: number | undefined): boolean {
  switch (err.code) {
    case Code.Unavailable:
    case Code.DeadlineExceeded:
    case Code.Aborted:
      return true;
    case Code.ResourceExhausted:
      return pushback !== undefined && pushback >= 0;
    default:
      return false;
  }
}
