/**
 * How a failed attempt is read: server pushback (header or RetryInfo), "never
 * sent", and what counts against the breaker.
 */
import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { RetryInfoSchema } from "../../src/runtime/gen/google/rpc/error_details_pb.ts";
import * as grpc from "@grpc/grpc-js";
import { answeredByServer } from "../../src/runtime/client/grpc-js-transport.ts";
import { markServerAnswer } from "../../src/runtime/wire/downstream.ts";
import { isAvailabilityFailure, isInfrastructureFailure, localRejection, neverSent, pushbackMs } from "../../src/runtime/resilience/classify.ts";

const withHeader = (value: string) => new ConnectError("x", Code.Unavailable, { "grpc-retry-pushback-ms": value });

describe("pushback", () => {
  it("reads grpc-retry-pushback-ms; negative or malformed means stop", () => {
    expect(pushbackMs(withHeader("250"))).toBe(250);
    expect(pushbackMs(withHeader("-1"))).toBe(-1);
    expect(pushbackMs(withHeader("soon"))).toBe(-1);
    expect(pushbackMs(new ConnectError("x", Code.Unavailable))).toBeUndefined();
  });

  it("reads a google.rpc.RetryInfo detail", () => {
    const err = new ConnectError("x", Code.ResourceExhausted);
    err.details.push({ desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay: durationFromMs(1500) }) });
    expect(pushbackMs(err)).toBe(1500);
  });
});

describe("classification", () => {
  it("knows a request that never left", () => {
    expect(neverSent(new ConnectError("No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1", Code.Unavailable))).toBe(true);
    expect(neverSent(new ConnectError("Stream refused by server", Code.Unavailable))).toBe(true);
    expect(neverSent(new ConnectError("read ECONNRESET", Code.Unavailable))).toBe(false);
  });

  it("counts infrastructure failures only", () => {
    for (const code of [Code.Unavailable, Code.DeadlineExceeded, Code.Internal, Code.Unknown, Code.DataLoss]) {
      expect(isInfrastructureFailure(new ConnectError("x", code))).toBe(true);
    }
    // INTERNAL/UNKNOWN the target's server sent as its status: a live server's decision.
    expect(isInfrastructureFailure(markServerAnswer(new ConnectError("internal error", Code.Internal)))).toBe(false);
    expect(isInfrastructureFailure(markServerAnswer(new ConnectError("boom", Code.Unknown)))).toBe(false);
    for (const code of [Code.InvalidArgument, Code.PermissionDenied, Code.Unauthenticated, Code.Canceled, Code.NotFound, Code.ResourceExhausted]) {
      expect(isInfrastructureFailure(new ConnectError("x", code))).toBe(false);
    }
    expect(isInfrastructureFailure(new ConnectError("Bandwidth exhausted or memory limit exceeded", Code.ResourceExhausted))).toBe(true);
    expect(isInfrastructureFailure(localRejection(new ConnectError("open", Code.Unavailable), "breaker_open"))).toBe(false);
    expect(isInfrastructureFailure(new Error("not a ConnectError"))).toBe(false);
  });

  it("serves fallbacks on availability failures only", () => {
    expect(isAvailabilityFailure(new ConnectError("x", Code.Unavailable))).toBe(true);
    expect(isAvailabilityFailure(new ConnectError("x", Code.DeadlineExceeded))).toBe(true);
    expect(isAvailabilityFailure(localRejection(new ConnectError("x", Code.ResourceExhausted), "bulkhead_full"))).toBe(true);
    expect(isAvailabilityFailure(new ConnectError("x", Code.ResourceExhausted))).toBe(false);
    expect(isAvailabilityFailure(new ConnectError("x", Code.PermissionDenied))).toBe(false);
  });
});

/** A grpc-js ServiceError as grpc-js builds it (call.js callErrorFromStatus: the status's fields on an Error). */
function serviceError(code: grpc.status, details: string, extra: Record<string, unknown> = {}): grpc.ServiceError {
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata: new grpc.Metadata(), ...extra });
}

describe("where an INTERNAL/UNKNOWN status came from (transport)", () => {
  it("a status the server sent is its answer", () => {
    expect(answeredByServer(serviceError(grpc.status.INTERNAL, "internal error"))).toBe(true);
    expect(answeredByServer(serviceError(grpc.status.UNKNOWN, "handler threw"))).toBe(true);
    expect(answeredByServer(serviceError(grpc.status.INTERNAL, ""))).toBe(true);
  });

  it("a status grpc-js made up without one from the server is not", () => {
    const local: [grpc.status, string, Record<string, unknown>?][] = [
      [grpc.status.INTERNAL, "Received RST_STREAM with code 2 (Internal server error)", { rstCode: 2 }],
      [grpc.status.INTERNAL, "Received RST_STREAM with code 0 (Call ended without gRPC status)", { rstCode: 0 }],
      [grpc.status.INTERNAL, "any wording at all", { rstCode: 1 }],
      [grpc.status.UNKNOWN, "No status information received"],
      [grpc.status.UNKNOWN, "Received HTTP status code 200"],
      [grpc.status.INTERNAL, "Received HTTP status code 400"],
      [grpc.status.INTERNAL, "Response message parsing error: premature EOF"],
      [grpc.status.INTERNAL, "Failed to start HTTP/2 stream with error Session closed"],
      [grpc.status.INTERNAL, "Failed to decompress gzip-encoded message"],
    ];
    for (const [code, details, extra] of local) expect(answeredByServer(serviceError(code, details, extra)), details).toBe(false);
  });

  it("marks only INTERNAL and UNKNOWN", () => {
    expect(answeredByServer(serviceError(grpc.status.UNAVAILABLE, "down"))).toBe(false);
    expect(answeredByServer(serviceError(grpc.status.PERMISSION_DENIED, "no"))).toBe(false);
  });
});
