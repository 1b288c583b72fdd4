import { describe, expect, it } from "vitest";
import { newId } from "./ids.js";

describe("newId", () => {
  it("is prefixed, label-safe, unique and sorts by creation time", () => {
    const a = newId("job", 1_000);
    const b = newId("job", 2_000);
    expect(a).toMatch(/^job-[0-9a-z]{26}$/);
    expect(a < b).toBe(true);
    const many = new Set(Array.from({ length: 10_000 }, () => newId("x", 5)));
    expect(many.size).toBe(10_000);
  });
});
