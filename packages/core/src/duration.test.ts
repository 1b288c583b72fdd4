import { describe, expect, it } from "vitest";
import { formatDuration, parseDuration } from "./duration.js";

describe("parseDuration", () => {
  it.each([
    ["0", 0],
    ["0s", 0],
    ["90s", 90_000],
    ["5m", 300_000],
    ["1h30m", 5_400_000],
    ["1.5h", 5_400_000],
    ["250ms", 250],
    ["1m30.5s", 90_500],
    ["2h45m30s", 9_930_000],
    [".5s", 500],
    ["1000us", 1],
    ["1µs", 0],
  ])("%s is %d ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    "",
    "5",
    "-5s",
    "5 s",
    "5S",
    "1d",
    "s",
    "1h-5m",
    "1..5s",
    "abc",
    "5m ",
    " 5m",
    "1e3s",
    "99999999h",
  ])("refuses %j", (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it("formats like Go", () => {
    expect(formatDuration(5_400_000)).toBe("1h30m0s");
    expect(formatDuration(30_000)).toBe("30s");
    expect(formatDuration(250)).toBe("250ms");
    expect(formatDuration(0)).toBe("0s");
  });
});
