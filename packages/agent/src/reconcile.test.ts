import { create } from "@bufbuild/protobuf";
import { type Assignment, AssignmentSchema } from "@edgeplane/api";
import { describe, expect, it } from "vitest";
import { type HeldSummary, judgeRevision, planApply } from "./reconcile.js";

function a(id: string, type = "pipeline", desiredState = "running"): Assignment {
  return create(AssignmentSchema, { executionId: id, jobId: `job-${id}`, type, desiredState });
}

const ids = (list: readonly Assignment[]): string[] => list.map((x) => x.executionId);

describe("judgeRevision", () => {
  it.each([
    [5, 4, "apply"],
    [1, 0, "apply"],
    [4, 4, "duplicate"],
    [0, 0, "duplicate"],
    [3, 4, "stale"],
  ] as const)("revision %i against applied %i is %s", (incoming, applied, verdict) => {
    expect(judgeRevision(incoming, applied)).toBe(verdict);
  });
});

describe("planApply", () => {
  const held = (entries: Record<string, HeldSummary>): Map<string, HeldSummary> =>
    new Map(Object.entries(entries));

  it("starts new assignments desired running and records new stopped ones as canceled", () => {
    const plan = planApply(new Map(), new Set(), [a("e1"), a("e2", "query"), a("e3", "query", "stopped")]);
    expect(ids(plan.start)).toEqual(["e1", "e2"]);
    expect(ids(plan.cancelUnstarted)).toEqual(["e3"]);
    expect(plan.stop).toEqual([]);
    expect(plan.remove).toEqual([]);
  });

  it("is idempotent: the same set against what it produced is an empty plan", () => {
    const desired = [a("e1"), a("e2", "query")];
    const plan = planApply(
      held({ e1: { phase: "active", type: "pipeline" }, e2: { phase: "ended", type: "query" } }),
      new Set(["e2"]),
      desired,
    );
    expect(plan).toEqual({ start: [], stop: [], remove: [], cancelUnstarted: [], pruneFinished: [] });
  });

  it("stops active executions desired stopped, and stops and removes those that left the set", () => {
    const plan = planApply(
      held({
        e1: { phase: "active", type: "pipeline" },
        e2: { phase: "active", type: "query" },
        e3: { phase: "ended", type: "query" },
      }),
      new Set(["e3"]),
      [a("e1", "pipeline", "stopped")],
    );
    expect([...plan.stop].sort()).toEqual(["e1", "e2"]);
    expect([...plan.remove].sort()).toEqual(["e2", "e3"]);
    expect(plan.pruneFinished).toEqual(["e3"]);
  });

  it("never runs a finished run-once assignment again, held or not", () => {
    expect(planApply(new Map(), new Set(["q1"]), [a("q1", "query")]).start).toEqual([]);
    const canceled = held({ q1: { phase: "canceled", type: "query" } });
    expect(planApply(canceled, new Set(["q1"]), [a("q1", "query")]).start).toEqual([]);
  });

  it("restarts a canceled long-running assignment that is desired running again, not an ended one", () => {
    expect(
      ids(planApply(held({ p: { phase: "canceled", type: "pipeline" } }), new Set(), [a("p")]).start),
    ).toEqual(["p"]);
    expect(planApply(held({ p: { phase: "ended", type: "pipeline" } }), new Set(), [a("p")]).start).toEqual(
      [],
    );
  });

  it("plans an execution waiting to retry like an active one: kept, or stopped when no longer wanted", () => {
    const retrying = held({
      q1: { phase: "retrying", type: "query" },
      p: { phase: "retrying", type: "pipeline" },
    });
    const keep = planApply(retrying, new Set(), [a("q1", "query"), a("p")]);
    expect([ids(keep.start), keep.stop, keep.remove]).toEqual([[], [], []]);
    const stop = planApply(retrying, new Set(), [a("q1", "query", "stopped")]);
    expect(stop.stop).toEqual(["q1", "p"]);
    expect(stop.remove).toEqual(["p"]);
  });

  it("takes the first of duplicated execution ids", () => {
    const plan = planApply(new Map(), new Set(), [a("e1"), a("e1", "pipeline", "stopped")]);
    expect(ids(plan.start)).toEqual(["e1"]);
    expect(plan.cancelUnstarted).toEqual([]);
  });
});
