/** Output sinks for CLI commands (tests capture them). */
export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

export const stdio: CliIo = { out: (l) => console.log(l), err: (l) => console.error(l) };

/** Prints a usage error and returns the exit code for bad input. */
export function usageError(io: CliIo, message: string, usage: string): number {
  io.err(`error: ${message}\n\n${usage}`);
  return 2;
}
