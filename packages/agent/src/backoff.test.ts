import { describe, expect, it } from "vitest";
import { backoffDelay, jitter } from "./backoff.js";

describe("backoffDelay", () => {
  it("doubles from the base, stays within [cap/2, cap] and is capped at maxMs", () => {
    expect(backoffDelay(0, {}, () => 0)).toBe(250);
    expect(backoffDelay(0, {}, () => 1)).toBe(500);
    expect(backoffDelay(3, {}, () => 0)).toBe(2000);
    expect(backoffDelay(3, {}, () => 1)).toBe(4000);
    expect(backoffDelay(50, {}, () => 1)).toBe(30_000);
    expect(backoffDelay(50, { baseMs: 10, maxMs: 100 }, () => 0)).toBe(50);
    for (let attempt = 0; attempt < 40; attempt++) {
      const d = backoffDelay(attempt);
      expect(d).toBeGreaterThan(0);
      expect(d).toBeLessThanOrEqual(30_000);
    }
  });
});

describe("jitter", () => {
  it("spreads a period by ±fraction", () => {
    expect(jitter(5000, 0.1, () => 0)).toBe(4500);
    expect(jitter(5000, 0.1, () => 1)).toBe(5500);
    expect(jitter(5000, 0.1, () => 0.5)).toBe(5000);
  });
});
