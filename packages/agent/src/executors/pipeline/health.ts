/**
 * Pipeline health, decided per window (pure, so it is table-tested).
 *
 * At the end of every health window (agent.yaml `executors.pipeline.health_window`, 10 s by
 * default) the executor takes the messages that came in and errored during that window:
 *
 *     error_rate = errored / in        (0 when nothing came in)
 *     healthy    = running && error_rate <= max_error_rate
 *
 * `max_error_rate` is the job's `deployment.health_check.max_error_rate` (0.1 by default), carried
 * by the assignment. Worked example, window 10 s, max_error_rate 0.1: 200 messages in, 12 errored →
 * 0.06, healthy; next window 180 in, 27 errored → 0.15, unhealthy (the execution's `health.since`
 * moves to that moment); next window 0 in → 0.00, healthy again. Only the last window counts: a
 * burst of errors is forgotten one window after it ends.
 */

/** The health of one window. */
export interface WindowHealth {
  readonly healthy: boolean;
  /** errored / in over the window, 0..1. */
  readonly errorRate: number;
}

/** The health of a window in which `messagesIn` came in and `errored` errored. */
export function windowHealth(messagesIn: number, errored: number, maxErrorRate: number): WindowHealth {
  const errorRate = messagesIn <= 0 ? 0 : Math.min(1, Math.max(0, errored / messagesIn));
  return { healthy: errorRate <= maxErrorRate, errorRate };
}

/** Rolls health windows over a pipeline's running counters. */
export class HealthWindows {
  readonly #maxErrorRate: number;
  #lastIn = 0;
  #lastErrored = 0;
  #current: WindowHealth = { healthy: true, errorRate: 0 };

  constructor(maxErrorRate: number) {
    this.#maxErrorRate = maxErrorRate;
  }

  /** The health of the last closed window (healthy with rate 0 before the first one closes). */
  get current(): WindowHealth {
    return this.#current;
  }

  /** Closes the window at the counters' current values; says whether health flipped. */
  roll(counters: { readonly in: number; readonly errored: number }): WindowHealth & {
    readonly flipped: boolean;
    readonly in: number;
    readonly errored: number;
  } {
    const dIn = counters.in - this.#lastIn;
    const dErrored = counters.errored - this.#lastErrored;
    this.#lastIn = counters.in;
    this.#lastErrored = counters.errored;
    const next = windowHealth(dIn, dErrored, this.#maxErrorRate);
    const flipped = next.healthy !== this.#current.healthy;
    this.#current = next;
    return { ...next, flipped, in: dIn, errored: dErrored };
  }
}
