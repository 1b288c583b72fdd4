import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  canExecutionTransition,
  EXECUTION_STATES,
  EXECUTION_TRANSITIONS,
  type ExecutionStateType,
  executionAllowedFrom,
  isEndedExecutionState,
  isFailedExecutionState,
  isTerminalExecutionState,
  reportApplies,
} from "./execution-state.js";

describe("execution state table", () => {
  it("answers every pair from the table, and allowedFrom is its inverse", () => {
    for (const from of EXECUTION_STATES) {
      for (const to of EXECUTION_STATES) {
        const allowed = (EXECUTION_TRANSITIONS[from] as readonly string[]).includes(to);
        expect(canExecutionTransition(from, to)).toBe(allowed);
        expect(executionAllowedFrom(to).includes(from)).toBe(allowed);
      }
    }
  });

  it("terminal states are final within an attempt; lost gives way to any reported state", () => {
    for (const s of EXECUTION_STATES) {
      expect(canExecutionTransition(s, s)).toBe(false);
      if (isTerminalExecutionState(s)) expect(EXECUTION_TRANSITIONS[s]).toEqual([]);
    }
    expect(EXECUTION_STATES.filter(isTerminalExecutionState)).toEqual([
      "finished",
      "error",
      "timed_out",
      "canceled",
    ]);
    expect(EXECUTION_STATES.filter(isEndedExecutionState)).toEqual([
      "finished",
      "error",
      "timed_out",
      "canceled",
      "lost",
    ]);
    expect(EXECUTION_STATES.filter(isFailedExecutionState)).toEqual(["error", "timed_out", "lost"]);
    expect(executionAllowedFrom("running")).toEqual(["waiting", "lost"]);
  });
});

describe("reportApplies (the monotonic guard)", () => {
  const key = (state: ExecutionStateType, attempt: number, reportedAt: number) => ({
    state,
    attempt,
    reportedAt,
  });

  it.each([
    ["a newer report of the same state", key("running", 1, 10), key("running", 1, 11), true],
    ["a repeat", key("running", 1, 10), key("running", 1, 10), false],
    ["an older report", key("running", 1, 10), key("running", 1, 9), false],
    ["a stale heartbeat after the terminal event", key("finished", 1, 10), key("running", 1, 9), false],
    ["a later non-terminal report after terminal", key("finished", 1, 10), key("running", 1, 99), false],
    ["another terminal state after terminal", key("error", 1, 10), key("finished", 1, 99), false],
    ["a terminal event older than the last heartbeat", key("running", 1, 10), key("error", 1, 5), true],
    ["a non-terminal move that is older", key("running", 1, 10), key("waiting", 1, 5), false],
    [
      "a non-terminal move that is newer (stopped with the agent)",
      key("running", 1, 10),
      key("waiting", 1, 11),
      true,
    ],
    ["a new attempt after a failure", key("error", 1, 10), key("running", 2, 1), true],
    ["an older attempt", key("running", 2, 10), key("finished", 1, 99), false],
    ["a report newer than the last before the loss", key("lost", 1, 10), key("running", 1, 11), true],
    ["a report not newer than the last before the loss", key("lost", 1, 10), key("finished", 1, 10), false],
    ["the first report over a placeholder", key("waiting", 0, 0), key("running", 1, 5), true],
  ] as const)("%s: %s", (_name, current, report, expected) => {
    expect(reportApplies(current, report)).toBe(expected);
  });

  it("is a strict order: never applies both ways, never applies to itself", () => {
    const arb = fc.record({
      state: fc.constantFrom(...EXECUTION_STATES.filter((s) => s !== "lost")),
      attempt: fc.integer({ min: 0, max: 3 }),
      reportedAt: fc.integer({ min: 0, max: 5 }),
    });
    fc.assert(
      fc.property(arb, arb, (a, b) => {
        expect(reportApplies(a, a)).toBe(false);
        expect(reportApplies(a, b) && reportApplies(b, a)).toBe(false);
      }),
    );
  });
});
