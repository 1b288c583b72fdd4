import { describe, expect, it } from "vitest";
import { runFleet } from "./fleet.js";
import { fleetNodeIds, formatTimeline, seededRandom, simulate } from "./simulate.js";
import { makeSpec } from "./test-fixtures.js";

describe("runFleet", () => {
  it("prints a rolling rollout that fails on one node and rolls back (golden timeline)", () => {
    const spec = makeSpec({
      strategy: "rolling",
      max_parallel: 2,
      max_failed_nodes: 0,
      health_check: { deadline: "2m", min_healthy_time: "30s" },
    });
    const result = runFleet({
      spec,
      stable: { version: 1, specEqualsCurrent: false },
      fleet: {
        nodeIds: ["a", "b", "c", "d"],
        // d is offline until 2m30s: its wave (at 1m20s) is dispatched while it is away.
        node: (id) => (id === "d" ? { offlineUntil: 150_000 } : {}),
        version: (id, _v, role) => ({
          startDelayMs: 10_000,
          runMs: 1000,
          outcome: role === "new" && id === "c" ? "unhealthy" : "healthy",
        }),
      },
    });
    expect(formatTimeline(result)).toBe(
      `${[
        "+0s     d-1           started           version 2 to 4 nodes, rolling, wave size 2, 2 waves, deadline 2m0s, min_healthy_time 30s, failure budget 0",
        "+0s     d-1           dispatched        wave 1 of 2: version 2 to 2 nodes, deadline 2m0s [c, b]",
        "+40s    d-1           node_healthy      healthy for min_healthy_time 30s [b]",
        "+40s    d-1           dispatched        wave 2 of 2: version 2 to 1 node, deadline 2m0s [a]",
        "+1m20s  d-1           node_healthy      healthy for min_healthy_time 30s [a]",
        "+1m20s  d-1           dispatched        wave 2 of 2: version 2 to 1 node, deadline 2m0s [d]",
        "+2m0s   d-1           node_failed       not done within deadline 2m0s of its assignment: execution reports unhealthy [c]",
        "+2m0s   d-1           halted            failed_nodes 1 > max_failed_nodes 0; failed_nodes 1 > max_failed_nodes_percent 10% of 4 targets (0.4) [c]",
        "+2m0s   d-1           failed            failed_nodes 1 > max_failed_nodes 0; failed_nodes 1 > max_failed_nodes_percent 10% of 4 targets (0.4) [c]",
        "+2m0s   d-1           rollback_started  auto-rollback: the spec of stable version 1 is written as a new version and deployed (failed_nodes 1 > max_failed_nodes 0; failed_nodes 1 > max_failed_nodes_percent 10% of 4 targets (0.4))",
        "+2m0s   d-1-rollback  started           version 3 to 4 nodes, rolling, wave size 2, 2 waves, deadline 2m0s, min_healthy_time 30s, failure budget 0",
        "+2m0s   d-1-rollback  dispatched        wave 1 of 2: version 3 to 2 nodes, deadline 2m0s [c, b]",
        "+2m40s  d-1-rollback  node_healthy      healthy for min_healthy_time 30s [c, b]",
        "+2m40s  d-1-rollback  dispatched        wave 2 of 2: version 3 to 2 nodes, deadline 2m0s [a, d]",
        "+3m20s  d-1-rollback  node_healthy      healthy for min_healthy_time 30s [a, d]",
        "+3m20s  d-1-rollback  succeeded         4/4 nodes done",
        "+3m20s  d-1           rolled_back       rollback deployment d-1-rollback succeeded",
        "ended at +3m20s after 43 planner calls",
        "result: d-1 (version 2, 2/4 done, 1 failed) rolled back: rollback deployment d-1-rollback succeeded",
        "result: d-1-rollback (version 3, rollback, 4/4 done, 0 failed) succeeded: 4/4 nodes done",
        "stable version: 3",
      ].join("\n")}\n`,
    );
    // d was assigned while offline, kept its slot, and its assignment was withdrawn at the failure
    // (it had not started version 2), so it never ran version 2.
    const unassign = result.actions.find((a) => a.action.kind === "unassign");
    expect(unassign?.action).toEqual({ kind: "unassign", nodeIds: ["d"], version: 2 });
  });
});

describe("simulate", () => {
  const canary = makeSpec({
    strategy: "canary",
    canary_percent: 10,
    max_parallel_percent: 20,
    auto_promote: true,
    health_check: { deadline: "5m", min_healthy_time: "1m" },
  });

  it("prints a header, the timeline and the outcome", () => {
    const out = formatTimeline(simulate({ spec: canary, nodes: 20, failRate: 0, seed: 7, stableVersion: 1 }));
    const lines = out.trimEnd().split("\n");
    expect(lines[0]).toBe(
      "simulation: pipeline job, canary, 20 nodes, fail-rate 0, seed 7, stable version 1",
    );
    expect(lines[1]).toMatch(
      /^\+0s +d-1 +started +version 2 to 20 nodes, canary, 2 canaries first, wave size 4, 6 waves/,
    );
    expect(lines[2]).toMatch(/dispatched +canary wave \(wave 1 of 6\): version 2 to 2 nodes/);
    expect(out).toContain("promoted      auto_promote: all 2 canaries done (healthy for 1m0s)");
    expect(lines.at(-2)).toMatch(
      /^result: d-1 \(version 2, 20\/20 done, 0 failed\) succeeded: 20\/20 nodes done$/,
    );
    expect(lines.at(-1)).toBe("stable version: 2");
  });

  it("fail-rate 1 fails the canaries and rolls back to the stable version", () => {
    const result = simulate({ spec: canary, nodes: 20, failRate: 1, seed: 1, stableVersion: 4 });
    expect(result.deployments.map((d) => [d.jobVersion, d.state])).toEqual([
      [5, "rolled_back"],
      [6, "succeeded"],
    ]);
    expect(result.stableVersion).toBe(6);
    expect(
      result.timeline.some(
        (e) => e.kind === "halted" && e.reason.includes("any failed canary fails the deployment"),
      ),
    ).toBe(true);
  });

  it("without a stable version a failure says why nothing is rolled back", () => {
    const result = simulate({ spec: canary, nodes: 5, failRate: 1, seed: 1 });
    expect(result.deployments.map((d) => d.state)).toEqual(["failed"]);
    expect(result.timeline.at(-1)).toMatchObject({
      kind: "rollback_skipped",
      reason: "there is no stable version to roll back to: no deployment of this job has succeeded yet",
    });
  });

  it("waits for a person at awaiting_promotion, or continues when one promotes", () => {
    const manual = makeSpec({ ...canary.deployment, auto_promote: false });
    const waiting = simulate({ spec: manual, nodes: 10, failRate: 0, seed: 3 });
    expect(waiting.deployments[0]?.state).toBe("awaiting_promotion");
    expect(waiting.stalled).toBe(false);
    const promoted = simulate({ spec: manual, nodes: 10, failRate: 0, seed: 3, promoteAfterMs: 600_000 });
    expect(promoted.deployments[0]?.state).toBe("succeeded");
    expect(promoted.timeline.some((e) => e.kind === "promoted" && e.details.by === "user")).toBe(true);
  });

  it("has deterministic helpers", () => {
    expect(fleetNodeIds(3)).toEqual(["node-01", "node-02", "node-03"]);
    expect(fleetNodeIds(120)[119]).toBe("node-120");
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 5 }, () => a());
    expect(xs).toEqual(Array.from({ length: 5 }, () => b()));
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true);
  });
});
