/**
 * A connect-es Transport on a grpc-js channel: connect-es typed clients and
 * interceptors on top, grpc-js' cheaper HTTP/2 client underneath (chosen by
 * measurement, see README "Wire stack").
 */
import * as grpc from "@grpc/grpc-js";
import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  type ContextValues,
  type Interceptor,
  type StreamResponse,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
  type StreamRequest,
} from "@connectrpc/connect";
import { attemptDeadlineKey } from "../wire/attempt-deadline.ts";
import { directCredentialsKey, takeCallCredentials } from "../wire/call-credentials.ts";
import { AUTHORIZATION_HEADER, CONTEXT_TOKEN_HEADER } from "../auth/call-context.ts";
import { runStreamingCall } from "@connectrpc/connect/protocol";
import { runUnary } from "./unary-call.ts";
import { methodCodec } from "../wire/codec.ts";
import { appendMetadata, headersToMetadata } from "../wire/metadata.ts";
import { connectErrorFromGrpc, isServiceError } from "../wire/status.ts";
import { downstreamInfo, markDownstream, markServerAnswer } from "../wire/downstream.ts";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../wire/message-size.ts";


export interface GrpcJsTransportOptions {
  /** A grpc-js target: "host:port", "dns:///ticket-service:50004", "ipv4:10.0.0.1:50004,10.0.0.2:50004" (src/runtime/client/address.ts). */
  readonly address: string;
  /** The service called (workload name): named on every error this transport returns. */
  readonly target?: string;
  readonly credentials: grpc.ChannelCredentials;
  readonly interceptors?: readonly Interceptor[];
  readonly channelOptions?: grpc.ChannelOptions;
  /** Largest message sent or received (default 4 MiB); over it the call fails RESOURCE_EXHAUSTED. */
  readonly maxMessageBytes?: number;
}

export interface GrpcJsTransport extends Transport {
  /** Closes the channel; calls in flight fail with CANCELED/UNAVAILABLE. */
  close(): void;
}

/**
 * One target, many replicas (README "Running N replicas"): grpc-js resolves
 * every address of the target and round_robin keeps a connection to each,
 * picking only READY ones, so a replica that cannot be reached is out of
 * rotation until it reconnects. A connection lost makes the channel
 * re-resolve (at most every 5 s), which is how a headless service's new pods
 * are found; servers cap connection age for the same reason.
 */
const REPLICA_BALANCING: grpc.ChannelOptions = {
  "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
  // Our policy, not whatever a DNS TXT record says (and no TXT lookup per resolution).
  "grpc.service_config_disable_resolution": 1,
  "grpc.dns_min_time_between_resolutions_ms": 5_000,
  // A restarted replica is back in rotation within ~10 s (grpc-js' default cap is 120 s).
  "grpc.max_reconnect_backoff_ms": 10_000,
  // A replica whose host vanished without closing the connection is noticed during calls, not after minutes of TCP retries.
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
};

/**
 * INTERNAL and UNKNOWN statuses grpc-js makes up itself when no server status
 * arrived (grpc-js 1.14: subchannel-call.js, load-balancing-call.js,
 * client-interceptors.js, compression-filter.js, control-plane-status.js):
 * a stream reset without trailers (the status then carries `rstCode`),
 * trailers without grpc-status, a non-200 HTTP answer, a response it could not
 * parse, a stream it could not start. grpc-js passes a received status on with
 * no origin flag, so these fixed wordings are the only way to tell;
 * test/resilience/classify.test.ts provokes the real ones over sockets.
 */
const GRPC_JS_LOCAL_STATUS =
  /^(?:Received RST_STREAM|Received HTTP status code|No status information received|Response message parsing error|Request message serialization failure|Failed to start HTTP\/2 stream|"authorization" metadata cannot|Getting metadata from plugin failed|Write error|Failed to decompress|Failed to write message|Invalid status from control plane|Compression method not supported)/;

/**
 * The target's server itself answered INTERNAL/UNKNOWN (its grpc-status
 * trailer said so): a decision of a live server, which must not count as an
 * outage (src/runtime/resilience/classify.ts). Other codes are not marked.
 */
export function answeredByServer(e: grpc.ServiceError): boolean {
  if (e.code !== grpc.status.INTERNAL && e.code !== grpc.status.UNKNOWN) return false;
  return !("rstCode" in e) && !GRPC_JS_LOCAL_STATUS.test(e.details);
}

export function createGrpcJsTransport(options: GrpcJsTransportOptions): GrpcJsTransport {
  const client = new grpc.Client(options.address, options.credentials, {
    "grpc.max_receive_message_length": options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    // Retries are the framework's job (policy-aware, budgeted); grpc-js' own would double them.
    "grpc.enable_retries": 0,
    ...REPLICA_BALANCING,
    ...options.channelOptions,
  });
  const interceptors = [...(options.interceptors ?? [])];
  const url = (path: string) => `grpc://${options.address}${path}`;
  const target = options.target ?? options.address;
  const toConnectError = (e: unknown): ConnectError => {
    if (e instanceof ConnectError) return downstreamInfo(e) ? e : markDownstream(e, { target });
    if (isServiceError(e)) {
      const err = connectErrorFromGrpc(e, target);
      return answeredByServer(e) ? markServerAnswer(err) : err;
    }
    return markDownstream(ConnectError.from(e, Code.Internal), { target });
  };

  function deadlineOf(contextValues: ContextValues, timeoutMs: number | undefined): grpc.Deadline {
    const attempt = contextValues.get(attemptDeadlineKey);
    if (attempt !== undefined) return attempt;
    return timeoutMs !== undefined && timeoutMs > 0 ? Date.now() + timeoutMs : Infinity;
  }

  return {
    close: () => client.close(),

    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0] | undefined,
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      const codec = methodCodec(method);
      const path = `/${method.parent.typeName}/${method.name}`;
      // Not connect-es' runUnaryCall: that one builds a DOMException on every successful call (unary-call.ts).
      return runUnary<I, O>({
        interceptors,
        signal,
        timeoutMs,
        req: {
          stream: false,
          service: method.parent,
          method,
          requestMethod: "POST",
          url: url(path),
          header: new Headers(header),
          contextValues: (contextValues ?? createContextValues()).set(directCredentialsKey, true),
          message: input,
        },
        next: (req: UnaryRequest<I, O>) =>
          new Promise<UnaryResponse<I, O>>((resolve, reject) => {
            const responseHeader = new Headers();
            const trailer = new Headers();
            const metadata = requestMetadata(req);
            const stackTraceLimit = stackCaptureOff();
            let call: grpc.ClientUnaryCall;
            try {
              call = client.makeUnaryRequest<MessageShape<I>, MessageShape<O>>(
                path,
                codec.serializeInput,
                codec.deserializeOutput as (b: Buffer) => MessageShape<O>,
                req.message,
                metadata,
                { deadline: deadlineOf(req.contextValues, timeoutMs) },
                (err, value) => {
                  req.signal.removeEventListener("abort", onAbort);
                  if (err) reject(toConnectError(err));
                  else
                    resolve({ stream: false, service: method.parent, method, header: responseHeader, trailer, message: value! });
                },
              );
            } finally {
              Error.stackTraceLimit = stackTraceLimit;
            }
            const onAbort = () => call.cancel();
            req.signal.addEventListener("abort", onAbort, { once: true });
            call.on("metadata", (md: grpc.Metadata) => copyInto(responseHeader, md));
            // grpc-js emits 'status' in the same tick as the callback, before any awaiting code resumes.
            call.on("status", (status: grpc.StatusObject) => copyInto(trailer, status.metadata));
          }),
      });
    },

    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0] | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
      contextValues?: ContextValues,
    ): Promise<StreamResponse<I, O>> {
      if (method.methodKind !== "server_streaming") {
        throw new ConnectError(`${method.methodKind} calls are not supported by this transport`, Code.Unimplemented);
      }
      const codec = methodCodec(method);
      const path = `/${method.parent.typeName}/${method.name}`;
      return runStreamingCall<I, O>({
        interceptors,
        signal,
        timeoutMs,
        req: {
          stream: true,
          service: method.parent,
          method,
          requestMethod: "POST",
          url: url(path),
          header: new Headers(header),
          contextValues: (contextValues ?? createContextValues()).set(directCredentialsKey, true),
          message: input,
        },
        next: async (req: StreamRequest<I, O>) => {
          let first: MessageShape<I> | undefined;
          for await (const m of req.message) {
            if (first !== undefined) throw new ConnectError("server-streaming call takes exactly one request", Code.InvalidArgument);
            first = m;
          }
          if (first === undefined) throw new ConnectError("server-streaming call takes exactly one request", Code.InvalidArgument);
          const responseHeader = new Headers();
          const trailer = new Headers();
          const metadata = requestMetadata(req);
          const stackTraceLimit = stackCaptureOff();
          let call: grpc.ClientReadableStream<MessageShape<O>>;
          try {
            call = client.makeServerStreamRequest<MessageShape<I>, MessageShape<O>>(
              path,
              codec.serializeInput,
              codec.deserializeOutput as (b: Buffer) => MessageShape<O>,
              first,
              metadata,
              { deadline: deadlineOf(req.contextValues, timeoutMs) },
            );
          } finally {
            Error.stackTraceLimit = stackTraceLimit;
          }
          const onAbort = () => call.cancel();
          req.signal.addEventListener("abort", onAbort, { once: true });
          call.on("metadata", (md: grpc.Metadata) => copyInto(responseHeader, md));
          call.on("status", (status: grpc.StatusObject) => copyInto(trailer, status.metadata));
          async function* messages(): AsyncIterable<MessageShape<O>> {
            try {
              for await (const m of call) yield m as MessageShape<O>;
            } catch (e) {
              throw toConnectError(e);
            } finally {
              req.signal.removeEventListener("abort", onAbort);
              call.cancel();
            }
          }
          return { stream: true, service: method.parent, method, header: responseHeader, trailer, message: messages() };
        },
      });
    },
  };
}

/**
 * Turns stack capture off while grpc-js starts a call (the caller puts the
 * returned limit back right after, in a finally): grpc-js makes an Error per
 * call (client.js, `callerStackError = new Error()` in makeUnaryRequest and
 * makeServerStreamRequest) only to append "for call at <stack>" to a failed
 * call's error, and capturing that stack costs ~6-7 µs per call (issue #12,
 * round 2). The stack it would record is this transport's, behind async
 * interceptors, never the application's, and every grpc-js error becomes a
 * ConnectError here anyway. Errors grpc-js makes later (a failed call's
 * status) are unaffected; only one thrown synchronously while starting
 * (e.g. "Channel has been shut down") has no stack. Upstreamable: capture
 * the caller's stack only when asked, or with a cheap structured trace.
 */
function stackCaptureOff(): number {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  return limit;
}

/** The request's headers as metadata, plus the call credentials the call-token interceptor passed directly. */
function requestMetadata(req: { readonly header: Headers }): grpc.Metadata {
  const metadata = headersToMetadata(req.header);
  const credentials = takeCallCredentials(req);
  if (credentials !== undefined) {
    if (credentials.contextToken !== undefined) metadata.set(CONTEXT_TOKEN_HEADER, credentials.contextToken);
    metadata.set(AUTHORIZATION_HEADER, credentials.authorization);
  }
  return metadata;
}

/** Appends metadata to response headers directly (no intermediate Headers object per event). */
function copyInto(target: Headers, md: grpc.Metadata): void {
  appendMetadata(target, md);
}

