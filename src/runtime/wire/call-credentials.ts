import { createContextKey } from "@connectrpc/connect";

/**
 * Hands one attempt's call token (and a context token taken from the call
 * scope) from the client's call-token interceptor straight to the transport,
 * which puts them into its own metadata, instead of through the request's
 * `Headers`: undici checks every character of every value a `Headers` takes
 * (~1.3 KB of tokens per call, the largest client-side `Headers` cost in the
 * issue #12 profiles), and the transport then copies them out again. Only a
 * transport that says so (`directCredentialsKey` set in the call's context
 * values) gets them this way; with any other transport the interceptor sets
 * the headers as before. Keyed by the request object the interceptor passes
 * on (the transport's `next` receives that very object), so concurrent calls
 * sharing context values cannot mix them up. The interceptor is innermost
 * (service-client.ts); an interceptor put after it that replaced the request
 * object would lose them, and the call would fail UNAUTHENTICATED (closed).
 */
export const directCredentialsKey = createContextKey<boolean>(false, { description: "tt-rpc transport takes call credentials directly" });

export interface CallCredentials {
  /** The `authorization` value ("Bearer <call token>"). */
  readonly authorization: string;
  /** The `tt-context` value, when the request headers carry none. */
  readonly contextToken: string | undefined;
}

const pending = new WeakMap<object, CallCredentials>();

export function passCallCredentials(req: object, credentials: CallCredentials): void {
  pending.set(req, credentials);
}

/** The credentials passed with `req`, once (a retry's next attempt brings its own). */
export function takeCallCredentials(req: object): CallCredentials | undefined {
  const credentials = pending.get(req);
  if (credentials !== undefined) pending.delete(req);
  return credentials;
}
