/**
 * Per-listener resource bounds, with their defaults. Every one of them is
 * something a peer could otherwise grow without limit: connections, time to
 * finish a handshake, streams per connection, header bytes, idle streams.
 */
export interface ListenerLimits {
  /** Concurrent TCP connections per listener; further ones are closed on accept. */
  readonly maxConnections: number;
  /** A connection that has not completed its TLS handshake by then is closed. */
  readonly handshakeTimeoutMs: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS advertised (and enforced) per connection. */
  readonly maxConcurrentStreams: number;
  /** HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE: largest header block accepted (and, on the Connect port, sent). */
  readonly maxHeaderListSize: number;
  /** Connect port: a stream with no frames in either direction for this long is reset; gRPC port: the same, until its request is complete. */
  readonly streamIdleTimeoutMs: number;
}

export const DEFAULT_LISTENER_LIMITS: ListenerLimits = {
  maxConnections: 4096,
  handshakeTimeoutMs: 5_000,
  maxConcurrentStreams: 100,
  // Call token (<= 4 KiB) + context token + ordinary metadata fit with room to spare.
  maxHeaderListSize: 16 * 1024,
  streamIdleTimeoutMs: 30_000,
};

export function listenerLimits(overrides: Partial<ListenerLimits> = {}): ListenerLimits {
  const limits = { ...DEFAULT_LISTENER_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value <= 0) throw new Error(`limits.${name} must be a positive integer, got ${String(value)}`);
  }
  return limits;
}
