import { describe, expect, it } from "vitest";
import type { Clock } from "./clock.js";
import { systemClock } from "./clock.js";
import { FAKE_CLOCK_EPOCH_MS, FakeClock } from "./fake-clock.js";

describe("FakeClock", () => {
  it("starts at 2026-01-01T00:00:00Z by default, or at the given time", () => {
    expect(new FakeClock().now()).toBe(FAKE_CLOCK_EPOCH_MS);
    expect(new Date(FAKE_CLOCK_EPOCH_MS).toISOString()).toBe("2026-01-01T00:00:00.000Z");
    expect(new FakeClock(42).now()).toBe(42);
  });

  it("only moves when told to", () => {
    const clock = new FakeClock(1000);
    expect(clock.now()).toBe(1000);
    expect(clock.now()).toBe(1000);
  });

  it("advance() moves forward and returns the new time", () => {
    const clock = new FakeClock(1000);
    expect(clock.advance(250)).toBe(1250);
    expect(clock.advance(0)).toBe(1250);
    expect(clock.now()).toBe(1250);
  });

  it("advance() rejects negative and non-finite steps", () => {
    const clock = new FakeClock(1000);
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => clock.advance(bad)).toThrow(expect.objectContaining({ code: "invalid_argument" }));
    }
    expect(clock.now()).toBe(1000);
  });

  it("set() jumps anywhere, backwards included (clock steps)", () => {
    const clock = new FakeClock(1000);
    expect(clock.set(5000)).toBe(5000);
    expect(clock.set(10)).toBe(10);
    expect(clock.now()).toBe(10);
    expect(() => clock.set(Number.NaN)).toThrow(expect.objectContaining({ code: "invalid_argument" }));
    expect(() => new FakeClock(Number.NaN)).toThrow(expect.objectContaining({ code: "invalid_argument" }));
  });

  it("is a Clock, interchangeable with systemClock", () => {
    const clocks: Clock[] = [new FakeClock(7), systemClock];
    for (const clock of clocks) expect(typeof clock.now()).toBe("number");
  });
});
