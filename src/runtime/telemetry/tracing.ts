/**
 * OpenTelemetry spans through @opentelemetry/api alone: a SERVER span per
 * served call and a CLIENT span per outgoing call, with the RPC semantic
 * conventions (rpc.system, rpc.service, rpc.method, rpc.grpc.status_code),
 * linked by the W3C traceparent the framework already propagates: the
 * server span's parent is the incoming traceparent, and an outgoing call's
 * traceparent carries its client span's id.
 *
 * Zero cost without an SDK: `activeTracer()` is asked once, when a server or
 * client is built, and with no SDK registered no tracing interceptor is
 * installed at all (no span object, no context switch per call). Register
 * the SDK before creating servers and clients, as with any instrumentation.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import {
  context,
  createTraceState,
  isSpanContextValid,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from "@opentelemetry/api";
import type { ServerInterceptor } from "../contract/call.ts";
import { callerCode } from "../wire/downstream.ts";
import { currentCallScope } from "../observability/call-scope.ts";
import { TRACEPARENT_HEADER } from "../observability/headers.ts";

export const TRACESTATE_HEADER = "tracestate";
const TRACER_NAME = "@tickettoken/rpc";
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The tracer of the registered SDK, or undefined when none is registered (then install nothing). */
export function activeTracer(): Tracer | undefined {
  const provider = trace.getTracerProvider();
  // The API answers a proxy whether or not an SDK is behind it; only a delegate makes real spans.
  if (provider instanceof ProxyTracerProvider) return provider.getDelegateTracer(TRACER_NAME);
  return provider.getTracer(TRACER_NAME);
}

const attributesByMethod = new WeakMap<DescMethod, Attributes>();

/** RPC semantic-convention attributes of a method (built once per method). */
function rpcAttributes(method: DescMethod): Attributes {
  let a = attributesByMethod.get(method);
  if (a === undefined) {
    a = { "rpc.system": "grpc", "rpc.service": method.parent.typeName, "rpc.method": method.name };
    attributesByMethod.set(method, a);
  }
  return a;
}

function spanName(method: DescMethod): string {
  return `${method.parent.typeName}/${method.name}`;
}

/** A context whose parent is the remote span a W3C traceparent names (ROOT_CONTEXT if absent or invalid). */
export function remoteParent(traceparent: string | null | undefined, tracestate?: string | null): Context {
  const m = traceparent ? TRACEPARENT.exec(traceparent) : null;
  if (!m) return ROOT_CONTEXT;
  const spanContext = {
    traceId: m[1]!,
    spanId: m[2]!,
    traceFlags: parseInt(m[3]!, 16),
    isRemote: true,
    ...(tracestate ? { traceState: createTraceState(tracestate) } : {}),
  };
  return isSpanContextValid(spanContext) ? trace.setSpanContext(ROOT_CONTEXT, spanContext) : ROOT_CONTEXT;
}

/** Server spans are errors only for codes that say the server failed (OpenTelemetry gRPC conventions). */
const SERVER_ERROR_CODES = new Set<number>([Code.Unknown, Code.DeadlineExceeded, Code.Unimplemented, Code.Internal, Code.Unavailable, Code.DataLoss]);

function endSpan(span: Span, code: Code | 0, kind: SpanKind): void {
  span.setAttribute("rpc.grpc.status_code", code);
  if (code !== 0 && (kind === SpanKind.CLIENT || SERVER_ERROR_CODES.has(code))) {
    // The code's name only: a status message may carry details the caller must not see.
    span.setStatus({ code: SpanStatusCode.ERROR, message: Code[code] });
  }
  span.end();
}

function clientCode(err: unknown): Code {
  return err instanceof ConnectError ? err.code : Code.Unknown;
}

/**
 * The server span, outermost in the chain (so it covers authentication):
 * child of the caller's traceparent, active while the handler runs so the
 * calls it makes become its children.
 */
export function serverTracingInterceptor(tracer: Tracer): ServerInterceptor {
  return (next) => async (call) => {
    const headers = call.context.requestHeader;
    const parent = remoteParent(headers.get(TRACEPARENT_HEADER), headers.get(TRACESTATE_HEADER));
    const span = tracer.startSpan(spanName(call.method), { kind: SpanKind.SERVER, attributes: rpcAttributes(call.method) }, parent);
    const active = trace.setSpan(parent, span);
    let result;
    try {
      result = await context.with(active, next, undefined, call);
    } catch (err) {
      // The code the caller gets (a dependency's failure is answered as this server's own).
      endSpan(span, callerCode(err), SpanKind.SERVER);
      throw err;
    }
    if (result.kind === "unary") {
      endSpan(span, 0, SpanKind.SERVER);
      return result;
    }
    return { kind: "stream", messages: tracedStream(result.messages, span, active, SpanKind.SERVER) };
  };
}

/** A stream's span ends with the stream; its messages are produced with the span active. */
async function* tracedStream<T>(messages: AsyncIterable<T>, span: Span, active: Context, kind: SpanKind): AsyncGenerator<T> {
  const codeOf = kind === SpanKind.SERVER ? callerCode : clientCode;
  const it = messages[Symbol.asyncIterator]();
  let code: Code | 0 = Code.Canceled;
  try {
    for (;;) {
      const r = await context.with(active, () => it.next());
      if (r.done) break;
      yield r.value;
    }
    code = 0;
  } catch (err) {
    code = codeOf(err);
    throw err;
  } finally {
    if (code === Code.Canceled) await it.return?.();
    endSpan(span, code, kind);
  }
}

/**
 * The parent of an outgoing call's span: the active span (the server span of
 * the call being served, when a context manager carries it), else an explicit
 * traceparent header, else the served call's incoming traceparent.
 */
function outgoingParent(header: Headers): Context {
  const active = context.active();
  const activeSpan = trace.getSpan(active);
  if (activeSpan !== undefined && isSpanContextValid(activeSpan.spanContext())) return active;
  const explicit = header.get(TRACEPARENT_HEADER);
  if (explicit !== null) return remoteParent(explicit, header.get(TRACESTATE_HEADER));
  return remoteParent(currentCallScope()?.traceparent);
}

/**
 * The client span, outermost in the client chain (so it covers retries and
 * fallbacks); writes the traceparent (this span's id) that the next hop's
 * server span takes as its parent.
 */
export function clientTracingInterceptor(tracer: Tracer): Interceptor {
  return (next) => async (req) => {
    const parent = outgoingParent(req.header);
    const span = tracer.startSpan(spanName(req.method), { kind: SpanKind.CLIENT, attributes: rpcAttributes(req.method) }, parent);
    const sc = span.spanContext();
    // Otherwise (no valid ids) the propagation interceptor writes one as it does without tracing.
    if (isSpanContextValid(sc)) {
      req.header.set(TRACEPARENT_HEADER, `00-${sc.traceId}-${sc.spanId}-${sc.traceFlags.toString(16).padStart(2, "0")}`);
      const state = sc.traceState?.serialize();
      if (state) req.header.set(TRACESTATE_HEADER, state);
    }
    const active = trace.setSpan(parent, span);
    let res;
    try {
      res = await context.with(active, next, undefined, req);
    } catch (err) {
      endSpan(span, clientCode(err), SpanKind.CLIENT);
      throw err;
    }
    if (!res.stream) {
      endSpan(span, 0, SpanKind.CLIENT);
      return res;
    }
    return { ...res, message: tracedStream(res.message, span, active, SpanKind.CLIENT) } as typeof res;
  };
}
