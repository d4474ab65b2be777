/**
 * The ops port: plain HTTP, separate from the mTLS RPC ports, for what
 * kubelet and Prometheus reach. It serves exactly three paths, GET only:
 *
 *   /metrics  Prometheus text from the metrics registry
 *   /healthz  liveness: 200 whenever the event loop answers
 *   /readyz   readiness: 200 when every check passes, else 503
 *
 * Anything else is 404 (405 for another method on one of the three). No
 * RPC, no reflection, no secret and no per-tenant data: the body of /readyz
 * names each check and its outcome, never an error's text (that goes to the log).
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Logger } from "../observability/logger.ts";

/**
 * One readiness condition. Passing: resolves (to anything but `false`).
 * Failing: throws, rejects, resolves `false`, or outlasts the timeout.
 * Check only what this service needs to answer at all (its own store, its
 * material), never a downstream service: a dependency being down must not
 * take every caller's replicas out of the load balancer with it.
 */
export interface ReadinessCheck {
  readonly name: string;
  check(signal: AbortSignal): unknown;
}

export interface OpsOptions {
  /** 0 picks a free port. */
  readonly port: number;
  /** Bind address (default 127.0.0.1: reachable from the pod, e.g. by kubelet, only when set to the pod's address or 0.0.0.0). */
  readonly host?: string;
  /** Extra readiness checks (e.g. the shared store is reachable); run in parallel on each /readyz. */
  readonly readiness?: readonly ReadinessCheck[];
  /** Each readiness check's time limit (default 1 s). */
  readonly readinessTimeoutMs?: number;
}

export interface OpsServerOptions extends OpsOptions {
  readonly registry: Registry;
  readonly logger: Logger;
}

export interface OpsServer {
  /** The bound port and address. */
  readonly port: number;
  readonly host: string;
  /** Stops listening and drops open (keep-alive) connections. */
  close(): Promise<void>;
}

const PATHS = new Set(["/metrics", "/healthz", "/readyz"]);
const DEFAULT_READINESS_TIMEOUT_MS = 1000;
const MAX_CONNECTIONS = 64;

type Outcome = "ok" | "fail" | "timeout";

/** Runs one check with its time limit; never rejects. */
async function runCheck(c: ReadinessCheck, timeoutMs: number, logger: Logger): Promise<Outcome> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve("timeout");
    }, timeoutMs);
  });
  const ran = (async (): Promise<Outcome> => ((await c.check(controller.signal)) === false ? "fail" : "ok"))().catch((err: unknown) => {
    logger.warn({ check: c.name, err }, "readiness check failed");
    return "fail" as const;
  });
  try {
    const outcome = await Promise.race([ran, timedOut]);
    if (outcome === "timeout") logger.warn({ check: c.name, timeoutMs }, "readiness check timed out");
    return outcome;
  } finally {
    clearTimeout(timer);
  }
}

export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const { registry, logger } = options;
  const host = options.host ?? "127.0.0.1";
  const checks = options.readiness ?? [];
  const timeoutMs = options.readinessTimeoutMs ?? DEFAULT_READINESS_TIMEOUT_MS;

  async function readyz(res: ServerResponse): Promise<void> {
    const outcomes = await Promise.all(checks.map((c) => runCheck(c, timeoutMs, logger)));
    const ready = outcomes.every((o) => o === "ok");
    const body = checks.map((c, i) => `${c.name}: ${outcomes[i]}`).join("\n");
    send(res, ready ? 200 : 503, `${ready ? "ready" : "not ready"}\n${body}\n`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "").split("?", 1)[0]!;
    if (!PATHS.has(path)) return send(res, 404, "not found\n");
    if (req.method !== "GET") {
      res.setHeader("allow", "GET");
      return send(res, 405, "method not allowed\n");
    }
    if (path === "/healthz") return send(res, 200, "ok\n");
    if (path === "/readyz") return readyz(res);
    send(res, 200, await registry.metrics(), registry.contentType);
  }

  const server = createHttpServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err, path: req.url }, "ops request failed");
      if (!res.headersSent) send(res, 500, "internal error\n");
      else res.destroy();
    });
    // A request body is never read: drain it so the connection stays usable.
    req.resume();
  });
  // Prometheus and kubelet need a handful; more is someone else.
  server.maxConnections = MAX_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  logger.info({ opsPort: bound.port, host: bound.address }, "ops server listening");

  let closing: Promise<void> | undefined;
  return {
    port: bound.port,
    host: bound.address,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function send(res: ServerResponse, status: number, body: string, contentType = "text/plain; charset=utf-8"): void {
  res.writeHead(status, { "content-type": contentType, "cache-control": "no-store", "content-length": Buffer.byteLength(body) });
  res.end(body);
}
