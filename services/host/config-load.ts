/**
 * Start-up validation of the whole environment against the schema: every
 * problem is collected, then thrown as ONE ConfigError (one line per problem,
 * each naming its variable and the form expected), so an operator fixes a
 * deployment in one pass rather than one crash at a time. A secret's value
 * (TT_RPC_REDIS_URL) never appears in a message.
 *
 * Unknown `TT_RPC_*` variables are warnings, not errors: Kubernetes injects
 * `<SERVICE>_PORT`, `<SERVICE>_SERVICE_HOST`, ... for every Service in the
 * namespace, so a Service named `tt-rpc-...` would otherwise stop every pod.
 */
import { resolveAddress } from "@tickettoken/rpc/host";
import { resolveLimits } from "@tickettoken/rpc/host";
import { GLOBAL_SETTINGS, TARGET_SETTINGS, defaultPortOf, targets, type GlobalSettingName, type GlobalValues, type Setting } from "./config-schema.ts";

export type Environment = Readonly<Record<string, string | undefined>>;

export interface RuntimeConfig {
  /** Every global setting, parsed (the default where unset). */
  readonly values: GlobalValues;
  /** The grpc-js target of every service a client may call. */
  readonly addresses: Readonly<Record<string, string>>;
}

export interface LoadedConfig {
  readonly config: RuntimeConfig;
  /** Unknown `TT_RPC_*` variables (likely typos): one line each, to print at start-up. */
  readonly warnings: readonly string[];
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n${problems.map((p) => `  ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Parses and validates `env`; throws ConfigError listing every problem. */
export function loadConfig(env: Environment): LoadedConfig {
  const problems: string[] = [];
  const known = new Set<string>();
  const parse = <T>(setting: Setting<T>, variable: string): T => {
    known.add(variable);
    const raw = env[variable];
    if (raw === undefined || raw.trim() === "") return setting.default;
    try {
      return setting.parse(raw, variable);
    } catch (err) {
      problems.push(setting.secret ? redact((err as Error).message, raw) : (err as Error).message);
      return setting.default;
    }
  };

  const values = {} as Record<GlobalSettingName, unknown>;
  for (const name of Object.keys(GLOBAL_SETTINGS) as GlobalSettingName[]) values[name] = parse(GLOBAL_SETTINGS[name] as Setting, name);

  const addresses: Record<string, string> = {};
  for (const target of targets()) {
    const before = problems.length;
    for (const setting of TARGET_SETTINGS) parse(setting, setting.variable(target));
    if (problems.length > before) continue;
    // Each value is valid alone; these add what spans several (the address fallback, backoff cap >= initial backoff).
    try {
      addresses[target] = resolveAddress(target, defaultPortOf(target), env as NodeJS.ProcessEnv);
      resolveLimits(target, {}, env as NodeJS.ProcessEnv);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { config: { values: values as GlobalValues, addresses }, warnings: unknownVariables(env, known) };
}

/** The value of one global setting (the default where unset); throws ConfigError naming the variable. */
export function readSetting<K extends GlobalSettingName>(env: Environment, name: K): GlobalValues[K] {
  const setting = GLOBAL_SETTINGS[name] as Setting<GlobalValues[K]>;
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return setting.default;
  try {
    return setting.parse(raw, name);
  } catch (err) {
    throw new ConfigError([setting.secret ? redact((err as Error).message, raw) : (err as Error).message]);
  }
}

function unknownVariables(env: Environment, known: ReadonlySet<string>): string[] {
  const suffixes = TARGET_SETTINGS.filter((s) => s.name.startsWith("TT_RPC_<TARGET>_")).map((s) => s.name.slice("TT_RPC_<TARGET>".length));
  const warnings: string[] = [];
  for (const variable of Object.keys(env).sort()) {
    if (!variable.startsWith("TT_RPC_") || known.has(variable)) continue;
    const suffix = suffixes.find((s) => variable.endsWith(s));
    warnings.push(
      suffix
        ? `${variable} is not a setting: no service "${variable.slice("TT_RPC_".length, -suffix.length).toLowerCase().replace(/_/g, "-")}" (services: ${targets().join(", ")})`
        : `${variable} is not a setting (ignored; a typo?)`,
    );
  }
  return warnings;
}

/** Parsers of secrets do not echo them; this is the second line of defence. */
function redact(message: string, raw: string): string {
  const trimmed = raw.trim();
  return trimmed.length >= 4 ? message.split(trimmed).join("[redacted]") : message;
}
