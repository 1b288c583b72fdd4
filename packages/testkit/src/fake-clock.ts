import { EdgeplaneError } from "@edgeplane/core";
import type { Clock } from "./clock.js";

/** 2026-01-01T00:00:00.000Z: the default start of a {@link FakeClock}, a round number in logs. */
export const FAKE_CLOCK_EPOCH_MS = Date.UTC(2026, 0, 1);

/**
 * A {@link Clock} that only moves when a test moves it.
 *
 * @example
 * ```ts
 * const clock = new FakeClock();
 * const lease = createLease({ clock, ttlMs: 10_000 });
 * clock.advance(10_001);
 * expect(lease.expired()).toBe(true);
 * ```
 */
export class FakeClock implements Clock {
  #nowMs: number;

  /** @param startMs - the initial time in ms since the epoch (default {@link FAKE_CLOCK_EPOCH_MS}). */
  constructor(startMs: number = FAKE_CLOCK_EPOCH_MS) {
    this.#nowMs = checkTime("startMs", startMs);
  }

  /** The current fake time in ms since the epoch. */
  now(): number {
    return this.#nowMs;
  }

  /**
   * Moves time forward by `ms` (≥ 0) and returns the new time. Time never runs backwards
   * through `advance`; use {@link FakeClock.set} to model a clock step (NTP correction, skew).
   */
  advance(ms: number): number {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new EdgeplaneError(
        "invalid_argument",
        `FakeClock.advance: ms must be a finite number ≥ 0, got ${ms}`,
      );
    }
    this.#nowMs += ms;
    return this.#nowMs;
  }

  /** Sets the time to `ms` since the epoch (may go backwards) and returns it. */
  set(ms: number): number {
    this.#nowMs = checkTime("ms", ms);
    return this.#nowMs;
  }
}

function checkTime(name: string, ms: number): number {
  if (!Number.isFinite(ms)) {
    throw new EdgeplaneError("invalid_argument", `FakeClock: ${name} must be a finite number, got ${ms}`);
  }
  return ms;
}
