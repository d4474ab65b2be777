/**
 * What the mesh does with a child's output: every line goes to the child's
 * log file as a JSON line (plain text is wrapped, so the file stays JSON),
 * and the terminal gets a compact one-line view of each call ("rpc" lines)
 * and of warnings and errors, prefixed by the service name.
 */

interface PinoLine {
  level?: number;
  time?: string;
  msg?: string;
  method?: string;
  code?: string;
  durationMs?: number;
  peer?: string;
  tenant?: string;
  attempt?: number;
  error?: string;
  err?: { message?: string } | string;
}

const HEALTH_CHECK = "/grpc.health.v1.Health/Check";
const LEVELS: Record<number, string> = { 40: "WARN", 50: "ERROR", 60: "FATAL" };

export interface ViewedLine {
  /** The JSON line for the log file (no newline). */
  readonly file: string;
  /** The compact terminal line, or undefined when the terminal does not show it. */
  readonly terminal: string | undefined;
}

function parse(line: string): PinoLine | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const v = JSON.parse(line) as unknown;
    return v !== null && typeof v === "object" ? (v as PinoLine) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One line of a child's stdout or stderr. `prefix` is the padded service name;
 * `quiet` hides the call lines (warnings and errors still show).
 */
export function viewLine(service: string, prefix: string, stream: "stdout" | "stderr", line: string, quiet: boolean): ViewedLine {
  const json = parse(line);
  if (!json) {
    // Plain text: the readiness/drain lines on stdout (quiet), anything on stderr (shown: it is why a child failed).
    const level = stream === "stderr" ? 50 : 30;
    const file = JSON.stringify({ level, time: new Date().toISOString(), service, stream, msg: line });
    return { file, terminal: stream === "stderr" && line.trim() !== "" ? `${prefix} ${line}` : undefined };
  }
  if (json.msg === "rpc") {
    // The mesh's own readiness probes (ops, health) would drown the first screen.
    if (quiet || (json.method === HEALTH_CHECK && json.peer === "ops" && json.code === "OK")) return { file: line, terminal: undefined };
    const parts = [`${prefix} ${json.code ?? "?"} ${json.method ?? "?"}`, `${json.durationMs ?? "?"}ms`, `peer=${json.peer ?? "?"}`];
    if (json.tenant) parts.push(`tenant=${json.tenant}`);
    if (json.attempt !== undefined && json.attempt !== 1) parts.push(`attempt=${json.attempt}`);
    if (json.error) parts.push(`(${json.error})`);
    return { file: line, terminal: parts.join(" ") };
  }
  const level = json.level ?? 30;
  if (level < 40) return { file: line, terminal: undefined };
  const err = typeof json.err === "string" ? json.err : json.err?.message;
  return { file: line, terminal: `${prefix} ${LEVELS[level] ?? "WARN"} ${json.msg ?? ""}${err ? `: ${err}` : ""}` };
}
