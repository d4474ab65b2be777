/**
 * One benchmark client process (forked by bench/run.ts): argv = config id,
 * PKI dir, server port, context token. Opens one mTLS HTTP/2 connection per
 * caller identity and, on {cmd:"run"}, drives a case at a concurrency and
 * answers with wall time, latency percentiles, its CPU time and peak RSS.
 */
import { performance } from "node:perf_hooks";
import type { KeyObject } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createMaterialSource } from "../src/runtime/identity/material.ts";
import { workloadSpiffeId } from "../src/runtime/identity/spiffe-id.ts";
import { closeClient } from "../src/runtime/client/service-client.ts";
import { createTicketServiceClient } from "../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { clientJwtInterceptor } from "./jwt-peer.ts";
import { grpcPeerClient } from "./grpc-peer.ts";
import { channelBoundCredentials, clientMacInterceptor, connected } from "./mac-peer.ts";
import {
  CONFIGS,
  largeRequest,
  SERVER,
  smallRequest,
  STREAM_CALLER,
  STREAM_MESSAGES,
  streamRequest,
  TicketService,
  UNARY_CALLER,
  uriSan,
  type ConfigId,
} from "./shared.ts";

export type CaseKind = "unary" | "large" | "stream";
export interface RunRequest {
  cmd: "run";
  kind: CaseKind;
  concurrency: number;
  calls: number;
}
export interface RunResult {
  calls: number;
  errors: number;
  firstError?: string;
  wallNs: number;
  cpuUs: number;
  latencyUs: { p50: number; p99: number; p999: number };
  maxRssKb: number;
}

const [config, certs, portArg, contextToken] = process.argv.slice(2) as [ConfigId, string, string, string];
if (!CONFIGS.includes(config)) throw new Error(`unknown config ${config}`);
const address = `127.0.0.1:${portArg}`;
const expectedServer = workloadSpiffeId(SERVER);
const unaryMaterial = await createMaterialSource({ dir: certs, workload: UNARY_CALLER, pollMs: 0 });
const um = unaryMaterial.current();

type Call = (kind: CaseKind) => Promise<number>;
let call: Call;
let close: () => void;

if (config === "a" || config === "b" || config === "e") {
  const bound = config === "e" ? channelBoundCredentials : undefined;
  let macKey: () => KeyObject | undefined = () => undefined;
  const interceptors =
    config === "b" ? [await clientJwtInterceptor(um.workload.spiffeId, expectedServer, um.workload.jwt.current)]
    : config === "e" ? [clientMacInterceptor(() => macKey())]
    : [];
  const client = grpcPeerClient(um, address, expectedServer, SERVER, interceptors, bound && ((creds) => {
    const b = bound(creds);
    macKey = b.key;
    return b.credentials;
  }));
  if (config === "e") await connected(client);
  call = (kind) =>
    new Promise((resolve, reject) => {
      if (kind === "stream") {
        let n = 0;
        client
          .listTicketsByEvent(streamRequest)
          .on("data", () => n++)
          .on("error", reject)
          .on("end", () => resolve(n));
      } else {
        client.getTicketStatus(kind === "large" ? largeRequest : smallRequest, (err) => (err ? reject(err) : resolve(1)));
      }
    });
  close = () => client.close();
} else if (config === "c") {
  const transport = createGrpcTransport({
    baseUrl: `https://${address}`,
    nodeOptions: {
      ca: um.bundle.caPem,
      cert: um.workload.certPem,
      key: um.workload.keyPem,
      checkServerIdentity: (_host, cert) => (uriSan(cert.subjectaltname) === expectedServer ? undefined : new Error("unexpected server identity")),
    },
  });
  const client = createClient(TicketService, transport);
  call = async (kind) => {
    if (kind !== "stream") return (await client.getTicketStatus(kind === "large" ? largeRequest : smallRequest), 1);
    let n = 0;
    for await (const _ of client.listTicketsByEvent(streamRequest)) n++;
    return n;
  };
  close = () => {};
} else {
  const streamMaterial = await createMaterialSource({ dir: certs, workload: STREAM_CALLER, pollMs: 0 });
  // Default resilience limits except the bulkhead, raised above the highest concurrency measured (256).
  const resilience = { bulkheadLimit: 512 };
  const unary = createTicketServiceClient({ identity: unaryMaterial, address, resilience });
  const stream = createTicketServiceClient({ identity: streamMaterial, address, resilience });
  const options = { headers: { "tt-context": contextToken } };
  call = async (kind) => {
    if (kind !== "stream") return (await unary.getTicketStatus(kind === "large" ? largeRequest : smallRequest, options), 1);
    let n = 0;
    for await (const _ of stream.listTicketsByEvent(streamRequest, options)) n++;
    return n;
  };
  close = () => {
    closeClient(unary);
    closeClient(stream);
    streamMaterial.close();
  };
}

const expectedItems = (kind: CaseKind) => (kind === "stream" ? STREAM_MESSAGES : 1);

/** Nearest-rank percentile of sorted samples. */
const pct = (sorted: Float64Array, q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;

async function run({ kind, concurrency, calls }: RunRequest): Promise<RunResult> {
  const lat = new Float64Array(calls);
  let issued = 0;
  let done = 0;
  let errors = 0;
  let firstError: string | undefined;
  const worker = async () => {
    while (issued < calls) {
      issued++;
      const t = performance.now();
      try {
        const items = await call(kind);
        if (items !== expectedItems(kind)) throw new Error(`got ${items} messages, expected ${expectedItems(kind)}`);
      } catch (err) {
        errors++;
        firstError ??= String((err as Error).message ?? err);
      }
      lat[done++] = (performance.now() - t) * 1000;
    }
  };
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wallNs = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(c0);
  lat.sort();
  return {
    calls,
    errors,
    ...(firstError ? { firstError } : {}),
    wallNs,
    cpuUs: cpu.user + cpu.system,
    latencyUs: { p50: pct(lat, 0.5), p99: pct(lat, 0.99), p999: pct(lat, 0.999) },
    maxRssKb: process.resourceUsage().maxRSS,
  };
}

process.on("message", async (msg: RunRequest | { cmd: "stats" | "stop" }) => {
  if (msg.cmd === "run") process.send!(await run(msg));
  else if (msg.cmd === "stats") process.send!({ maxRssKb: process.resourceUsage().maxRSS });
  else {
    close();
    unaryMaterial.close();
    process.exit(0);
  }
});
process.send!({ ready: true });
