/**
 * Issue #11 item 7: the configuration schema and its start-up loader. Each
 * kind of bad value is refused naming its variable and the form expected;
 * several problems come back together in one error; a secret is never echoed;
 * unknown TT_RPC_* variables are warnings.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, readSetting } from "../../services/host/config-load.ts";
import { GLOBAL_SETTINGS, TARGET_SETTINGS, targets } from "../../services/host/config-schema.ts";
import { DEFAULT_LIMITS } from "../../src/runtime/resilience/options.ts";

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error("loadConfig accepted the environment");
}

describe("loadConfig", () => {
  it("an empty environment gives every default", () => {
    const { config, warnings } = loadConfig({});
    expect(warnings).toEqual([]);
    expect(config.values).toEqual({
      TT_RPC_CERTS_DIR: ".tt-rpc/certs",
      TT_RPC_DATA_DIR: ".tt-rpc/data",
      TT_RPC_LOG_LEVEL: "info",
      TT_RPC_OPS_PORT: undefined,
      TT_RPC_DRAIN_DELAY_MS: 5000,
      TT_RPC_OPS_HOST: "127.0.0.1",
      TT_RPC_REDIS_URL: undefined,
      TT_RPC_REDIS_COMMAND_TIMEOUT_MS: 500,
      TT_RPC_MAX_MESSAGE_BYTES: 4 * 1024 * 1024,
      MINTING_FAKE_CONFIRMATION_MS: 0,
    });
    expect(config.addresses["ticket-service"]).toBe("localhost:50004");
    expect(Object.keys(config.addresses).sort()).toEqual(targets().sort());
  });

  it("parses valid values of every kind", () => {
    const { config } = loadConfig({
      TT_RPC_LOG_LEVEL: "debug",
      TT_RPC_OPS_PORT: "9464",
      TT_RPC_OPS_HOST: "0.0.0.0",
      TT_RPC_REDIS_URL: "rediss://app:s3cret@redis.internal:6380/2",
      TT_RPC_REDIS_COMMAND_TIMEOUT_MS: "250",
      TT_RPC_MAX_MESSAGE_BYTES: "1048576",
      MINTING_FAKE_CONFIRMATION_MS: "30",
      TICKET_RPC_ADDRESS: "127.0.0.1:50104,127.0.0.1:50204",
      VENUE_SERVICE_URL: "http://venue.internal:3002",
      TT_RPC_VENUE_SERVICE_BULKHEAD_LIMIT: "16",
      TT_RPC_VENUE_SERVICE_RETRY_BUDGET_RATIO: "0.25",
      TT_RPC_DATA_DIR: "",
    });
    expect(config.values.TT_RPC_LOG_LEVEL).toBe("debug");
    expect(config.values.TT_RPC_OPS_PORT).toBe(9464);
    expect(config.values.TT_RPC_REDIS_URL).toMatchObject({ host: "redis.internal", port: 6380, db: 2, tls: true });
    expect(config.values.TT_RPC_MAX_MESSAGE_BYTES).toBe(1048576);
    expect(config.values.MINTING_FAKE_CONFIRMATION_MS).toBe(30);
    expect(config.values.TT_RPC_DATA_DIR).toBe(".tt-rpc/data"); // empty is unset
    expect(config.addresses["ticket-service"]).toBe("ipv4:127.0.0.1:50104,127.0.0.1:50204");
    expect(config.addresses["venue-service"]).toBe("venue.internal:50002");
  });

  // One bad value per kind: the message names the variable and says what is expected.
  it.each([
    ["TT_RPC_LOG_LEVEL", "loud", /^TT_RPC_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"$/],
    ["TT_RPC_OPS_PORT", "70000", /^TT_RPC_OPS_PORT must be an integer from 0 to 65535, got "70000"$/],
    ["TT_RPC_OPS_PORT", "9464x", /^TT_RPC_OPS_PORT must be an integer from 0 to 65535/],
    ["TT_RPC_OPS_HOST", "not a host!", /^TT_RPC_OPS_HOST must be an IP address or host name/],
    ["TT_RPC_REDIS_URL", "http://redis:6379", /^TT_RPC_REDIS_URL has scheme "http:": expected redis:\/\/\[user:password@\]host/],
    ["TT_RPC_REDIS_COMMAND_TIMEOUT_MS", "5", /^TT_RPC_REDIS_COMMAND_TIMEOUT_MS must be an integer number of milliseconds from 10 to 60000/],
    ["TT_RPC_MAX_MESSAGE_BYTES", "4MiB", /^TT_RPC_MAX_MESSAGE_BYTES must be an integer number of bytes from 1024 to 2147483647, got "4MiB"$/],
    ["TT_RPC_MAX_MESSAGE_BYTES", "100", /^TT_RPC_MAX_MESSAGE_BYTES must be an integer number of bytes from 1024 to 2147483647, got 100$/],
    ["TT_RPC_MAX_MESSAGE_BYTES", "4294967296", /^TT_RPC_MAX_MESSAGE_BYTES must be an integer number of bytes from 1024/],
    ["MINTING_FAKE_CONFIRMATION_MS", "-1", /^MINTING_FAKE_CONFIRMATION_MS must be an integer from 0 to 60000/],
    ["TICKET_RPC_ADDRESS", "ticket:notaport", /^TICKET_RPC_ADDRESS must be host:port, dns:\/\/\/host:port, ipv4:/],
    ["ORDER_SERVICE_URL", "order-service", /^ORDER_SERVICE_URL must be a URL such as http:\/\/ticket-service:3004/],
    ["TT_RPC_VENUE_SERVICE_BULKHEAD_LIMIT", "0", /^TT_RPC_VENUE_SERVICE_BULKHEAD_LIMIT must be an integer from 1 to 100000, got "0"$/],
    ["TT_RPC_VENUE_SERVICE_BREAKER_FAILURE_RATIO", "half", /^TT_RPC_VENUE_SERVICE_BREAKER_FAILURE_RATIO must be a number from 0 to 1, got "half"$/],
  ])("%s=%s is refused, naming the variable and the expected form", (variable, value, message) => {
    const problems = problemsOf({ [variable]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });

  it("a value valid alone but inconsistent with another names both (backoff cap below the initial backoff)", () => {
    const problems = problemsOf({ TT_RPC_ORDER_SERVICE_RETRY_INITIAL_BACKOFF_MS: "500", TT_RPC_ORDER_SERVICE_RETRY_MAX_BACKOFF_MS: "100" });
    expect(problems).toEqual([expect.stringMatching(/^order-service resilience: TT_RPC_ORDER_SERVICE_RETRY_MAX_BACKOFF_MS \(100\) must not be below TT_RPC_ORDER_SERVICE_RETRY_INITIAL_BACKOFF_MS \(500\)$/)]);
  });

  it("reports every problem at once, in one error whose message lists each", () => {
    const env = {
      TT_RPC_LOG_LEVEL: "loud",
      TT_RPC_OPS_PORT: "-1",
      TT_RPC_MAX_MESSAGE_BYTES: "lots",
      TICKET_RPC_ADDRESS: "unix:/tmp/s",
      TT_RPC_EVENT_SERVICE_TIMEOUT_MS: "0",
      TT_RPC_VENUE_SERVICE_RETRY_MAX_ATTEMPTS: "11",
    };
    let error: unknown;
    try {
      loadConfig(env);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const { problems, message } = error as ConfigError;
    expect(problems).toHaveLength(6);
    for (const variable of Object.keys(env)) {
      expect(problems.filter((p) => p.startsWith(`${variable} `))).toHaveLength(1);
      expect(message).toContain(`  ${variable} `);
    }
    expect(message.split("\n")[0]).toBe("invalid configuration (6 problems):");
  });

  it("never echoes the Redis URL or its password, whatever is wrong with it", () => {
    const password = "hunter2-very-secret";
    for (const url of [
      `http://app:${password}@redis:6379`,
      `redis://app:${password}@redis:6379/notadb`,
      `redis://app:${password}@redis:6379/0?tls=true`,
      `redis://app:${password}@:6379`,
      `not a url ${password}`,
    ]) {
      const problems = problemsOf({ TT_RPC_REDIS_URL: url });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^TT_RPC_REDIS_URL .*expected redis:\/\//);
      expect(problems[0]).not.toContain(password);
      expect(problems[0]).not.toContain("app:");
    }
    expect(() => readSetting({ TT_RPC_REDIS_URL: `ftp://u:${password}@h` }, "TT_RPC_REDIS_URL")).toThrow(ConfigError);
    try {
      readSetting({ TT_RPC_REDIS_URL: `ftp://u:${password}@h` }, "TT_RPC_REDIS_URL");
    } catch (err) {
      expect((err as Error).message).not.toContain(password);
    }
  });

  it("unknown TT_RPC_* variables are warnings naming them (a typo'd target says which services exist); others are ignored", () => {
    const { warnings } = loadConfig({
      TT_RPC_LOGLEVEL: "debug",
      TT_RPC_VENUE_SERVCE_BULKHEAD_LIMIT: "8",
      TT_RPC_VENUE_SERVICE_BULKHEAD_LIMIT: "8",
      HOME: "/root",
      REDIS_PORT: "tcp://10.0.0.1:6379",
    });
    expect(warnings).toEqual([
      "TT_RPC_LOGLEVEL is not a setting (ignored; a typo?)",
      expect.stringMatching(/^TT_RPC_VENUE_SERVCE_BULKHEAD_LIMIT is not a setting: no service "venue-servce" \(services: .*venue-service/),
    ]);
  });
});

describe("schema", () => {
  it("every setting has a doc, a form and a type; names are unique", () => {
    const all = [...Object.values(GLOBAL_SETTINGS), ...TARGET_SETTINGS];
    for (const s of all) {
      expect(s.doc.length, s.name).toBeGreaterThan(10);
      expect(s.form.length, s.name).toBeGreaterThan(3);
      expect(s.defaultText.length, s.name).toBeGreaterThan(0);
    }
    expect(new Set(all.map((s) => s.name)).size).toBe(all.length);
    for (const [key, s] of Object.entries(GLOBAL_SETTINGS)) expect(s.name).toBe(key);
  });

  it("lists every resilience limit per target, with the code's defaults", () => {
    const resilience = TARGET_SETTINGS.filter((s) => s.name.startsWith("TT_RPC_<TARGET>_"));
    expect(resilience).toHaveLength(Object.keys(DEFAULT_LIMITS).length);
    expect(resilience.map((s) => s.variable("venue-service"))).toContain("TT_RPC_VENUE_SERVICE_BULKHEAD_LIMIT");
    expect(TARGET_SETTINGS.map((s) => s.variable("ticket-service"))).toEqual(expect.arrayContaining(["TICKET_RPC_ADDRESS", "TICKET_SERVICE_URL"]));
  });
});
