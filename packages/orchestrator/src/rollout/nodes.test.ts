import { describe, expect, it } from "vitest";
import { evaluateNode, nextNodeWake } from "./nodes.js";
import type { RolloutSettings } from "./settings.js";
import { disconnected, execution, healthy, lost, onOld, unhealthy } from "./test-fixtures.js";
import type { NodeObservation, NodeRollout } from "./types.js";

const S = 1000;
const M = 60 * S;

/** rolling, deadline 5m, min_healthy_time 30s, max_error_rate 0.1. */
const rolling: RolloutSettings = {
  strategy: "rolling",
  runOnce: false,
  ignoreHealth: false,
  waveSize: 3,
  canaryCount: 0,
  autoPromote: false,
  deadlineMs: 5 * M,
  minHealthyMs: 30 * S,
  maxErrorRate: 0.1,
  maxFailedNodes: 2,
  maxFailedNodesPercent: 100,
  autoRollback: true,
};
const runOnce: RolloutSettings = { ...rolling, runOnce: true };
const immediate: RolloutSettings = {
  ...rolling,
  strategy: "immediate",
  ignoreHealth: true,
  deadlineMs: undefined,
};

const assigned: NodeRollout = { state: "assigned", wave: 1, assignedAt: 0, deadlineAt: 5 * M };

/** Feeds observations at instants, returning the node after each. */
function run(steps: [number, NodeObservation][], s = rolling, start: NodeRollout = assigned) {
  let node = start;
  const out: { at: number; node: NodeRollout; change?: string }[] = [];
  for (const [at, obs] of steps) {
    const v = evaluateNode(node, obs, 2, s, at);
    node = v.node;
    out.push({ at, node, ...(v.change ? { change: v.change } : {}) });
  }
  return out;
}

describe("evaluateNode: long-running, health checked", () => {
  it("is done once healthy for min_healthy_time (healthy at 10s → done at 40s, not 39.999s)", () => {
    expect(run([[39_999, healthy(2, 10 * S)]]).at(-1)?.node.state).toBe("assigned");
    const last = run([[40 * S, healthy(2, 10 * S)]]).at(-1);
    expect(last?.change).toBe("done");
    expect(last?.node.doneAt).toBe(40 * S);
  });

  it("counts the clock from its own first sighting when the agent gives no health.since", () => {
    const steps = run([
      [10 * S, healthy(2)],
      [39 * S, healthy(2)],
      [40 * S, healthy(2)],
    ]);
    expect(steps.map((x) => x.node.state)).toEqual(["assigned", "assigned", "done"]);
    expect(steps[2]?.node.doneAt).toBe(40 * S);
  });

  it("never starts the clock before the assignment", () => {
    const start: NodeRollout = { state: "assigned", wave: 1, assignedAt: 60 * S, deadlineAt: 6 * M };
    const v = evaluateNode(start, healthy(2, 0), 2, rolling, 80 * S);
    expect(v.node.state).toBe("assigned");
    expect(v.node.healthySince).toBe(60 * S);
    expect(evaluateNode(start, healthy(2, 0), 2, rolling, 90 * S).node.doneAt).toBe(90 * S);
  });

  it("restarts the clock after an unhealthy blip (healthy 10s, blip 30s, healthy 35s → done 65s)", () => {
    const steps = run([
      [10 * S, healthy(2, 10 * S)],
      [30 * S, unhealthy(2)],
      [35 * S, healthy(2, 35 * S)],
      [40 * S, healthy(2, 35 * S)],
      [65 * S, healthy(2, 35 * S)],
    ]);
    expect(steps.map((x) => x.node.state)).toEqual(["assigned", "assigned", "assigned", "assigned", "done"]);
    expect(steps[4]?.node.doneAt).toBe(65 * S);
  });

  it("does not trust a health.since older than an unhealthy sighting", () => {
    const steps = run([
      [30 * S, unhealthy(2)],
      [40 * S, healthy(2, 0)],
    ]);
    expect(steps[1]?.node.healthySince).toBe(30 * S);
  });

  it("honours a blip the agent saw between two syncs (its health.since moved)", () => {
    const steps = run([
      [10 * S, healthy(2, 10 * S)],
      [40 * S, healthy(2, 25 * S)],
      [55 * S, healthy(2, 25 * S)],
    ]);
    expect(steps.map((x) => x.node.state)).toEqual(["assigned", "assigned", "done"]);
  });

  it.each([
    [
      "error rate above max_error_rate",
      { liveness: "ready", execution: { version: 2, state: "running", healthy: true, errorRate: 0.2 } },
    ],
    ["execution reports unhealthy", unhealthy(2, 0)],
    ["still on the old version", onOld],
    ["execution error", execution(2, "error")],
    ["disconnected", disconnected],
  ] as [string, NodeObservation][])("is not healthy when: %s", (_name, obs) => {
    const v = evaluateNode(assigned, obs, 2, rolling, 60 * S);
    expect(v.node.state).toBe("assigned");
    expect(v.node.healthySince).toBeUndefined();
  });

  it("accepts an error rate equal to max_error_rate", () => {
    const obs: NodeObservation = {
      liveness: "ready",
      execution: { version: 2, state: "running", healthy: true, errorRate: 0.1, healthySince: 0 },
    };
    expect(evaluateNode(assigned, obs, 2, rolling, 30 * S).change).toBe("done");
  });

  it("fails exactly once when the deadline passes, and never becomes done afterwards", () => {
    const steps = run([
      [4 * M, unhealthy(2)],
      [5 * M, unhealthy(2)],
      [6 * M, healthy(2, 5 * M)],
      [7 * M, healthy(2, 5 * M)],
    ]);
    expect(steps.map((x) => x.change)).toEqual([undefined, "failed", undefined, undefined]);
    expect(steps.at(-1)?.node.state).toBe("failed");
    expect(steps[1]?.node.reason).toMatch(
      /^not done within deadline 5m0s of its assignment: execution reports unhealthy$/,
    );
  });

  it("fails at the deadline when healthy but not yet for min_healthy_time", () => {
    const v = evaluateNode(assigned, healthy(2, 4 * M + 50 * S), 2, rolling, 5 * M);
    expect(v.change).toBe("failed");
    expect(v.node.reason).toContain("healthy for 10s of min_healthy_time 30s");
  });

  it("is done when it becomes done exactly at the deadline", () => {
    const v = evaluateNode(assigned, healthy(2, 4 * M + 30 * S), 2, rolling, 5 * M);
    expect(v.change).toBe("done");
    expect(v.node.doneAt).toBe(5 * M);
  });

  it("is done, not failed, when a late sync shows it was done before the deadline", () => {
    const v = evaluateNode(assigned, healthy(2, 1 * M), 2, rolling, 9 * M);
    expect(v.change).toBe("done");
    expect(v.node.doneAt).toBe(1 * M + 30 * S);
  });

  it("fails a lost node whether assigned or still pending, but keeps a done node done", () => {
    expect(evaluateNode(assigned, lost, 2, rolling, 10 * S).node.reason).toBe("node lost while updating");
    expect(evaluateNode({ state: "pending", wave: 3 }, lost, 2, rolling, 10 * S).node).toMatchObject({
      state: "failed",
      reason: "node lost before its wave was dispatched",
    });
    const doneNode: NodeRollout = { state: "done", wave: 1, assignedAt: 0, doneAt: 30 * S };
    expect(evaluateNode(doneNode, lost, 2, rolling, 10 * M).node).toBe(doneNode);
  });

  it("keeps a disconnected node waiting (counted unhealthy) until its deadline", () => {
    const v = evaluateNode(assigned, disconnected, 2, rolling, 4 * M);
    expect(v.node.state).toBe("assigned");
    expect(v.unhealthy).toBe(true);
    expect(evaluateNode(assigned, disconnected, 2, rolling, 5 * M).node.reason).toContain(
      "node disconnected",
    );
  });

  it("treats a missing observation as disconnected", () => {
    expect(evaluateNode(assigned, undefined, 2, rolling, 4 * M).node.state).toBe("assigned");
    expect(evaluateNode(assigned, undefined, 2, rolling, 5 * M).node.state).toBe("failed");
  });
});

describe("evaluateNode: run-once and immediate", () => {
  it.each([
    ["finished → done", "finished", "done"],
    ["error → failed", "error", "failed"],
    ["timed_out → failed", "timed_out", "failed"],
    ["canceled → failed", "canceled", "failed"],
    ["running → waits", "running", undefined],
    ["waiting → waits", "waiting", undefined],
  ] as const)("run-once: %s", (_name, state, change) => {
    expect(evaluateNode(assigned, execution(2, state), 2, runOnce, 10 * S).change).toBe(change);
  });

  it("run-once: fails at the deadline when it has not finished", () => {
    expect(evaluateNode(assigned, execution(2, "running"), 2, runOnce, 5 * M).change).toBe("failed");
  });

  it("immediate ignores health: running but unhealthy is done at once", () => {
    const start: NodeRollout = { state: "assigned", wave: 1, assignedAt: 0 };
    expect(evaluateNode(start, unhealthy(2, 0.9), 2, immediate, 1 * S).change).toBe("done");
    expect(evaluateNode(start, execution(2, "error"), 2, immediate, 1 * S).change).toBe("failed");
    // No deadline: a node that never reports waits (until it is lost).
    expect(evaluateNode(start, onOld, 2, immediate, 100 * M).change).toBeUndefined();
  });
});

describe("nextNodeWake", () => {
  it("is the earlier of the deadline and the end of the health clock", () => {
    const node: NodeRollout = { ...assigned, healthySince: 10 * S };
    expect(nextNodeWake(node, rolling, 20 * S)).toBe(40 * S);
    expect(nextNodeWake(assigned, rolling, 20 * S)).toBe(5 * M);
    expect(nextNodeWake({ state: "done", wave: 1 }, rolling, 0)).toBeUndefined();
    expect(nextNodeWake({ state: "assigned", wave: 1, assignedAt: 0 }, immediate, 0)).toBeUndefined();
  });
});
