/**
 * grpcurl is not installable here, so a grpcurl command from the README (or
 * the mesh banner) is checked in two halves: its arguments are parsed the way
 * grpcurl (Go's flag package) parses them, against grpcurl's real flag set
 * and arities, and its `buf curl` twin, derived mechanically from the parsed
 * flags, is what the test runs against the live server.
 */
import { shellWords } from "./readme-blocks.ts";

/** grpcurl's flags that take a value (grpcurl 1.9 `-help`). */
const VALUE_FLAGS = new Set([
  "cacert", "cert", "key", "H", "rpc-header", "reflect-header", "d", "authority", "servername", "connect-timeout",
  "max-time", "max-msg-sz", "keepalive-time", "import-path", "proto", "protoset", "protoset-out", "proto-out-dir",
  "format", "user-agent", "alts-handshaker-service", "alts-target-service-account",
]);
/** grpcurl's boolean flags (`-flag` or `-flag=true|false`). */
const BOOL_FLAGS = new Set([
  "plaintext", "insecure", "unix", "use-reflection", "emit-defaults", "allow-unknown-fields", "format-error",
  "msg-template", "expand-headers", "alts", "v", "vv", "help", "version",
]);

export interface GrpcurlFlag {
  readonly name: string;
  /** The value as the shell passes it (quotes removed). */
  readonly value: string | undefined;
  /** The value's text as written in the command (quotes and $(...) kept), for the twin. */
  readonly raw: string | undefined;
}

export interface GrpcurlCommand {
  readonly flags: readonly GrpcurlFlag[];
  readonly address: string;
  readonly verb: "list" | "describe" | "invoke";
  /** list/describe: the optional symbol; invoke: the method (`pkg.Service/Method` or `pkg.Service.Method`). */
  readonly symbol: string | undefined;
}

/** Parses one grpcurl command; throws with the reason grpcurl would refuse it (or misread it). */
export function parseGrpcurl(command: string): GrpcurlCommand {
  const words = shellWords(command);
  if (words[0]?.value !== "grpcurl") throw new Error(`not a grpcurl command: ${command}`);
  const flags: GrpcurlFlag[] = [];
  let i = 1;
  for (; i < words.length; i++) {
    const w = words[i]!.value;
    if (w === "--") {
      i++;
      break;
    }
    if (!w.startsWith("-") || w === "-") break; // Go's flag package stops at the first non-flag
    const m = /^--?([A-Za-z][\w-]*)(?:=(.*))?$/s.exec(w);
    if (!m) throw new Error(`malformed flag ${w}`);
    const name = m[1]!;
    if (BOOL_FLAGS.has(name)) {
      if (m[2] !== undefined && !/^(true|false|1|0)$/.test(m[2])) throw new Error(`-${name} is boolean, got ${m[2]}`);
      flags.push({ name, value: m[2], raw: m[2] });
    } else if (VALUE_FLAGS.has(name)) {
      if (m[2] !== undefined) {
        flags.push({ name, value: m[2], raw: m[2] });
      } else {
        const next = words[++i];
        if (!next) throw new Error(`-${name} needs a value`);
        flags.push({ name, value: next.value, raw: next.raw });
      }
    } else {
      throw new Error(`grpcurl has no flag -${name}`);
    }
  }
  const rest = words.slice(i).map((w) => w.value);
  for (const r of rest) if (r.startsWith("-")) throw new Error(`flag ${r} after the address: grpcurl would read it as an argument`);
  for (const f of flags) {
    if ((f.name === "H" || f.name === "rpc-header" || f.name === "reflect-header") && !/^[A-Za-z0-9-]+:\s*\S/.test(f.value!)) {
      throw new Error(`-${f.name} "${f.value}" is not "name: value"`);
    }
    if (f.name === "d" && f.value !== "@" && !f.value!.includes("$(")) JSON.parse(f.value!);
  }
  const plaintext = flags.some((f) => f.name === "plaintext" && f.value !== "false");
  if (plaintext && flags.some((f) => ["cacert", "cert", "key"].includes(f.name))) throw new Error("-plaintext with TLS flags");
  const [address, second, third, ...extra] = rest;
  if (!address || !/^[\w.-]+:\d+$|^\$\w+$/.test(address)) throw new Error(`expected host:port, got ${address ?? "nothing"}`);
  if (extra.length > 0) throw new Error(`too many arguments: ${extra.join(" ")}`);
  if (second === "list" || second === "describe") return { flags, address, verb: second, symbol: third };
  if (!second) throw new Error("no method, list or describe after the address");
  if (third !== undefined) throw new Error(`unexpected argument after the method: ${third}`);
  if (!/^[\w.]+[/.]\w+$/.test(second)) throw new Error(`not a method name: ${second}`);
  return { flags, address, verb: "invoke", symbol: second };
}

/**
 * The `buf curl` command doing what the grpcurl command does, as shell text
 * (values keep their quoting, so inline `$(...)` tokens still run): the same
 * certificate files; `-rpc-header` -> `-H` (the call only), `-H` -> `-H` and
 * `--reflect-header`, `-reflect-header` -> `--reflect-header`; `-d` as is;
 * `list` -> `--list-services` (with a symbol, or `describe`: `--list-methods`,
 * whose output the caller checks for the symbol: buf curl cannot describe).
 */
export function bufCurlTwin(command: string): { command: string; verb: GrpcurlCommand["verb"]; symbol: string | undefined } {
  const g = parseGrpcurl(command);
  const plaintext = g.flags.some((f) => f.name === "plaintext" && f.value !== "false");
  const out = ["npx buf curl", "--protocol grpc"];
  if (plaintext) out.push("--http2-prior-knowledge");
  for (const f of g.flags) {
    switch (f.name) {
      case "cacert":
      case "cert":
      case "key":
        out.push(`--${f.name} ${f.raw}`);
        break;
      case "rpc-header":
        out.push(`-H ${f.raw}`);
        break;
      case "H":
        out.push(`-H ${f.raw}`, `--reflect-header ${f.raw}`);
        break;
      case "reflect-header":
        out.push(`--reflect-header ${f.raw}`);
        break;
      case "d":
        out.push(`-d ${f.raw}`);
        break;
      case "plaintext":
        break;
      default:
        throw new Error(`no buf curl twin for grpcurl -${f.name}`);
    }
  }
  const base = `${plaintext ? "http" : "https"}://${g.address}`;
  if (g.verb === "list" && g.symbol === undefined) out.push("--list-services", base);
  else if (g.verb !== "invoke") out.push("--list-methods", base);
  else out.push(`${base}/${g.symbol!.includes("/") ? g.symbol : g.symbol!.replace(/\.(\w+)$/, "/$1")}`);
  return { command: out.join(" "), verb: g.verb, symbol: g.symbol };
}
