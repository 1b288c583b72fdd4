import { describe, expect, it } from "vitest";
import { allowedFrom, canTransition, isTerminalJobState, JOB_STATES, JOB_TRANSITIONS } from "./job-state.js";

describe("job state table", () => {
  it("answers every pair from the table", () => {
    for (const from of JOB_STATES) {
      for (const to of JOB_STATES) {
        expect(canTransition(from, to)).toBe((JOB_TRANSITIONS[from] as readonly string[]).includes(to));
      }
    }
  });

  it("never leaves deleted, never moves to itself, and reaches deleted from everywhere else", () => {
    for (const s of JOB_STATES) {
      expect(canTransition("deleted", s)).toBe(false);
      expect(canTransition(s, s)).toBe(false);
      if (s !== "deleted") expect(canTransition(s, "deleted")).toBe(true);
    }
  });

  it("derives allowedFrom and terminal states", () => {
    expect(allowedFrom("stopped").sort()).toEqual(["completed", "failed", "pending", "queued", "running"]);
    expect(allowedFrom("deleted")).not.toContain("deleted");
    expect(JOB_STATES.filter(isTerminalJobState)).toEqual(["completed", "failed", "stopped", "deleted"]);
  });
});
