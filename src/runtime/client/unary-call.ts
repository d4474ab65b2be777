/**
 * Runs one unary call through connect-es interceptors, as connect-es'
 * runUnaryCall does, minus its per-call costs on success (issue #12: 18-25 µs
 * per call). runUnaryCall links two AbortControllers (the caller's signal and
 * a deadline controller) and, when the call succeeds, aborts the linked one
 * with no reason, which makes Node build a DOMException ("AbortError", with a
 * stack trace) on every successful call; its listeners are added and removed
 * per call too.
 *
 * Here: one AbortController per call, the caller's signal linked with an
 * object listener (no closure), the deadline a setTimeout with an argument
 * (no closure). On success nothing is aborted: the timer is cleared and the
 * caller's signal unlinked, and every listener of the request signal in this
 * framework (the transport's cancel, the retry sleep) removes itself when its
 * step ends. On failure the signal is aborted with the error, as connect-es
 * does, so whatever still listens stops. Upstreamable as "don't abort the
 * signal on success, or abort it with a preallocated reason".
 */
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";

type UnaryNext<I extends DescMessage, O extends DescMessage> = (req: UnaryRequest<I, O>) => Promise<UnaryResponse<I, O>>;

function onDeadline(control: CallControl): void {
  control.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
}

/** The request signal of one call: aborted by the caller's signal, the deadline, or a failure; never by success. */
class CallControl {
  readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly upstream: AbortSignal | undefined,
    timeoutMs: number | undefined,
  ) {
    if (timeoutMs !== undefined) {
      if (timeoutMs <= 0) onDeadline(this);
      else this.timer = setTimeout(onDeadline, timeoutMs, this);
    }
    if (upstream !== undefined) {
      if (upstream.aborted) this.handleEvent();
      else upstream.addEventListener("abort", this);
    }
  }

  /** The caller's signal aborted (an object listener: no closure per call). */
  handleEvent(): void {
    this.abort(this.upstream!.reason ?? new ConnectError("operation was aborted", Code.Canceled));
  }

  abort(reason: unknown): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
    this.release();
  }

  release(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.upstream?.removeEventListener("abort", this);
  }

  /** As connect-es: an aborted call fails with the abort reason (CANCELED unless it says otherwise). */
  fail(reason: unknown): Promise<never> {
    const signal = this.controller.signal;
    const e = signal.aborted ? ConnectError.from(signal.reason, Code.Canceled) : ConnectError.from(reason);
    this.abort(e);
    return Promise.reject(e);
  }
}

export interface RunUnaryOptions<I extends DescMessage, O extends DescMessage> {
  readonly interceptors: readonly Interceptor[];
  readonly signal: AbortSignal | undefined;
  readonly timeoutMs: number | undefined;
  /** The request without its signal; `message` may be a partial message (normalized here). */
  readonly req: Omit<UnaryRequest<I, O>, "signal" | "message"> & { readonly message: MessageInitShape<I> };
  readonly next: UnaryNext<I, O>;
}

export function runUnary<I extends DescMessage, O extends DescMessage>(opt: RunUnaryOptions<I, O>): Promise<UnaryResponse<I, O>> {
  let next = opt.next;
  for (let i = opt.interceptors.length - 1; i >= 0; i--) next = opt.interceptors[i]!(next as never) as unknown as UnaryNext<I, O>;
  const control = new CallControl(opt.signal, opt.timeoutMs);
  const req = { ...opt.req, message: create(opt.req.method.input, opt.req.message as never), signal: control.controller.signal } as UnaryRequest<I, O>;
  return next(req).then(
    (res) => {
      control.release();
      return res;
    },
    (reason: unknown) => control.fail(reason),
  );
}
