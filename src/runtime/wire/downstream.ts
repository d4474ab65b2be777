/**
 * Marks errors that came from a call this process made to another service
 * (or from the client-side policies guarding that call), so the server
 * boundary can tell "my dependency failed" from "I decided to fail": a
 * downstream status, message and trailers must never reach our own caller
 * unchanged (a downstream PERMISSION_DENIED is our bug, not theirs).
 */
import { Code, ConnectError } from "@connectrpc/connect";

export interface DownstreamInfo {
  /** The service that was called (workload name, e.g. "venue-service"). */
  readonly target: string;
  /** The failure says "do not retry" (e.g. that dependency's breaker is open). */
  readonly noRetry?: boolean;
}

const marks = new WeakMap<ConnectError, DownstreamInfo>();

/** Records that `err` describes a failed outgoing call; returns it for `throw markDownstream(...)`. */
export function markDownstream(err: ConnectError, info: DownstreamInfo): ConnectError {
  marks.set(err, info);
  return err;
}

/** Set when `err` came from an outgoing call; undefined for errors a handler made itself. */
export function downstreamInfo(err: ConnectError): DownstreamInfo | undefined {
  return marks.get(err);
}

const serverAnswers = new WeakSet<ConnectError>();

/**
 * Records that `err`'s INTERNAL/UNKNOWN status arrived in the target's own
 * grpc-status trailer (a deliberate answer), not one grpc-js made up locally
 * for a reset stream, a missing status or an unparsable response.
 */
export function markServerAnswer(err: ConnectError): ConnectError {
  serverAnswers.add(err);
  return err;
}

/** True when markServerAnswer recorded that the server itself sent this status. */
export function isServerAnswer(err: ConnectError): boolean {
  return serverAnswers.has(err);
}

/** What a server answers its caller for a dependency's failure, by the dependency's code (server/errors.ts). */
export const DOWNSTREAM_ANSWER: Partial<Record<Code, readonly [Code, string]>> = {
  [Code.DeadlineExceeded]: [Code.DeadlineExceeded, "deadline exceeded"],
  [Code.Canceled]: [Code.Canceled, "call cancelled"],
  [Code.Unavailable]: [Code.Unavailable, "a dependency is unavailable"],
  [Code.ResourceExhausted]: [Code.ResourceExhausted, "a dependency is overloaded"],
};
export const INTERNAL: readonly [Code, string] = [Code.Internal, "internal error"];

/** The code the caller receives for `err` (what toConnectError answers), for logs, metrics and spans of the call. */
export function callerCode(err: unknown): Code {
  if (!(err instanceof ConnectError)) return Code.Internal;
  return downstreamInfo(err) === undefined ? err.code : (DOWNSTREAM_ANSWER[err.code] ?? INTERNAL)[0];
}
