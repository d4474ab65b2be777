/**
 * How a failed attempt is read: server pushback (header or RetryInfo), "never
 * sent", and what counts against the breaker.
 */
import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { RetryInfoSchema } from "../../src/gen/google/rpc/error_details_pb.ts";
import { isAvailabilityFailure, isInfrastructureFailure, localRejection, neverSent, pushbackMs } from "../../src/resilience/classify.ts";

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
