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
  return options.destination ? pino(config, options.destination) : pino(config);
}

/** A logger that drops everything (tests that assert on behaviour, not logs). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
