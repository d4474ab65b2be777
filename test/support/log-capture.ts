/**
 * A pino logger whose lines a test can read back: what the server logged,
 * e.g. that a rejection names its reason and never a token.
 */
import { Writable } from "node:stream";
import { pino, type Logger } from "pino";

export interface CapturedLogs {
  readonly logger: Logger;
  /** Every line written, as raw JSON text, in order. */
  readonly lines: string[];
}

export function captureLogs(level = "info"): CapturedLogs {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { logger: pino({ level }, sink), lines };
}
