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
