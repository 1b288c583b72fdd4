/**
 * The failure budget: a deployment fails when its failed nodes exceed `max_failed_nodes` OR exceed
 * `max_failed_nodes_percent` of the targets (either one, strictly greater).
 *
 * Worked examples:
 * - 10 targets, `max_failed_nodes: 2` (percent 100): 2 failed → still within; 3 failed → 3 > 2, fails.
 * - 25 targets, `max_failed_nodes_percent: 10` (count 10): 10% × 25 = 2.5; 2 failed → within;
 *   3 failed → 3 > 2.5, fails.
 * - defaults (10 nodes, 10%) over 40 targets: 10% × 40 = 4, so the 5th failure fails it (5 > 4),
 *   long before the count (10) would.
 * - `max_failed_nodes: 0` or `max_failed_nodes_percent: 0`: the first failure fails it.
 */
import type { RolloutSpec } from "./types.js";

type BudgetSpec = Pick<RolloutSpec, "max_failed_nodes" | "max_failed_nodes_percent">;

/** `pct`% of `targets`, rounded to 1e-9 so float noise (0.07 × 10000) cannot move a boundary. */
function percentOf(pct: number, targets: number): number {
  return Math.round(((pct * targets) / 100) * 1e9) / 1e9;
}

/** A number as reasons print it: integers bare, others with up to 2 decimals. */
export function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Math.round(n * 100) / 100);
}

/**
 * Why `failed` failed nodes out of `targets` exceed the budget, or undefined when they do not.
 * Reasons read like `failed_nodes 3 > max_failed_nodes 2` or
 * `failed_nodes 3 > max_failed_nodes_percent 10% of 25 targets (2.5)` (both, joined, when both trip).
 */
export function failureBudgetExceeded(
  failed: number,
  targets: number,
  rollout: BudgetSpec,
): string | undefined {
  const reasons: string[] = [];
  if (failed > rollout.max_failed_nodes) {
    reasons.push(`failed_nodes ${failed} > max_failed_nodes ${rollout.max_failed_nodes}`);
  }
  const threshold = percentOf(rollout.max_failed_nodes_percent, targets);
  if (failed > threshold) {
    reasons.push(
      `failed_nodes ${failed} > max_failed_nodes_percent ${formatNumber(rollout.max_failed_nodes_percent)}% of ${targets} targets (${formatNumber(threshold)})`,
    );
  }
  return reasons.length > 0 ? reasons.join("; ") : undefined;
}

/** How many failed nodes a rollout over `targets` tolerates (the largest count within budget). */
export function failureBudget(targets: number, rollout: BudgetSpec): number {
  return Math.max(
    0,
    Math.min(rollout.max_failed_nodes, Math.floor(percentOf(rollout.max_failed_nodes_percent, targets))),
  );
}
