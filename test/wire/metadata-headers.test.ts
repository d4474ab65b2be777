/**
 * MetadataHeaders (the served call's request headers, converted lazily) must
 * answer exactly as the `Headers` copy it replaces: same values, same
 * iteration, same errors, whichever method is called first.
 */
import { describe, expect, it } from "vitest";
import { Metadata } from "@grpc/grpc-js";
import { MetadataHeaders, metadataToHeaders } from "../../src/runtime/wire/metadata.ts";

function sample(): Metadata {
  const md = new Metadata();
  md.add("authorization", "Bearer aaa.bbb.ccc");
  md.add("tt-context", "x.y.z");
  md.add("x-repeated", "one");
  md.add("x-repeated", "two");
  md.add("x-spaced", "inner value");
  md.add("trace-bin", Buffer.from([0, 1, 2, 255]));
  return md;
}

const snapshot = (h: Headers) => [...h];

describe("MetadataHeaders", () => {
  it("answers get and has like the converted Headers, for present, repeated, binary, missing and mixed-case names", () => {
    const lazy = new MetadataHeaders(sample());
    const eager = metadataToHeaders(sample());
    for (const name of ["authorization", "tt-context", "x-repeated", "x-spaced", "trace-bin", "missing", "Authorization", "X-REPEATED"]) {
      expect(lazy.get(name), name).toBe(eager.get(name));
      expect(lazy.has(name), name).toBe(eager.has(name));
    }
    expect(new MetadataHeaders(sample()).get("x-repeated")).toBe("one, two");
  });

  it("iterates, copies and spreads like the converted Headers, before and after single reads", () => {
    const eager = snapshot(metadataToHeaders(sample()));
    expect(snapshot(new MetadataHeaders(sample()))).toEqual(eager);
    const read = new MetadataHeaders(sample());
    read.get("authorization");
    expect(snapshot(read)).toEqual(eager);
    expect([...new Headers(new MetadataHeaders(sample()))]).toEqual(eager);
    const seen: [string, string][] = [];
    new MetadataHeaders(sample()).forEach((v, k) => seen.push([k, v]));
    expect(seen).toEqual(eager);
    expect([...new MetadataHeaders(sample()).keys()]).toEqual(eager.map(([k]) => k));
    expect([...new MetadataHeaders(sample()).values()]).toEqual(eager.map(([, v]) => v));
    expect(new MetadataHeaders(sample()).getSetCookie()).toEqual([]);
  });

  it("keeps every metadata value when changed first, and reads the change back", () => {
    const h = new MetadataHeaders(sample());
    h.set("x-repeated", "three");
    h.append("x-new", "v");
    h.delete("tt-context");
    expect(h.get("x-repeated")).toBe("three");
    expect(h.get("x-new")).toBe("v");
    expect(h.has("tt-context")).toBe(false);
    expect(h.get("authorization")).toBe("Bearer aaa.bbb.ccc");
  });

  it("hands values Headers would normalise or refuse to the real conversion (same result or same error)", () => {
    const padded = new Metadata();
    padded.add("x-padded", "  value ");
    expect(new MetadataHeaders(padded).get("x-padded")).toBe(metadataToHeaders(padded).get("x-padded"));
    const bad = new Metadata();
    // Not a value grpc-js would accept from the wire, set directly: Headers refuses it.
    (bad as unknown as { internalRepr: Map<string, unknown[]> }).internalRepr.set("x-bad", ["a\nb"]);
    expect(() => metadataToHeaders(bad)).toThrow(TypeError);
    expect(() => new MetadataHeaders(bad).get("x-bad")).toThrow(TypeError);
    expect(() => new MetadataHeaders(bad).get("bad name")).toThrow(TypeError);
  });
});
