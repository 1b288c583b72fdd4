/**
 * The clock seam. Code that needs "now" takes a {@link Clock} instead of calling `Date.now()`,
 * so unit tests can drive time with a {@link FakeClock} and never sleep.
 *
 * Kept in testkit for now; it may move to `@edgeplane/core` once production code needs it.
 */

/** A source of wall-clock time. */
export interface Clock {
  /** Milliseconds since the Unix epoch, like `Date.now()`. */
  now(): number;
}

/** The real clock: `Date.now()`. */
export const systemClock: Clock = Object.freeze({ now: () => Date.now() });
