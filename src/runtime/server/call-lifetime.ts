/**
 * The cancellation signal a served call's handler sees. Both wire stacks
 * abort their own per-call signal when a call ends for any reason (grpc-js
 * reports every stream close as "cancelled", connect-node aborts its context
 * after every response), so work built on that signal, e.g. propagated
 * outgoing calls, would be cancelled after every success. This signal aborts
 * only while the call is still running: on the caller's cancellation
 * (Code.Canceled), the deadline (Code.DeadlineExceeded) or a forced shutdown.
 *
 * It owns no timer: the wire stack already runs one deadline timer per call
 * and reports its expiry as the end of the stream; we only tell a deadline
 * from a cancellation by the clock. end() detaches everything, so nothing
 * per call outlives the call. The signal itself (and its link to the
 * shutdown signal) is made only when something reads it.
 */
import { Code, ConnectError } from "@connectrpc/connect";

// The stack's timer and our clock read may disagree by a tick; a cancel this close to the deadline is the deadline.
const DEADLINE_TOLERANCE_MS = 5;

export class CallLifetime {
  // Made on first read of `signal`: most handlers never read it, so most calls
  // build no AbortController and never link to the shutdown signal (lazy signal).
  #controller: AbortController | undefined;
  /** Why the call stopped, when that happened before anyone read the signal. */
  #reason: unknown;
  #aborted = false;
  #ended = false;
  #linked = false;

  /**
   * `upstream` aborts when the call must stop while running (the server's
   * forced shutdown, or a stack signal that also fires on cancel/deadline).
   */
  constructor(
    readonly deadline: number | undefined,
    private readonly upstream: AbortSignal | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
      else if (!this.#ended && this.upstream !== undefined) {
        if (this.upstream.aborted) this.handleEvent();
        else {
          this.upstream.addEventListener("abort", this);
          this.#linked = true;
        }
      }
    }
    return this.#controller.signal;
  }

  /** Milliseconds left, for HandlerContext.timeoutMs. */
  remainingMs(): number | undefined {
    return this.deadline === undefined ? undefined : this.deadline - this.now();
  }

  /** The wire stack says the call went away before we ended it: the caller cancelled, or the deadline passed. */
  cancelled(reason?: unknown): void {
    if (this.#ended || this.#aborted) return;
    const deadlineHit =
      (reason instanceof ConnectError && reason.code === Code.DeadlineExceeded) ||
      (this.deadline !== undefined && this.now() >= this.deadline - DEADLINE_TOLERANCE_MS);
    this.#abort(
      deadlineHit
        ? new ConnectError("deadline exceeded", Code.DeadlineExceeded)
        : new ConnectError("call cancelled by the client", Code.Canceled),
    );
  }

  /** The call finished (answered or failed): from now on nothing aborts the signal. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#linked) this.upstream!.removeEventListener("abort", this);
  }

  /** Upstream abort listener (an object, not a closure per call). */
  handleEvent(): void {
    const reason = this.upstream?.reason;
    // The server's drain says why it ends the call (UNAVAILABLE: retry elsewhere); not a cancel by the client.
    if (reason instanceof ConnectError && reason.code === Code.Unavailable) {
      if (!this.#ended && !this.#aborted) this.#abort(reason);
      return;
    }
    this.cancelled(reason);
  }

  #abort(reason: unknown): void {
    this.#aborted = true;
    if (this.#controller !== undefined) this.#controller.abort(reason);
    else this.#reason = reason;
  }
}
