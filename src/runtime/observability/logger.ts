/**
 * pino, configured once for the framework. Redaction is a second line of
 * defence: code never passes tokens or keys to the logger in the first place.
 */
import { pino, type Logger, type LoggerOptions } from "pino";

export type { Logger };

const REDACT = [
  "authorization",
  "*.authorization",
  "headers.authorization",
  "token",
  "*.token",
  "contextToken",
  "*.contextToken",
  "privateKey",
  "*.privateKey",
  "key",
  "*.key",
];

export function createLogger(options: { service?: string; level?: string; destination?: pino.DestinationStream } = {}): Logger {
  const config: LoggerOptions = {
    level: options.level ?? process.env.TT_RPC_LOG_LEVEL ?? "info",
    base: options.service ? { service: options.service } : {},
    redact: { paths: REDACT, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return pino(config, options.destination ?? stdoutDestination());
}

/**
 * stdout, written asynchronously (a log line costs the call path no write
 * syscall), each line as soon as the previous write is done. minLength 1
 * instead of 0 changes no timing (every line is longer) but makes flush()
 * wait for the write in flight, which flushLogger relies on; pino also
 * flushes it synchronously on process exit.
 */
function stdoutDestination(): pino.DestinationStream {
  return pino.destination({ dest: 1, sync: false, minLength: 1 });
}

/** A stuck stdout (reader gone or not reading) must not hold a drain forever. */
const FLUSH_TIMEOUT_MS = 2_000;

/** Resolves once every line logged so far is written (or after FLUSH_TIMEOUT_MS); never rejects. */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, FLUSH_TIMEOUT_MS);
    timer.unref();
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    try {
      // A destination without flush (a test's stream) is written synchronously: pino calls back at once.
      logger.flush(done);
    } catch {
      done();
    }
  });
}

/** A logger that drops everything (tests that assert on behaviour, not logs). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
