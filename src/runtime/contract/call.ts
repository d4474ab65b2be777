/**
 * The server call model shared by every wire adapter: whichever library
 * carries the bytes (grpc-js for gRPC, connect-node for the Connect protocol),
 * a call reaches the framework's interceptor chain in this one shape, so
 * authentication, policies and logging never depend on the wire stack.
 */
import type { DescMethod, DescService, Message } from "@bufbuild/protobuf";
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { MethodContract } from "./types.ts";

/** What the transport knows about the other end of the connection. */
export interface PeerInfo {
  /** "ip:port" of the peer. */
  readonly address: string;
  /** The verified client certificate (DER + SHA-256 fingerprint), if the connection is mTLS. */
  certificate(): { readonly raw: Uint8Array; readonly fingerprint256?: string } | undefined;
}

export const peerKey = createContextKey<PeerInfo | undefined>(undefined, { description: "tt-rpc peer" });

export interface ServerCall {
  readonly service: DescService;
  readonly method: DescMethod;
  readonly contract: MethodContract;
  /**
   * The decoded request message (unary and server-streaming calls). Adapters
   * that receive bytes leave it undefined and set `encodedRequest`; the
   * security interceptor decodes only after authentication, so every
   * interceptor after it sees the decoded message.
   */
  readonly request: Message | undefined;
  /** The request's bytes, not yet decoded (grpc-js adapter, before authentication). */
  readonly encodedRequest?: Uint8Array;
  /** Absolute deadline (epoch ms) of the call, if the caller set one (both adapters set it). */
  readonly deadline?: number | undefined;
  /** The request messages of a bidi-streaming call (e.g. server reflection). */
  readonly requests?: AsyncIterable<Message>;
  /**
   * Headers, trailers, signal, deadline and context values (connect-es
   * HandlerContext). `signal` aborts only on the caller's cancellation
   * (reason Code.Canceled), the deadline (Code.DeadlineExceeded) or a forced
   * shutdown, never when the call completes normally.
   */
  readonly context: HandlerContext;
  readonly peer: PeerInfo | undefined;
  /** "grpc" or "connect": which protocol carried the call. */
  readonly protocol: string;
}

export type CallResult =
  | { readonly kind: "unary"; readonly message: Message }
  | { readonly kind: "stream"; readonly messages: AsyncIterable<Message> };

export type ServerNext = (call: ServerCall) => Promise<CallResult>;

/** A server interceptor is plain function composition: it wraps `next`. */
export type ServerInterceptor = (next: ServerNext) => ServerNext;

/** Applies interceptors so the first one listed runs first (outermost). */
export function chainInterceptors(handler: ServerNext, interceptors: readonly ServerInterceptor[]): ServerNext {
  return interceptors.reduceRight<ServerNext>((next, interceptor) => interceptor(next), handler);
}
