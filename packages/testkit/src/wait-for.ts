/**
 * Awaiting conditions with a deadline: tests never `sleep`, they wait for what they expect and
 * fail with a message that says what did not happen.
 */
import { EdgeplaneError } from "@edgeplane/core";

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this many ms (default 5000). */
  readonly timeoutMs?: number;
  /** Poll a predicate this often, in ms (default 25). Ignored for a promise. */
  readonly intervalMs?: number;
  /** What is being waited for, used in the timeout error ("redis to answer PING"). */
  readonly message?: string;
  /** Aborts the wait with a `canceled` error. */
  readonly signal?: AbortSignal;
}

/** Values `if (x)` treats as false. */
export type Falsy = false | 0 | 0n | "" | null | undefined;

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_INTERVAL_MS = 25;

/**
 * Waits until `condition` returns (or resolves to) a truthy value and returns that value.
 *
 * A condition that throws (or rejects) counts as "not yet"; if the deadline passes, the
 * `deadline_exceeded` error names `message` and carries the last such error as `cause`.
 * Given a promise instead of a function, waits for it with a deadline (see {@link withTimeout}).
 *
 * @example
 * ```ts
 * await waitFor(() => received.length === 3, { message: "three messages" });
 * const info = await waitFor(async () => (await redis.info("persistence")).includes("aof_enabled:1"));
 * ```
 */
export function waitFor<T>(
  condition: () => T | PromiseLike<T>,
  options?: WaitForOptions,
): Promise<Exclude<T, Falsy>>;
export function waitFor<T>(promise: PromiseLike<T>, options?: WaitForOptions): Promise<T>;
export function waitFor<T>(
  condition: (() => T | PromiseLike<T>) | PromiseLike<T>,
  options: WaitForOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const what = options.message ?? "condition";
  if (typeof condition !== "function") {
    return withTimeout(condition, timeoutMs, what, options.signal);
  }
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  const { signal } = options;
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let lastError: unknown;
    let pollTimer: ReturnType<typeof setTimeout> | undefined;
    const finish = (settle: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadlineTimer);
      clearTimeout(pollTimer);
      signal?.removeEventListener("abort", onAbort);
      settle();
    };
    const onAbort = (): void => finish(() => reject(canceled(what, signal)));
    const deadlineTimer = setTimeout(() => {
      const last = lastError === undefined ? "" : `; last error: ${describe(lastError)}`;
      finish(() =>
        reject(
          new EdgeplaneError(
            "deadline_exceeded",
            `timed out after ${timeoutMs} ms waiting for ${what}${last}`,
            {
              cause: lastError,
            },
          ),
        ),
      );
    }, timeoutMs);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });

    const poll = async (): Promise<void> => {
      try {
        const value = await condition();
        if (settled) return;
        if (value) return finish(() => resolve(value));
        lastError = undefined;
      } catch (err) {
        lastError = err;
      }
      if (!settled) pollTimer = setTimeout(() => void poll(), intervalMs);
    };
    void poll();
  });
}

/**
 * Resolves or rejects like `promise`, unless `ms` pass first: then rejects with a
 * `deadline_exceeded` error saying that `what` did not finish. The timer is always cleared.
 * The promise itself is not cancelled (a promise cannot be); pass `signal` to the operation.
 */
export function withTimeout<T>(
  promise: PromiseLike<T>,
  ms: number,
  what: string,
  signal?: AbortSignal,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (settle: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      settle();
    };
    const onAbort = (): void => finish(() => reject(canceled(what, signal)));
    const timer = setTimeout(
      () =>
        finish(() =>
          reject(new EdgeplaneError("deadline_exceeded", `${what} did not finish within ${ms} ms`)),
        ),
      ms,
    );
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => finish(() => resolve(value)),
      (err: unknown) => finish(() => reject(err)),
    );
  });
}

/**
 * Resolves after `ms`, or rejects with `canceled` when `signal` aborts. For library code that
 * must back off between attempts; tests should {@link waitFor} a condition instead.
 */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(canceled("delay", signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(canceled("delay", signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function canceled(what: string, signal: AbortSignal | undefined): EdgeplaneError {
  return new EdgeplaneError("canceled", `aborted while waiting for ${what}`, { cause: signal?.reason });
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
