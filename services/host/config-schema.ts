/**
 * Every setting the runtime reads from the environment, in one table: name,
 * type, default, accepted form, a line of doc, and whether it exists once
 * (global) or once per called service (per target). The checks are the
 * parsers the code itself uses (parseRpcAddress, parseRedisUrl, the
 * resilience limits), so the schema cannot accept what the code refuses.
 * load.ts validates a whole environment against it at start-up; docs.ts
 * renders the README's Configuration table from it.
 */
import { isIP } from "node:net";
import { serviceContracts } from "@tickettoken/contracts";
import { addressEnvKey, addressVariable, isHostName, parseRpcAddress, parseServiceUrl } from "@tickettoken/rpc/host";
import { LIMIT_SETTINGS, envPrefix, limitForm, limitInRange, DEFAULT_LIMITS, type ResilienceLimits } from "@tickettoken/rpc/host";
import { parseRedisUrl, timeoutFromEnv, REDIS_CLIENT_DEFAULTS, type RedisConnection } from "@tickettoken/rpc/host";
import { DEFAULT_MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES_FORM, MAX_MESSAGE_BYTES_VARIABLE, parseMaxMessageBytes } from "@tickettoken/rpc/host";
import { fakeConfirmationMs } from "../minting/solana.ts";
import { DEFAULT_CERTS_DIR } from "@tickettoken/rpc/host";
import { DEFAULT_DATA_DIR } from "./host.ts";

export interface Setting<T = unknown> {
  /** The variable, or its pattern for a per-target setting (`TT_RPC_<TARGET>_BULKHEAD_LIMIT`). */
  readonly name: string;
  readonly scope: "global" | "per-target";
  readonly type: "integer" | "number" | "string" | "path" | "url" | "address" | "host" | "enum";
  /** Used when the variable is unset or empty. */
  readonly default: T;
  /** The default as the docs show it. */
  readonly defaultText: string;
  /** What a valid value looks like: quoted in every error about it. */
  readonly form: string;
  readonly doc: string;
  /** Its value is never echoed (errors, logs, docs). */
  readonly secret?: boolean;
  /** Parses a non-empty value; throws an Error naming `variable` and the form expected. */
  readonly parse: (raw: string, variable: string) => T;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

function integer(min: number, max: number, unit = ""): (raw: string, variable: string) => number {
  return (raw, variable) => {
    const v = raw.trim();
    const n = /^-?\d{1,16}$/.test(v) ? Number(v) : NaN;
    if (!(n >= min && n <= max)) throw new Error(`${variable} must be an integer${unit} from ${min} to ${max}, got ${JSON.stringify(v.slice(0, 32))}`);
    return n;
  };
}

function path(raw: string, variable: string): string {
  if (raw.includes("\0")) throw new Error(`${variable} must be a directory path`);
  return raw;
}

const global = <T>(s: Omit<Setting<T>, "scope">): Setting<T> => ({ ...s, scope: "global" });

/** Settings that exist once per process. */
export const GLOBAL_SETTINGS = {
  TT_RPC_CERTS_DIR: global<string>({
    name: "TT_RPC_CERTS_DIR",
    type: "path",
    default: DEFAULT_CERTS_DIR,
    defaultText: DEFAULT_CERTS_DIR,
    form: "a directory path",
    doc: "PKI directory for `tt-rpc serve` (never created by serve); `--certs` wins",
    parse: path,
  }),
  TT_RPC_DATA_DIR: global<string>({
    name: "TT_RPC_DATA_DIR",
    type: "path",
    default: DEFAULT_DATA_DIR,
    defaultText: DEFAULT_DATA_DIR,
    form: "a directory path",
    doc: "data directory for `tt-rpc serve` / `mesh`: `<dir>/<service>.db`, `<dir>/logs/`; `--data` wins",
    parse: path,
  }),
  TT_RPC_LOG_LEVEL: global<LogLevel>({
    name: "TT_RPC_LOG_LEVEL",
    type: "enum",
    default: "info",
    defaultText: "info",
    form: `one of ${LOG_LEVELS.join(", ")}`,
    doc: "pino log level",
    parse: (raw, variable) => {
      const v = raw.trim();
      if (!(LOG_LEVELS as readonly string[]).includes(v)) throw new Error(`${variable} must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(v.slice(0, 32))}`);
      return v as LogLevel;
    },
  }),
  TT_RPC_OPS_PORT: global<number | undefined>({
    name: "TT_RPC_OPS_PORT",
    type: "integer",
    default: undefined,
    defaultText: "none (no ops port)",
    form: "a port number from 0 to 65535",
    doc: "plain-HTTP `/metrics`, `/healthz`, `/readyz` port of `tt-rpc serve`; `--ops-port` wins",
    parse: integer(0, 65535),
  }),
  TT_RPC_DRAIN_DELAY_MS: global<number>({
    name: "TT_RPC_DRAIN_DELAY_MS",
    type: "integer",
    default: 5000,
    defaultText: "5000 (the mesh sets 0)",
    form: "a whole number of milliseconds from 0 to 600000",
    doc: "on SIGTERM, how long `tt-rpc serve` reports NOT_SERVING while still serving, for load balancers to notice, before it stops accepting",
    parse: integer(0, 600_000, " ms"),
  }),
  TT_RPC_OPS_HOST: global<string>({
    name: "TT_RPC_OPS_HOST",
    type: "host",
    default: "127.0.0.1",
    defaultText: "127.0.0.1",
    form: "an IP address or host name",
    doc: "bind address of the ops port (`0.0.0.0` in a pod, for kubelet and Prometheus); `--ops-host` wins",
    parse: (raw, variable) => {
      const v = raw.trim();
      if (isIP(v) === 0 && !isHostName(v)) throw new Error(`${variable} must be an IP address or host name, got ${JSON.stringify(v.slice(0, 64))}`);
      return v;
    },
  }),
  TT_RPC_REDIS_URL: global<RedisConnection | undefined>({
    name: "TT_RPC_REDIS_URL",
    type: "url",
    default: undefined,
    defaultText: "none (in memory)",
    form: "redis://[user:password@]host[:port][/db] or rediss://... (TLS)",
    doc: "dedupe store and replay cache in Redis, shared by replicas (see [Shared state (Redis)](#shared-state-redis))",
    secret: true,
    parse: (raw, variable) => parseRedisUrl(raw, variable),
  }),
  TT_RPC_REDIS_COMMAND_TIMEOUT_MS: global<number>({
    name: "TT_RPC_REDIS_COMMAND_TIMEOUT_MS",
    type: "integer",
    default: REDIS_CLIENT_DEFAULTS.commandTimeoutMs,
    defaultText: String(REDIS_CLIENT_DEFAULTS.commandTimeoutMs),
    form: "an integer number of milliseconds from 10 to 60000",
    doc: "timeout of each Redis command",
    parse: (raw, variable) => timeoutFromEnv({ [variable]: raw.trim() }),
  }),
  TT_RPC_MAX_MESSAGE_BYTES: global<number>({
    name: MAX_MESSAGE_BYTES_VARIABLE,
    type: "integer",
    default: DEFAULT_MAX_MESSAGE_BYTES,
    defaultText: `${DEFAULT_MAX_MESSAGE_BYTES} (4 MiB)`,
    form: MAX_MESSAGE_BYTES_FORM,
    doc: "largest protobuf message a server receives or sends and a client sends or receives; over it: RESOURCE_EXHAUSTED (see [Message size](#message-size)); the `maxMessageBytes` option wins",
    parse: (raw, variable) => parseMaxMessageBytes(raw, variable),
  }),
  MINTING_FAKE_CONFIRMATION_MS: global<number>({
    name: "MINTING_FAKE_CONFIRMATION_MS",
    type: "integer",
    default: 0,
    defaultText: "0",
    form: "an integer number of milliseconds from 0 to 60000",
    doc: "minting-service: confirmation time of the fake chain",
    parse: (raw, variable) => fakeConfirmationMs({ [variable]: raw.trim() }),
  }),
} as const satisfies Record<string, Setting<unknown>>;

export type GlobalSettingName = keyof typeof GLOBAL_SETTINGS;
export type GlobalValues = { readonly [K in GlobalSettingName]: (typeof GLOBAL_SETTINGS)[K]["default"] };

/** A setting that exists once per service a client may call. */
export interface TargetSetting<T = unknown> extends Setting<T | undefined> {
  /** The variable for one target (a service's workload name, e.g. `venue-service`). */
  variable(target: string): string;
}

const ADDRESS_FORM = "host:port, dns:///host:port, ipv4:IP:port[,IP:port...] or ipv6:[IP]:port[,[IP]:port...]";

/** Settings per target: its address, and the resilience limits of calls to it. */
export const TARGET_SETTINGS: readonly TargetSetting[] = [
  {
    name: "<NAME>_RPC_ADDRESS",
    scope: "per-target",
    type: "address",
    default: undefined,
    defaultText: "`<NAME>_SERVICE_URL`'s host, else `localhost`, on the contract's port",
    form: ADDRESS_FORM,
    doc: "where a service's replicas are, for clients (see [Running N replicas](#running-n-replicas)), e.g. `TICKET_RPC_ADDRESS=dns:///ticket-service.dev.svc.cluster.local:50004`",
    variable: (target) => addressVariable(target),
    parse: (raw, variable) => parseRpcAddress(raw, variable),
  },
  {
    name: "<NAME>_SERVICE_URL",
    scope: "per-target",
    type: "url",
    default: undefined,
    defaultText: "none",
    form: "a URL, e.g. http://ticket-service:3004",
    doc: "today's variables keep working: their host is used with the service's RPC port when `<NAME>_RPC_ADDRESS` is unset",
    variable: (target) => `${addressEnvKey(target)}_SERVICE_URL`,
    parse: (raw, variable) => parseServiceUrl(raw, variable),
  },
  ...(Object.entries(LIMIT_SETTINGS) as [keyof ResilienceLimits, (typeof LIMIT_SETTINGS)[keyof ResilienceLimits]][]).map(
    ([key, spec]): TargetSetting<number> => ({
      name: `TT_RPC_<TARGET>_${spec.env}`,
      scope: "per-target",
      type: spec.integer ? "integer" : "number",
      default: undefined,
      defaultText: String(DEFAULT_LIMITS[key]),
      form: limitForm(spec),
      doc: `resilience: ${spec.doc}`,
      variable: (target) => envPrefix(target) + spec.env,
      parse: (raw, variable) => {
        const v = raw.trim();
        const n = v === "" ? NaN : Number(v);
        if (!limitInRange(spec, n)) throw new Error(`${variable} must be ${limitForm(spec)}, got ${JSON.stringify(v.slice(0, 32))}`);
        return n;
      },
    }),
  ),
];

/** The services a client may call: every contract's workload name. */
export function targets(): string[] {
  return serviceContracts.map((c) => c.name as string);
}

/** The contract's default RPC port of a target. */
export function defaultPortOf(target: string): number {
  return serviceContracts.find((c) => c.name === target)!.defaultPort;
}
