/**
 * Records the DeprecationWarnings this test process emits (Node's, e.g.
 * DEP0123 for an IP address as TLS server name, or a library's), so the
 * setup file can fail the test during which one appeared. Nothing is
 * silenced: Node still prints the warning.
 */
const seen: Error[] = [];

process.on("warning", (warning) => {
  if (warning.name === "DeprecationWarning") seen.push(warning);
});

/** The deprecations recorded since the last call, and forgets them. */
export function takeDeprecations(): Error[] {
  return seen.splice(0);
}

export function describeDeprecations(warnings: readonly Error[]): string {
  return warnings.map((w) => `${(w as Error & { code?: string }).code ?? "DeprecationWarning"}: ${w.message}\n${w.stack ?? ""}`).join("\n");
}
