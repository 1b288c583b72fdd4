import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { failureBudget, failureBudgetExceeded } from "./budget.js";

const budget = (max_failed_nodes: number, max_failed_nodes_percent: number) => ({
  max_failed_nodes,
  max_failed_nodes_percent,
});

describe("failure budget", () => {
  it.each([
    ["10 targets, max 2: 2 failed is within", 2, 10, budget(2, 100), undefined],
    ["10 targets, max 2: 3 failed exceeds", 3, 10, budget(2, 100), "failed_nodes 3 > max_failed_nodes 2"],
    ["25 targets, 10%: 2 ≤ 2.5", 2, 25, budget(10, 10), undefined],
    [
      "25 targets, 10%: 3 > 2.5",
      3,
      25,
      budget(10, 10),
      "failed_nodes 3 > max_failed_nodes_percent 10% of 25 targets (2.5)",
    ],
    ["defaults over 40 targets: 4 ≤ 4", 4, 40, budget(10, 10), undefined],
    [
      "defaults over 40 targets: 5 > 4",
      5,
      40,
      budget(10, 10),
      "failed_nodes 5 > max_failed_nodes_percent 10% of 40 targets (4)",
    ],
    ["max 0: the first failure", 1, 10, budget(0, 100), "failed_nodes 1 > max_failed_nodes 0"],
    [
      "percent 0: the first failure",
      1,
      10,
      budget(10, 0),
      "failed_nodes 1 > max_failed_nodes_percent 0% of 10 targets (0)",
    ],
    ["no failure never exceeds", 0, 10, budget(0, 0), undefined],
    ["float noise: 0.07% of 10000 = 7 is within", 7, 10_000, budget(100, 0.07), undefined],
    [
      "both trip: both named",
      3,
      10,
      budget(2, 10),
      "failed_nodes 3 > max_failed_nodes 2; failed_nodes 3 > max_failed_nodes_percent 10% of 10 targets (1)",
    ],
  ])("%s", (_name, failed, targets, b, want) => {
    expect(failureBudgetExceeded(failed, targets, b)).toBe(want);
  });

  it("tolerates exactly failureBudget() failures (count OR percent, strictly greater)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 500 }),
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 0, max: 10_000 }),
        (targets, max, hundredths) => {
          const b = budget(max, hundredths / 100);
          const tolerated = failureBudget(targets, b);
          expect(failureBudgetExceeded(tolerated, targets, b)).toBeUndefined();
          expect(failureBudgetExceeded(tolerated + 1, targets, b)).toBeDefined();
          // Independent integer arithmetic: exceeded ⇔ f > max ∨ f > (hundredths/100)% × targets.
          for (const f of [tolerated, tolerated + 1]) {
            const exact = f > max || 10_000 * f > hundredths * targets;
            expect(failureBudgetExceeded(f, targets, b) !== undefined).toBe(exact);
          }
        },
      ),
    );
  });
});
