/**
 * Retry delays for an agent that must never give up: exponential growth capped at `maxMs`, with
 * "equal jitter" (half fixed, half random) so that a fleet that lost its control plane at the
 * same moment does not come back in lockstep.
 */

/** Options of {@link backoffDelay}. */
export interface BackoffOptions {
  /** The first delay's upper bound, in ms (default 500). */
  readonly baseMs?: number;
  /** The largest delay, in ms (default 30 000). */
  readonly maxMs?: number;
}

/**
 * The delay before retry number `attempt` (0 for the first retry): a value in
 * `[cap / 2, cap]` where `cap = min(maxMs, baseMs × 2^attempt)`.
 *
 * @example backoffDelay(0, {}, () => 0) // 250: the first retry comes after 250–500 ms
 * @example backoffDelay(10, {}, () => 1) // 30000: capped at maxMs
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random = Math.random): number {
  const base = options.baseMs ?? 500;
  const max = options.maxMs ?? 30_000;
  const cap = Math.min(max, base * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.round(cap / 2 + (cap / 2) * random());
}

/** `ms` scaled by a random factor in `[1 - fraction, 1 + fraction]` (heartbeat jitter). */
export function jitter(ms: number, fraction: number, random = Math.random): number {
  return Math.max(1, Math.round(ms * (1 - fraction + 2 * fraction * random())));
}

/** Resolves after `ms`, or at once (without rejecting) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
