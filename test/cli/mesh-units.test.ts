/**
 * The mesh's pure parts: the restart policy (backoff, at most 3 restarts
 * within 60 s, on an injected clock) and the compact log view.
 */
import { describe, expect, it } from "vitest";
import { decideRestart } from "../../src/devtools/cli/mesh/restart-policy.ts";
import { viewLine } from "../../src/devtools/cli/mesh/log-view.ts";

describe("restart policy", () => {
  it("backs off 0.5 s, 1 s, 2 s, then gives up while three restarts are within 60 s", () => {
    let history: number[] = [];
    const delays: number[] = [];
    for (const now of [0, 1_000, 3_000]) {
      const { decision, restarts } = decideRestart(history, now);
      history = restarts;
      if (!decision.restart) throw new Error("expected a restart");
      delays.push(decision.delayMs);
    }
    expect(delays).toEqual([500, 1_000, 2_000]);
    expect(decideRestart(history, 59_999).decision).toEqual({ restart: false });
  });

  it("restarts again once the earliest restart has left the window", () => {
    const { decision, restarts } = decideRestart([0, 1_000, 3_000], 60_000);
    expect(decision).toEqual({ restart: true, delayMs: 2_000, attempt: 3 });
    expect(restarts).toEqual([1_000, 3_000, 60_000]);
    expect(decideRestart([0, 1_000, 3_000], 200_000).decision).toEqual({ restart: true, delayMs: 500, attempt: 1 });
  });
});

describe("compact log view", () => {
  const rpc = (extra: Record<string, unknown>) =>
    JSON.stringify({ level: 30, service: "venue-service", msg: "rpc", method: "/x.v1.S/M", peer: "event-service", code: "OK", durationMs: 1.5, attempt: 1, ...extra });

  it("shows a call as one prefixed line and keeps the JSON line for the file", () => {
    const line = rpc({ tenant: "t-1" });
    expect(viewLine("venue-service", "venue-service ", "stdout", line, false)).toEqual({
      file: line,
      terminal: "venue-service  OK /x.v1.S/M 1.5ms peer=event-service tenant=t-1",
    });
  });

  it("names retries and errors; --quiet hides call lines", () => {
    const line = rpc({ level: 40, code: "UNAVAILABLE", attempt: 2, error: "unavailable" });
    expect(viewLine("venue-service", "venue", "stdout", line, false).terminal).toBe("venue UNAVAILABLE /x.v1.S/M 1.5ms peer=event-service attempt=2 (unavailable)");
    expect(viewLine("venue-service", "venue", "stdout", line, true).terminal).toBeUndefined();
  });

  it("shows warnings and errors, not info; the mesh's own health probes stay out of the view", () => {
    const warn = JSON.stringify({ level: 40, msg: "certificate reload failed", err: "ENOENT" });
    expect(viewLine("s", "s", "stdout", warn, true).terminal).toBe("s WARN certificate reload failed: ENOENT");
    expect(viewLine("s", "s", "stdout", JSON.stringify({ level: 30, msg: "rpc server listening" }), false).terminal).toBeUndefined();
    expect(viewLine("s", "s", "stdout", rpc({ method: "/grpc.health.v1.Health/Check", peer: "ops" }), false).terminal).toBeUndefined();
  });

  it("wraps plain text in a JSON line for the file; stderr text is shown", () => {
    const v = viewLine("s", "s", "stderr", "s: port 1 is already in use", false);
    expect(JSON.parse(v.file)).toMatchObject({ level: 50, service: "s", stream: "stderr", msg: "s: port 1 is already in use" });
    expect(v.terminal).toBe("s s: port 1 is already in use");
    expect(viewLine("s", "s", "stdout", "s serving gRPC on 127.0.0.1:1", false).terminal).toBeUndefined();
  });
});
