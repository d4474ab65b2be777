/**
 * The answers a handler gives on purpose, coded as gRPC designs them:
 * INVALID_ARGUMENT (the request itself is wrong, with field violations in a
 * google.rpc.BadRequest detail), NOT_FOUND (absent, or another tenant's),
 * FAILED_PRECONDITION (valid request, wrong state: do not retry as is),
 * ALREADY_EXISTS. Messages name the resource kind, never echo input.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, BadRequest_FieldViolationSchema } from "@tickettoken/rpc/gen/google/rpc/error_details_pb.js";

export interface FieldViolation {
  /** Proto field path, snake_case, e.g. "items[0].quantity". */
  readonly field: string;
  readonly description: string;
}

export function invalidArgument(violations: readonly FieldViolation[]): ConnectError {
  const err = new ConnectError(
    `invalid request: ${violations.map((v) => `${v.field}: ${v.description}`).join("; ")}`.slice(0, 512),
    Code.InvalidArgument,
  );
  err.details.push({
    desc: BadRequestSchema,
    value: create(BadRequestSchema, { fieldViolations: violations.map((v) => create(BadRequest_FieldViolationSchema, v)) }),
  });
  return err;
}

export function notFound(kind: string): ConnectError {
  return new ConnectError(`${kind} not found`, Code.NotFound);
}

export function failedPrecondition(message: string): ConnectError {
  return new ConnectError(message, Code.FailedPrecondition);
}

export function alreadyExists(message: string): ConnectError {
  return new ConnectError(message, Code.AlreadyExists);
}
