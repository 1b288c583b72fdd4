import { describe, expect, it } from "vitest";
import { nodeOf } from "./context.js";
import { checkControl } from "./controls.js";
import { createDeployment } from "./create.js";
import { lateNodeVersion } from "./late-nodes.js";
import { plan } from "./plan.js";
import {
  Driver,
  disconnected,
  execution,
  healthy,
  ids,
  lost,
  makeDeployment,
  makeSpec,
  onOld,
  unhealthy,
} from "./test-fixtures.js";
import type { Action, DeploymentRecord, Plan } from "./types.js";
import { MAX_EVENTS } from "./types.js";

const S = 1000;
const M = 60 * S;
const hc = { deadline: "5m", min_healthy_time: "30s" };
const stable = { version: 1, specEqualsCurrent: false };

const rollingSpec = (d: Record<string, unknown> = {}) =>
  makeSpec({ strategy: "rolling", max_parallel: 3, health_check: hc, ...d });
const canarySpec = (d: Record<string, unknown> = {}) =>
  makeSpec({ strategy: "canary", canary_count: 2, max_parallel: 3, health_check: hc, ...d });

const kinds = (p: Plan) => p.events.map((e) => e.kind);
const actionsOf = <K extends Action["kind"]>(p: Plan, kind: K) =>
  p.actions.filter((a): a is Extract<Action, { kind: K }> => a.kind === kind);

/** Marks `nodes` healthy since `since` and syncs at since + 30s so they become done. */
function makeDone(drv: Driver, nodes: readonly string[], since: number): Plan {
  drv.set(nodes, healthy(drv.record.jobVersion, since));
  return drv.sync(since + 30 * S);
}

describe("rolling", () => {
  it("10 targets, max_parallel 3: 3 assigned; the 4th only after one is done", () => {
    const drv = new Driver(makeDeployment(rollingSpec(), ids(10)), { stable });
    const t = drv.record.targets;
    const first = drv.sync(0);
    expect(drv.record.state).toBe("running");
    expect(kinds(first)).toEqual(["started", "dispatched"]);
    expect(Driver.assigned(first)).toEqual(t.slice(0, 3));
    expect(first.events[1]?.reason).toBe("wave 1 of 4: version 2 to 3 nodes, deadline 5m0s");
    expect(first.actions).toContainEqual({
      kind: "job_state",
      state: "running",
      message: "rolling out version 2 (rolling) to 10 nodes",
    });

    expect(Driver.assigned(drv.sync(20 * S))).toEqual([]);
    drv.set(t.slice(1, 2), healthy(2, 25 * S));
    const next = drv.sync(55 * S);
    expect(kinds(next)).toEqual(["node_healthy", "dispatched"]);
    expect(Driver.assigned(next)).toEqual([t[3]]);
    expect(drv.record.counters).toMatchObject({
      targets: 10,
      waves: 4,
      currentWave: 2,
      updated: 4,
      healthy: 1,
    });
    expect(drv.record.progress).toBeCloseTo(0.1);
  });

  it("max_parallel_percent 25 of 10 → 3 at once; both set → the smaller", () => {
    const pct = new Driver(
      makeDeployment(rollingSpec({ max_parallel: 0, max_parallel_percent: 25 }), ids(10)),
    );
    expect(Driver.assigned(pct.sync(0))).toHaveLength(3);
    const both = new Driver(
      makeDeployment(rollingSpec({ max_parallel: 5, max_parallel_percent: 20 }), ids(10)),
    );
    expect(Driver.assigned(both.sync(0))).toHaveLength(2);
  });

  it("counts a node disconnected at dispatch against the wave; it is assigned, not dropped, and fails only at its deadline", () => {
    const drv = new Driver(
      makeDeployment(rollingSpec({ max_parallel: 2, max_failed_nodes_percent: 100 }), ids(4)),
    );
    const [a, b, c] = drv.record.targets as [string, string, string];
    drv.set([a], disconnected);
    expect(Driver.assigned(drv.sync(0))).toEqual([a, b]);
    makeDone(drv, [b], 10 * S);
    // b done → c assigned; a (offline) still holds its slot.
    expect(drv.nodesIn("assigned")).toEqual([a, c]);
    expect(drv.record.counters.unhealthy).toBe(1);
    // Still offline just before its deadline: still waiting, nothing more dispatched.
    expect(Driver.assigned(drv.sync(5 * M - 1))).toEqual([]);
    const atDeadline = drv.sync(5 * M);
    expect(nodeOf(drv.record, a)).toMatchObject({ state: "failed", failedAt: 5 * M });
    expect(actionsOf(atDeadline, "assign")).toHaveLength(1);
    // It failed once: never reported again, and never done afterwards.
    drv.set([a], healthy(2, 5 * M));
    const later = drv.sync(6 * M);
    expect(later.events.filter((e) => e.kind === "node_failed").flatMap((e) => e.nodes)).not.toContain(a);
    expect(nodeOf(drv.record, a)?.state).toBe("failed");
  });

  it("an offline node that comes back in time is done, not failed", () => {
    const drv = new Driver(makeDeployment(rollingSpec({ max_parallel: 2 }), ids(2)));
    const [a, b] = drv.record.targets as [string, string];
    drv.set([a], disconnected);
    drv.sync(0);
    drv.set([b], healthy(2, 0));
    drv.sync(30 * S);
    drv.set([a], healthy(2, 4 * M));
    drv.sync(4 * M + 30 * S);
    expect(nodeOf(drv.record, a)?.state).toBe("done");
    expect(drv.record.state).toBe("succeeded");
  });

  it("fails a node that goes lost mid-rollout", () => {
    const drv = new Driver(makeDeployment(rollingSpec(), ids(10)));
    drv.sync(0);
    const [a] = drv.record.targets as [string];
    drv.set([a], lost);
    const p = drv.sync(10 * S);
    expect(p.events.find((e) => e.kind === "node_failed")).toMatchObject({
      reason: "node lost while updating",
      nodes: [a],
    });
    expect(drv.record.counters.failed).toBe(1);
  });

  it("restarts a node's min_healthy_time clock after a blip", () => {
    const drv = new Driver(makeDeployment(rollingSpec(), ids(3)));
    const [a] = drv.record.targets as [string];
    drv.sync(0);
    drv.set([a], healthy(2, 10 * S)).sync(10 * S);
    drv.set([a], unhealthy(2)).sync(30 * S);
    drv.set([a], healthy(2, 35 * S)).sync(40 * S);
    expect(nodeOf(drv.record, a)?.state).toBe("assigned");
    drv.sync(64 * S);
    expect(nodeOf(drv.record, a)?.state).toBe("assigned");
    drv.sync(65 * S);
    expect(nodeOf(drv.record, a)).toMatchObject({ state: "done", doneAt: 65 * S });
  });

  it("asks to be requeued at the next deadline or health-clock end", () => {
    const drv = new Driver(makeDeployment(rollingSpec(), ids(5)));
    expect(drv.sync(0).requeueAfterMs).toBe(5 * M);
    const [a] = drv.record.targets as [string];
    drv.set([a], healthy(2, 10 * S));
    expect(drv.sync(20 * S).requeueAfterMs).toBe(20 * S);
  });
});

describe("failure budget", () => {
  it("10 targets, max_failed_nodes 2: 2 failed → still running; 3 → failed", () => {
    const drv = new Driver(
      makeDeployment(
        rollingSpec({ max_parallel: 0, max_failed_nodes: 2, max_failed_nodes_percent: 100 }),
        ids(10),
      ),
      {
        stable,
      },
    );
    drv.sync(0);
    const t = drv.record.targets;
    drv.set(t.slice(0, 2), lost);
    drv.sync(1 * S);
    expect(drv.record.state).toBe("running");
    drv.set(t.slice(0, 3), lost);
    const p = drv.sync(2 * S);
    expect(p.events.find((e) => e.kind === "halted")).toEqual({
      time: 2 * S,
      kind: "halted",
      reason: "failed_nodes 3 > max_failed_nodes 2",
      nodes: t.slice(0, 3),
      details: {
        rule: "failure_budget",
        failed_nodes: "3",
        targets: "10",
        max_failed_nodes: "2",
        max_failed_nodes_percent: "100",
      },
    });
    expect(drv.record.state).toBe("rolling_back");
  });

  it("max_failed_nodes_percent 10 of 25 = 2.5: 2 failed → running; 3 → failed", () => {
    const drv = new Driver(
      makeDeployment(rollingSpec({ max_parallel: 0, max_failed_nodes: 10, no_auto_rollback: true }), ids(25)),
    );
    drv.sync(0);
    const t = drv.record.targets;
    drv.set(t.slice(0, 2), lost).sync(1 * S);
    expect(drv.record.state).toBe("running");
    drv.set(t.slice(0, 3), lost).sync(2 * S);
    expect(drv.record.state).toBe("failed");
    expect(drv.record.message).toBe(
      "failed: failed_nodes 3 > max_failed_nodes_percent 10% of 25 targets (2.5); not rolled back: no_auto_rollback is set: nodes stay as they are",
    );
  });

  it("succeeds with failures within the budget, and marks the version stable", () => {
    const drv = new Driver(
      makeDeployment(
        rollingSpec({ max_parallel: 0, max_failed_nodes: 1, max_failed_nodes_percent: 100 }),
        ids(4),
      ),
    );
    drv.sync(0);
    const [a, ...rest] = drv.record.targets as [string, ...string[]];
    drv.set([a], lost);
    const p = makeDone(drv, rest, 10 * S);
    expect(drv.record.state).toBe("succeeded");
    expect(drv.record.message).toBe("succeeded: 3/4 nodes done, 1 failed (within the failure budget of 1)");
    expect(actionsOf(p, "mark_stable")).toEqual([{ kind: "mark_stable", version: 2 }]);
    expect(actionsOf(p, "job_state")[0]?.state).toBe("running");
    expect(drv.record.nextSteps).toEqual([]);
  });

  it("dispatches nothing after a halt, and withdraws assignments nodes have not started", () => {
    const drv = new Driver(
      makeDeployment(rollingSpec({ max_parallel: 3, max_failed_nodes: 0, no_auto_rollback: true }), ids(10)),
    );
    drv.sync(0);
    const [a, b, c] = drv.record.targets as [string, string, string];
    drv.set([a], lost).set([b], disconnected).set([c], unhealthy(2));
    const p = drv.sync(5 * S);
    expect(drv.record.state).toBe("failed");
    // b never started version 2 → withdrawn; c runs it → left as it is.
    expect(actionsOf(p, "unassign")).toEqual([{ kind: "unassign", nodeIds: [b], version: 2 }]);
    expect(nodeOf(drv.record, b)?.withdrawnAt).toBe(5 * S);
    drv.set(drv.record.targets, healthy(2, 0));
    for (const at of [1 * M, 10 * M]) {
      const later = drv.sync(at);
      expect(later.actions).toEqual([]);
      expect(later.changed).toBe(false);
    }
  });
});

describe("immediate", () => {
  it("assigns every node at once and ignores health", () => {
    const drv = new Driver(makeDeployment(makeSpec({}), ids(6)), { stable });
    expect(Driver.assigned(drv.sync(0))).toHaveLength(6);
    drv.set(drv.record.targets, unhealthy(2, 0.9));
    const p = drv.sync(1 * S);
    expect(drv.record.state).toBe("succeeded");
    expect(p.events.find((e) => e.kind === "node_healthy")?.reason).toBe(
      "running version 2 (immediate: health not checked)",
    );
    expect(p.requeueAfterMs).toBeUndefined();
  });

  it("run-once job: done when finished, job completed", () => {
    const drv = new Driver(makeDeployment(makeSpec({}, { type: "query" }), ids(3)));
    drv.sync(0);
    drv.set(drv.record.targets, execution(2, "finished"));
    const p = drv.sync(5 * S);
    expect(drv.record.state).toBe("succeeded");
    expect(actionsOf(p, "job_state")[0]?.state).toBe("completed");
  });

  it("a deployment with no targets succeeds at once", () => {
    const drv = new Driver(makeDeployment(makeSpec({}), []));
    const p = drv.sync(0);
    expect(drv.record).toMatchObject({ state: "succeeded", progress: 1, finishedAt: 0 });
    expect(kinds(p)).toEqual(["started", "succeeded"]);
  });
});

describe("canary", () => {
  it("canary_percent 10 of 25 → 3 canaries first, nothing else until they are done", () => {
    const drv = new Driver(
      makeDeployment(canarySpec({ canary_count: undefined, canary_percent: 10 }), ids(25)),
      { stable },
    );
    const p = drv.sync(0);
    expect(Driver.assigned(p)).toEqual(drv.record.canaries);
    expect(drv.record.canaries).toHaveLength(3);
    expect(p.events[1]?.reason).toBe("canary wave (wave 1 of 9): version 2 to 3 nodes, deadline 5m0s");
    drv.set(drv.record.canaries.slice(0, 2), healthy(2, 0));
    expect(Driver.assigned(drv.sync(1 * M))).toEqual([]);
    expect(drv.record.state).toBe("running");
  });

  it("waits in awaiting_promotion (promote or rollback) when every canary is done", () => {
    const drv = new Driver(makeDeployment(canarySpec(), ids(10)), { stable });
    drv.sync(0);
    const p = makeDone(drv, drv.record.canaries, 10 * S);
    expect(drv.record.state).toBe("awaiting_promotion");
    expect(drv.record.nextSteps).toEqual(["promote", "rollback"]);
    expect(Driver.assigned(p)).toEqual([]);
    expect(p.events.at(-1)).toMatchObject({
      kind: "awaiting_promotion",
      reason:
        "all 2 canaries done (healthy for 30s); promote to continue with 8 nodes in 3 waves of up to 3, or roll back",
    });
    expect(p.requeueAfterMs).toBeUndefined();
    // Waits as long as it takes.
    expect(drv.sync(10 * 24 * 60 * M).changed).toBe(false);
  });

  it("counts in words a person reads: 1 node in 1 wave", () => {
    const drv = new Driver(makeDeployment(canarySpec(), ids(3)), { stable });
    drv.sync(0);
    const p = makeDone(drv, drv.record.canaries, 10 * S);
    expect(p.events.at(-1)?.reason).toBe(
      "all 2 canaries done (healthy for 30s); promote to continue with 1 node in 1 wave of up to 3, or roll back",
    );
  });

  it("promote is refused unless awaiting_promotion, then continues as rolling", () => {
    const drv = new Driver(makeDeployment(canarySpec(), ids(10)), { stable });
    drv.sync(0);
    const early = drv.sync(5 * S, { requested: "promote" });
    expect(early.rejected).toEqual({
      control: "promote",
      reason:
        "promote is not allowed while the deployment is running (allowed: pause, cancel, rollback): 0 of 2 canaries done; promote applies once every canary is done",
    });
    makeDone(drv, drv.record.canaries, 10 * S);
    const p = drv.sync(2 * M, { requested: "promote" });
    expect(p.rejected).toBeUndefined();
    expect(drv.record).toMatchObject({ state: "running", promoted: true });
    const rest = drv.record.targets.filter((id) => !drv.record.canaries.includes(id));
    expect(Driver.assigned(p)).toEqual(rest.slice(0, 3));
    expect(p.events.find((e) => e.kind === "promoted")?.details).toEqual({ by: "user", control: "promote" });
  });

  it("auto_promote continues as rolling in the same sync the last canary is done", () => {
    const drv = new Driver(makeDeployment(canarySpec({ auto_promote: true }), ids(10)));
    drv.sync(0);
    const p = makeDone(drv, drv.record.canaries, 10 * S);
    expect(kinds(p)).toEqual(["node_healthy", "promoted", "dispatched"]);
    expect(Driver.assigned(p)).toHaveLength(3);
    expect(drv.record.promoted).toBe(true);
  });

  it("any failed canary fails the deployment, even within the failure budget", () => {
    const drv = new Driver(
      makeDeployment(canarySpec({ max_failed_nodes: 5, max_failed_nodes_percent: 50 }), ids(10)),
      {
        stable,
      },
    );
    drv.sync(0);
    const [c1] = drv.record.canaries as [string];
    drv.set([c1], lost);
    const p = drv.sync(10 * S);
    expect(p.events.find((e) => e.kind === "halted")?.reason).toBe(
      `canary ${c1} failed (node lost while updating); any failed canary fails the deployment`,
    );
    expect(drv.record.state).toBe("rolling_back");
  });

  it("promote is refused for a rolling deployment", () => {
    const d = makeDeployment(rollingSpec(), ids(3));
    const p = plan({ deployment: d, observations: {}, requested: "promote" }, 0);
    expect(p.rejected?.reason).toContain("a rolling deployment has no canaries to promote");
  });
});

describe("controls", () => {
  it("pause stops dispatch while deadlines keep counting; resume dispatches again", () => {
    const drv = new Driver(
      makeDeployment(
        rollingSpec({ max_parallel: 2, max_failed_nodes: 5, max_failed_nodes_percent: 100 }),
        ids(6),
      ),
    );
    drv.sync(0);
    const [a, b] = drv.record.targets as [string, string];
    const paused = drv.sync(10 * S, { requested: "pause" });
    expect(drv.record.state).toBe("paused");
    expect(paused.events[0]?.reason).toBe(
      "paused by a user: no new assignments; 2 assigned nodes keep their deadlines",
    );
    expect(paused.events[0]?.details).toEqual({ control: "pause" });
    expect(drv.record.nextSteps).toEqual(["resume", "cancel"]);
    makeDone(drv, [a], 20 * S);
    expect(drv.nodesIn("assigned")).toEqual([b]);
    const failedWhilePaused = drv.sync(5 * M);
    expect(nodeOf(drv.record, b)?.state).toBe("failed");
    expect(Driver.assigned(failedWhilePaused)).toEqual([]);
    const resumed = drv.sync(6 * M, { requested: "resume", requestedReason: "b was replaced" });
    expect(kinds(resumed)).toEqual(["resumed", "dispatched"]);
    // The person's reason is in the control's own event, not in what the planner did next.
    expect(resumed.events[0]).toMatchObject({
      reason: 'resumed by a user (reason given: "b was replaced")',
      details: { control: "resume", user_reason: "b was replaced" },
    });
    expect(resumed.events[1]?.details).not.toHaveProperty("user_reason");
    expect(Driver.assigned(resumed)).toHaveLength(2);
  });

  it("cancel: no more assignments, nodes keep what they have", () => {
    const drv = new Driver(makeDeployment(rollingSpec({ max_parallel: 2 }), ids(6)));
    drv.sync(0);
    const [a, b] = drv.record.targets as [string, string];
    drv.set([a], healthy(2, 0)).set([b], disconnected);
    const p = drv.sync(10 * S, { requested: "cancel" });
    expect(drv.record.state).toBe("cancelled");
    expect(p.actions).toEqual([
      { kind: "unassign", nodeIds: [b], version: 2 },
      {
        kind: "job_state",
        state: "running",
        message: "deployment d1 of version 2 cancelled: 0/6 nodes done; nodes keep what they have",
      },
    ]);
    expect(Driver.assigned(drv.sync(1 * M))).toEqual([]);
  });

  it("refuses controls that do not apply, with the state and what is allowed", () => {
    const drv = new Driver(makeDeployment(canarySpec(), ids(4)), { stable });
    drv.sync(0);
    expect(drv.sync(1 * S, { requested: "resume" }).rejected?.reason).toBe(
      "resume is not allowed while the deployment is running (allowed: pause, cancel, rollback): only a paused deployment can be resumed",
    );
    makeDone(drv, drv.record.canaries, 10 * S);
    expect(drv.sync(1 * M, { requested: "cancel" }).rejected?.reason).toBe(
      "cancel is not allowed while the deployment is awaiting_promotion (allowed: promote, rollback): the canaries already run the new version: promote to finish the rollout or roll back to undo it",
    );
    const pending = makeDeployment(rollingSpec(), ids(2));
    expect(checkControl(pending, "pause", stable)).toContain(
      "while the deployment is pending (allowed: cancel)",
    );
  });

  it("next_steps omits rollback when there is no stable version", () => {
    const drv = new Driver(makeDeployment(rollingSpec(), ids(4)));
    drv.sync(0);
    expect(drv.record.nextSteps).toEqual(["pause", "cancel"]);
    drv.stable = stable;
    drv.sync(1 * S);
    expect(drv.record.nextSteps).toEqual(["pause", "cancel", "rollback"]);
  });
});

describe("rollback", () => {
  function failNow(drv: Driver, at: number): Plan {
    drv.set(drv.record.targets, lost);
    return drv.sync(at);
  }

  it("auto-rollback: one rollback action to the stable version, re-asked until the applier records it", () => {
    const drv = new Driver(makeDeployment(rollingSpec(), ids(5)), { stable });
    drv.sync(0);
    const p = failNow(drv, 10 * S);
    expect(kinds(p)).toEqual(["node_failed", "halted", "failed", "rollback_started"]);
    expect(actionsOf(p, "rollback")).toEqual([
      {
        kind: "rollback",
        toVersion: 1,
        reason: "failed_nodes 5 > max_failed_nodes_percent 10% of 5 targets (0.5)",
        manual: false,
      },
    ]);
    expect(drv.record.state).toBe("rolling_back");
    // The applier crashed before creating the rollback deployment: the next sync asks again.
    expect(actionsOf(drv.sync(20 * S), "rollback")).toHaveLength(1);
    drv.record = { ...drv.record, rollbackDeploymentId: "d2" };
    const waiting = drv.sync(30 * S, { rollback: { id: "d2", state: "running" }, supersededBy: "d2" });
    expect(waiting.actions).toEqual([]);
    expect(drv.record.state).toBe("rolling_back");
    drv.sync(40 * S, { rollback: { id: "d2", state: "succeeded" } });
    expect(drv.record).toMatchObject({ state: "rolled_back", finishedAt: 40 * S });
  });

  it("a failed rollback deployment leaves the original failed; no second rollback", () => {
    const drv = new Driver(makeDeployment(rollingSpec(), ids(2)), { stable });
    drv.sync(0);
    failNow(drv, 1 * S);
    drv.record = { ...drv.record, rollbackDeploymentId: "d2" };
    drv.sync(2 * S, { rollback: { id: "d2", state: "failed" } });
    expect(drv.record.state).toBe("failed");
    expect(drv.record.message).toBe(
      "failed: rollback deployment d2 ended failed; nothing is rolled back again",
    );
    const again = drv.sync(3 * S, { requested: "rollback" });
    expect(again.rejected?.reason).toContain("was already rolled back (rollback deployment d2)");
    expect(actionsOf(again, "rollback")).toEqual([]);
  });

  it("the rollback deployment uses the same settings without the canary phase, and never rolls back itself", () => {
    const failedDeployment = makeDeployment(canarySpec({ max_parallel: 2 }), ids(6));
    const rb = createDeployment({
      id: "d2",
      jobId: "j1",
      jobVersion: 3,
      spec: canarySpec(),
      targets: ids(6),
      now: 0,
      rollbackOf: { deployment: failedDeployment, toVersion: 1 },
    });
    expect(rb).toMatchObject({
      strategy: "rolling",
      canaries: [],
      isRollback: true,
      rollbackOfDeploymentId: "d1",
      rollbackToVersion: 1,
    });
    expect(rb.rollout.canary_count).toBeUndefined();
    const drv = new Driver(rb, { stable: { version: 1, specEqualsCurrent: true } });
    expect(Driver.assigned(drv.sync(0))).toHaveLength(2);
    const p = failNow(drv, 10 * S);
    expect(drv.record.state).toBe("failed");
    expect(actionsOf(p, "rollback")).toEqual([]);
    expect(p.events.at(-1)).toMatchObject({ kind: "rollback_skipped", details: { code: "is_rollback" } });
    expect(actionsOf(p, "job_state")[0]?.message).toMatch(/^rollback to version 1 \(as version 3\) failed: /);
  });

  it("never rolls back to an identical spec, and says why", () => {
    const drv = new Driver(makeDeployment(rollingSpec(), ids(3)), {
      stable: { version: 1, specEqualsCurrent: true },
    });
    drv.sync(0);
    const p = failNow(drv, 1 * S);
    expect(drv.record.state).toBe("failed");
    expect(actionsOf(p, "rollback")).toEqual([]);
    expect(p.events.at(-1)).toMatchObject({
      kind: "rollback_skipped",
      reason: "stable version 1 has the same spec as version 2: rolling back would change nothing",
      details: { code: "identical_spec" },
    });
    expect(drv.record.nextSteps).toEqual([]);
  });

  it("without a stable version there is nothing to roll back to", () => {
    const drv = new Driver(makeDeployment(rollingSpec(), ids(3)));
    drv.sync(0);
    const p = failNow(drv, 1 * S);
    expect(p.events.at(-1)).toMatchObject({
      kind: "rollback_skipped",
      details: { code: "no_stable_version" },
    });
  });

  it("no_auto_rollback: leaves nodes as they are; a person may still roll back once", () => {
    const drv = new Driver(makeDeployment(rollingSpec({ no_auto_rollback: true }), ids(3)), { stable });
    drv.sync(0);
    const p = failNow(drv, 1 * S);
    expect(drv.record.state).toBe("failed");
    expect(p.events.at(-1)).toMatchObject({
      kind: "rollback_skipped",
      details: { code: "no_auto_rollback" },
    });
    expect(drv.record.nextSteps).toEqual(["rollback"]);
    const manual = drv.sync(1 * M, { requested: "rollback" });
    expect(actionsOf(manual, "rollback")).toEqual([
      { kind: "rollback", toVersion: 1, reason: "requested by a user", manual: true },
    ]);
    expect(drv.record.state).toBe("rolling_back");
  });

  it("a manual rollback of a running deployment stops its dispatch", () => {
    const drv = new Driver(makeDeployment(rollingSpec({ max_parallel: 1 }), ids(4)), { stable });
    drv.sync(0);
    const p = drv.sync(1 * S, { requested: "rollback" });
    expect(drv.record.state).toBe("rolling_back");
    expect(kinds(p)).toEqual(["rollback_started"]);
    drv.set(drv.record.targets, healthy(2, 0));
    expect(Driver.assigned(drv.sync(1 * M))).toEqual([]);
  });
});

describe("superseded", () => {
  it("stops a deployment when a newer one starts; nothing dispatched, nothing withdrawn", () => {
    const drv = new Driver(makeDeployment(rollingSpec(), ids(6)));
    drv.sync(0);
    const p = drv.sync(10 * S, { supersededBy: "d9", requested: "pause" });
    expect(drv.record.state).toBe("superseded");
    expect(p.actions).toEqual([]);
    expect(p.rejected?.reason).toBe("deployment d1 was superseded by deployment d9");
    expect(p.events).toEqual([
      {
        time: 10 * S,
        kind: "superseded",
        reason: "deployment d9 of a newer version started",
        nodes: [],
        details: { superseded_by: "d9" },
      },
    ]);
    expect(drv.sync(1 * M).changed).toBe(false);
  });
});

describe("plan is pure", () => {
  function deepFreeze<T>(value: T): T {
    if (value !== null && typeof value === "object") {
      for (const v of Object.values(value)) deepFreeze(v);
      Object.freeze(value);
    }
    return value;
  }

  it("never mutates its snapshot, and planning its own output again changes nothing", () => {
    const d = makeDeployment(canarySpec(), ids(8));
    const snapshot = deepFreeze({
      deployment: d,
      observations: Object.fromEntries(d.targets.map((id) => [id, onOld])),
      stable,
    });
    const first = plan(snapshot, 0);
    expect(first.changed).toBe(true);
    const again = plan({ ...snapshot, deployment: first.deployment }, 0);
    expect(again.changed).toBe(false);
    expect(again.actions).toEqual([]);
    expect(again.events).toEqual([]);
  });

  it("keeps at most MAX_EVENTS timeline entries", () => {
    let d: DeploymentRecord = makeDeployment(canarySpec(), ids(4));
    d = {
      ...d,
      events: Array.from({ length: MAX_EVENTS }, (_, i) => ({
        time: i,
        kind: "paused",
        reason: "x",
        nodes: [],
        details: {},
      })),
    };
    const p = plan({ deployment: d, observations: {} }, 1000);
    expect(p.deployment.events).toHaveLength(MAX_EVENTS);
    expect(p.deployment.events.at(-1)?.kind).toBe("dispatched");
  });
});

describe("late nodes", () => {
  it("wait for an active deployment, then get the stable version", () => {
    expect(lateNodeVersion({ id: "d1", state: "running" }, 1)).toEqual({ kind: "wait", deploymentId: "d1" });
    expect(lateNodeVersion({ id: "d1", state: "rolling_back" }, 1)).toEqual({
      kind: "wait",
      deploymentId: "d1",
    });
    expect(lateNodeVersion({ id: "d1", state: "succeeded" }, 2)).toEqual({ kind: "assign", version: 2 });
    expect(lateNodeVersion(undefined, 0)).toEqual({ kind: "none" });
  });
});
