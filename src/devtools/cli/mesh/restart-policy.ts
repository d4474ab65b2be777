/**
 * When the mesh restarts a crashed child: exponential backoff (0.5 s, 1 s,
 * 2 s), at most MAX_RESTARTS within RESTART_WINDOW_MS; after that it gives up
 * on that service (a crash loop helps nobody; the others keep running).
 */
export const MAX_RESTARTS = 3;
export const RESTART_WINDOW_MS = 60_000;
const FIRST_BACKOFF_MS = 500;

export type RestartDecision = { readonly restart: true; readonly delayMs: number; readonly attempt: number } | { readonly restart: false };

/**
 * Decides for a crash at `now`, given the times of earlier restarts; returns
 * the restart times to keep (only those inside the window count).
 */
export function decideRestart(restarts: readonly number[], now: number): { decision: RestartDecision; restarts: number[] } {
  const recent = restarts.filter((t) => now - t < RESTART_WINDOW_MS);
  if (recent.length >= MAX_RESTARTS) return { decision: { restart: false }, restarts: recent };
  return {
    decision: { restart: true, delayMs: FIRST_BACKOFF_MS * 2 ** recent.length, attempt: recent.length + 1 },
    restarts: [...recent, now],
  };
}
