/**
 * gRPC status <-> ConnectError. Connect's Code enum uses the gRPC numbering,
 * so codes map 1:1; error details travel in `grpc-status-details-bin` as a
 * google.rpc.Status, which both sides encode with protobuf-es.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { Metadata, type ServiceError, type StatusObject } from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { StatusSchema } from "../gen/google/rpc/status_pb.ts";
import { headersToMetadata, metadataToHeaders } from "./metadata.ts";
import { markDownstream } from "./downstream.ts";

const DETAILS_KEY = "grpc-status-details-bin";

export function isServiceError(e: unknown): e is ServiceError {
  return e instanceof Error && typeof (e as Partial<ServiceError>).code === "number" && "metadata" in e;
}

// TLS handshake failures: our certificate refused (a TLS alert, e.g. "tlsv13 alert certificate required", or our
// own pre-check: a server refusing a bad certificate only closes the connection, which grpc-js reports as a plain,
// retryable "Failed to connect"), theirs untrusted, or not the identity we meant to call.
const TLS_FAILURE = /tt-rpc: (server identity|client certificate)|alert|certificate|self.signed|unable to (get|verify)|wrong version number|unsupported protocol|no protocols available/i;

/**
 * Client side: a grpc-js error becomes a ConnectError with the same code,
 * trailers and details. A connection that failed its mTLS handshake is not a
 * transient outage: it becomes UNAUTHENTICATED (never retried) with the reason.
 * `target` names the service called, for the server boundary's log.
 */
export function connectErrorFromGrpc(e: ServiceError | StatusObject, target = "unknown"): ConnectError {
  const trailers = e.metadata ? metadataToHeaders(e.metadata) : new Headers();
  if (e.code === 14 && TLS_FAILURE.test(e.details)) {
    return markDownstream(new ConnectError(`mTLS handshake failed: ${e.details}`, Code.Unauthenticated, trailers), { target });
  }
  // Marked as a dependency's answer, so a server boundary never relays it unchanged (src/runtime/server/errors.ts).
  const err = markDownstream(new ConnectError(e.details, e.code as number as Code, trailers), { target });
  const raw = e.metadata?.get(DETAILS_KEY)[0];
  if (raw instanceof Uint8Array) {
    try {
      const status = fromBinary(StatusSchema, raw);
      for (const any of status.details) {
        err.details.push({ type: any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1), value: any.value, debug: undefined });
      }
    } catch {
      // Undecodable details are dropped; code and message still stand.
    }
  }
  trailers.delete(DETAILS_KEY);
  return err;
}

/** Server side: a ConnectError becomes the grpc-js status object sent to the caller. */
export function grpcStatusFromConnect(err: ConnectError): { code: number; details: string; metadata: Metadata } {
  const metadata = headersToMetadata(err.metadata);
  if (err.details.length > 0) {
    const status = create(StatusSchema, {
      code: err.code,
      message: err.rawMessage,
      details: err.details.map((d) =>
        "desc" in d
          ? anyPack(d.desc, create(d.desc, d.value as never))
          : { $typeName: "google.protobuf.Any" as const, typeUrl: `type.googleapis.com/${d.type}`, value: d.value },
      ),
    });
    metadata.set(DETAILS_KEY, Buffer.from(toBinary(StatusSchema, status)));
  }
  return { code: err.code as number, details: err.rawMessage, metadata };
}

export { Code, ConnectError, Metadata };
