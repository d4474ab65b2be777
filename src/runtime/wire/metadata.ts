/**
 * Converts between grpc-js Metadata and the Fetch `Headers` the connect-es
 * API (and our interceptors) use. Binary (-bin) values travel base64-encoded
 * in Headers, as connect-es does.
 */
import { Metadata } from "@grpc/grpc-js";

// Headers the HTTP/2 layer owns; never copied into user-visible metadata.
const RESERVED = new Set(["content-type", "te", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "user-agent"]);

export function headersToMetadata(headers: Headers): Metadata {
  const md = new Metadata();
  headers.forEach((value, key) => {
    if (RESERVED.has(key) || key.startsWith(":")) return;
    if (key.endsWith("-bin")) {
      // Headers joins repeated values with ", "; base64 never contains a comma.
      for (const part of value.split(",")) md.add(key, Buffer.from(part.trim(), "base64"));
    } else {
      md.add(key, value);
    }
  });
  return md;
}

export function metadataToHeaders(md: Metadata): Headers {
  return appendMetadata(new Headers(), md);
}

/** Appends every metadata value to `headers` (binary values base64); returns `headers`. */
export function appendMetadata(headers: Headers, md: Metadata): Headers {
  const map = md.getMap();
  for (const key of Object.keys(map)) {
    for (const value of md.get(key)) {
      headers.append(key, typeof value === "string" ? value : Buffer.from(value).toString("base64"));
    }
  }
  return headers;
}

/** `Headers` with its members typed as methods (the DOM typings declare them as properties, which a subclass cannot override). */
interface HeadersMethods {
  get(name: string): string | null;
  has(name: string): boolean;
  append(name: string, value: string): void;
  set(name: string, value: string): void;
  delete(name: string): void;
  getSetCookie(): string[];
  forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void;
  entries(): ReturnType<Headers["entries"]>;
  keys(): ReturnType<Headers["keys"]>;
  values(): ReturnType<Headers["values"]>;
  [Symbol.iterator](): ReturnType<Headers["entries"]>;
}
type HeadersClass = new () => HeadersMethods;

/** A header name as the code asks for it (lowercase token): answered from the metadata without converting it. */
const LOWERCASE_TOKEN = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
/** A value `Headers` would store unchanged: printable ASCII, no leading or trailing space. */
const PLAIN_VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/;

/**
 * The request headers of a served gRPC call, as `Headers` over the call's
 * Metadata, converted only when needed. A call carries ~1.3 KB of token
 * headers, and `Headers` checks every character of every value it takes
 * (undici's ByteString conversion, ~10-15 µs per call on the server in the
 * issue #12 profiles), while the chain only reads a few single values.
 * `get`/`has` of a lowercase name whose values `Headers` would keep as they
 * are read the metadata directly (same answer: values joined with ", ");
 * anything else (other methods, `-bin` names, odd names or values) first
 * copies the metadata into this object, so it then behaves exactly as a
 * `Headers` built by `metadataToHeaders`, errors included.
 */
export class MetadataHeaders extends (Headers as unknown as HeadersClass) {
  #md: Metadata | undefined;

  constructor(md: Metadata) {
    super();
    this.#md = md;
  }

  #fill(): void {
    const md = this.#md;
    if (md === undefined) return;
    this.#md = undefined;
    appendMetadata(this as unknown as Headers, md);
  }

  /** The joined values if the metadata can answer `name` as `Headers` would, else undefined (convert). */
  #direct(name: string): string | null | undefined {
    if (this.#md === undefined || !LOWERCASE_TOKEN.test(name) || name.endsWith("-bin")) return undefined;
    const values = this.#md.get(name);
    if (values.length === 0) return null;
    for (const v of values) if (typeof v !== "string" || !PLAIN_VALUE.test(v)) return undefined;
    return values.length === 1 ? (values[0] as string) : values.join(", ");
  }

  override get(name: string): string | null {
    const direct = this.#direct(name);
    if (direct !== undefined) return direct;
    this.#fill();
    return super.get(name);
  }

  override has(name: string): boolean {
    const direct = this.#direct(name);
    if (direct !== undefined) return direct !== null;
    this.#fill();
    return super.has(name);
  }

  override append(name: string, value: string): void {
    this.#fill();
    super.append(name, value);
  }

  override set(name: string, value: string): void {
    this.#fill();
    super.set(name, value);
  }

  override delete(name: string): void {
    this.#fill();
    super.delete(name);
  }

  override getSetCookie(): string[] {
    this.#fill();
    return super.getSetCookie();
  }

  override forEach(callback: (value: string, key: string, parent: Headers) => void, thisArg?: unknown): void {
    this.#fill();
    super.forEach(callback, thisArg);
  }

  override entries(): ReturnType<Headers["entries"]> {
    this.#fill();
    return super.entries();
  }

  override keys(): ReturnType<Headers["keys"]> {
    this.#fill();
    return super.keys();
  }

  override values(): ReturnType<Headers["values"]> {
    this.#fill();
    return super.values();
  }

  // Own iterator (not Headers.prototype.entries): undici then copies this object through it, never from its empty internal list.
  override [Symbol.iterator](): ReturnType<Headers["entries"]> {
    this.#fill();
    return super.entries();
  }
}
