/**
 * The one message size limit, applied on both sides of every call: what a
 * server accepts and sends, what a client sends and accepts (gRPC's 4 MiB
 * default, never connect-node's ~4 GiB). Its own small module so the server
 * and client import it without the rest of the configuration schema.
 */

export const MAX_MESSAGE_BYTES_VARIABLE = "TT_RPC_MAX_MESSAGE_BYTES";
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** 1 KiB: below that a call token's answer could not fit. */
export const MIN_MAX_MESSAGE_BYTES = 1024;
/** grpc-js takes the limit as a signed 32-bit integer. */
export const MAX_MAX_MESSAGE_BYTES = 2 ** 31 - 1;

export const MAX_MESSAGE_BYTES_FORM = `an integer number of bytes from ${MIN_MAX_MESSAGE_BYTES} to ${MAX_MAX_MESSAGE_BYTES}`;

/** Checks a limit given in code or the environment; the error names `source` and the expected form. */
export function checkMaxMessageBytes(value: number, source: string): number {
  if (!Number.isSafeInteger(value) || value < MIN_MAX_MESSAGE_BYTES || value > MAX_MAX_MESSAGE_BYTES) {
    throw new Error(`${source} must be ${MAX_MESSAGE_BYTES_FORM}, got ${String(value).slice(0, 32)}`);
  }
  return value;
}

/** TT_RPC_MAX_MESSAGE_BYTES as a number (decimal digits only), or its error. */
export function parseMaxMessageBytes(raw: string, variable = MAX_MESSAGE_BYTES_VARIABLE): number {
  const v = raw.trim();
  if (!/^\d{1,16}$/.test(v)) throw new Error(`${variable} must be ${MAX_MESSAGE_BYTES_FORM}, got ${JSON.stringify(v.slice(0, 32))}`);
  return checkMaxMessageBytes(Number(v), variable);
}

/**
 * The limit for a server or client: the options object wins, then the
 * environment, then 4 MiB. Read once when the server or channel is built,
 * never per call.
 */
export function resolveMaxMessageBytes(fromOptions: number | undefined, env: Readonly<Record<string, string | undefined>>): number {
  if (fromOptions !== undefined) return checkMaxMessageBytes(fromOptions, "maxMessageBytes");
  const raw = env[MAX_MESSAGE_BYTES_VARIABLE];
  return raw === undefined || raw.trim() === "" ? DEFAULT_MAX_MESSAGE_BYTES : parseMaxMessageBytes(raw);
}
