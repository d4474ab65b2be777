/**
 * Errors leaving a handler: a ConnectError keeps its code and message; any
 * other throw is a bug, so the caller gets a generic INTERNAL and the details
 * go to the log (connect-node would drop them silently).
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { Route } from "./routes.ts";

export type ErrorReporter = (info: { route: Route; error: unknown }) => void;

export function toConnectError(err: unknown, route: Route, report: ErrorReporter): ConnectError {
  if (err instanceof ConnectError) return err;
  report({ route, error: err });
  return new ConnectError("internal error", Code.Internal);
}
