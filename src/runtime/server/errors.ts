/**
 * The server boundary: what an error leaving a handler becomes for the caller.
 *
 * - A ConnectError the handler (or an interceptor) made itself keeps its code,
 *   message (capped at MAX_STATUS_MESSAGE), details and trailers: it is a
 *   deliberate answer.
 * - A failure of a call this server made to another service (marked by the
 *   client, src/runtime/wire/downstream.ts) never passes through unchanged: its
 *   status, message, details and trailers describe the dependency, not this
 *   call. The caller gets a fresh error with a generic message, coded for
 *   what the failure means for *this* call:
 *     DEADLINE_EXCEEDED, CANCELLED, UNAVAILABLE   keep their meaning;
 *     RESOURCE_EXHAUSTED                          stays (overload: back off);
 *     everything else (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT,
 *     NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE,
 *     UNIMPLEMENTED, INTERNAL, UNKNOWN, DATA_LOSS) -> INTERNAL: a dependency
 *     refusing us is our fault, not the caller's, and a dependency's NOT_FOUND
 *     says nothing about the caller's request. A handler that means it
 *     (e.g. "the venue does not exist") re-throws a new error of its own.
 *   A dependency failing fast because its breaker is open (noRetry) adds
 *   `grpc-retry-pushback-ms: -1`: our caller must not retry either.
 *   The original goes to the log with its target.
 * - Any other throw is a bug: generic INTERNAL, details to the log.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { DOWNSTREAM_ANSWER, INTERNAL, downstreamInfo, type DownstreamInfo } from "../wire/downstream.ts";
import type { Route } from "./routes.ts";

export type ErrorReporter = (info: { route: Route; error: unknown; downstream?: DownstreamInfo }) => void;

/** Upper bound on any status message this server sends (a huge grpc-message trailer breaks the caller's connection). */
export const MAX_STATUS_MESSAGE = 1024;

const PUSHBACK_HEADER = "grpc-retry-pushback-ms";


/** Caps a message at MAX_STATUS_MESSAGE characters. */
export function capMessage(message: string): string {
  return message.length <= MAX_STATUS_MESSAGE ? message : `${message.slice(0, MAX_STATUS_MESSAGE - 3)}...`;
}

export function toConnectError(err: unknown, route: Route, report: ErrorReporter): ConnectError {
  if (err instanceof ConnectError) {
    const downstream = downstreamInfo(err);
    if (downstream !== undefined) {
      report({ route, error: err, downstream });
      const [code, message] = DOWNSTREAM_ANSWER[err.code] ?? INTERNAL;
      return new ConnectError(message, code, downstream.noRetry ? { [PUSHBACK_HEADER]: "-1" } : undefined);
    }
    if (err.rawMessage.length <= MAX_STATUS_MESSAGE) return err;
    const capped = new ConnectError(capMessage(err.rawMessage), err.code, err.metadata, undefined, err.cause);
    capped.details.push(...err.details);
    return capped;
  }
  report({ route, error: err });
  return new ConnectError("internal error", Code.Internal);
}
