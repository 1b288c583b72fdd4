import type { JobRecord, NodeStateType } from "@edgeplane/store";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  assignmentFor,
  assignmentSignature,
  computeAssignments,
  executionIdFor,
  type PlacementNode,
  placementJob,
} from "./placement.js";

let seq = 0;
function job(
  overrides: Partial<JobRecord> & { selector?: unknown; specExtra?: Record<string, unknown> } = {},
): JobRecord {
  const { selector, specExtra, ...rest } = overrides;
  const id = rest.id ?? `job-${++seq}`;
  return {
    id,
    namespace: "default",
    name: `name-${id}`,
    type: "pipeline",
    labels: {},
    spec: {
      name: `name-${id}`,
      type: "pipeline",
      ...(selector === undefined ? {} : { selector }),
      ...specExtra,
    },
    version: 1,
    revision: 1,
    stableVersion: 0,
    state: "pending",
    stateMessage: "",
    stateDetails: {},
    deploymentId: "",
    createdAt: 1,
    updatedAt: 1,
    ...rest,
  };
}

function node(
  labels: Record<string, string>,
  state: NodeStateType = "ready",
  held: string[] = [],
  id = "n1",
): PlacementNode {
  return { id, labels, state, heldJobIds: new Set(held) };
}

describe("executionIdFor", () => {
  it("is deterministic per job × version × node and differs otherwise", () => {
    const a = executionIdFor("job-1", 1, "n1");
    // Pinned: a changed derivation would rename every running execution.
    expect(a).toBe("exec-67x8knz0mswdyq987afd");
    expect(executionIdFor("jü", 4_294_967_295, "node-000123")).toBe("exec-q8yewefh7fgsc71vs9hf");
    expect(a).toMatch(/^exec-[0-9a-hjkmnp-tv-z]{20}$/);
    expect(executionIdFor("job-1", 1, "n1")).toBe(a);
    expect(
      new Set([
        a,
        executionIdFor("job-1", 2, "n1"),
        executionIdFor("job-1", 1, "n2"),
        executionIdFor("job-2", 1, "n1"),
      ]).size,
    ).toBe(4);
    // The separator keeps ("a", 11, "n") and ("a1", 1, "n") apart.
    expect(executionIdFor("a", 11, "n")).not.toBe(executionIdFor("a1", 1, "n"));
  });
});

describe("assignmentFor", () => {
  it("copies what the agent needs from the job version's spec", () => {
    const j = job({
      id: "job-x",
      version: 3,
      namespace: "prod",
      name: "logs",
      type: "query",
      specExtra: {
        config: { command: "uptime" },
        timeouts: { execution_timeout: 30, queue_timeout: 0, total_timeout: 600 },
        restart_policy: "never",
        deployment: { strategy: "immediate", health_check: { max_error_rate: 0.25 } },
      },
    });
    expect(assignmentFor(j, "n1")).toEqual({
      executionId: executionIdFor("job-x", 3, "n1"),
      jobId: "job-x",
      jobVersion: 3,
      namespace: "prod",
      jobName: "logs",
      type: "query",
      config: { command: "uptime" },
      desiredState: "running",
      timeouts: { executionTimeout: 30, queueTimeout: 0, totalTimeout: 600 },
      restartPolicy: "never",
      maxErrorRate: 0.25,
      deploymentId: "",
    });
  });
});

describe("computeAssignments", () => {
  const eu = placementJob(job({ id: "job-eu", selector: { match_labels: { region: "eu" } } }));
  const all = placementJob(job({ id: "job-all" }));
  const arm = placementJob(job({ id: "job-arm", selector: { match_expressions: ["arch=arm64"] } }));
  const byId = placementJob(job({ id: "job-id", selector: { match_ids: ["n2"] } }));
  const stopped = placementJob(job({ id: "job-stopped", state: "stopped" }));
  const failed = placementJob(job({ id: "job-failed", state: "failed" }));
  const running = placementJob(
    job({ id: "job-running", state: "running", selector: { match_labels: { region: "eu" } } }),
  );
  const jobs = [eu, all, arm, byId, stopped, failed, running];
  const ids = (n: PlacementNode) => computeAssignments(jobs, n).map((a) => a.jobId);

  it("gives a ready node every placed job whose selector matches, sorted by job id", () => {
    expect(ids(node({ region: "eu", arch: "arm64" }))).toEqual([
      "job-all",
      "job-arm",
      "job-eu",
      "job-running",
    ]);
    expect(ids(node({ region: "us" }))).toEqual(["job-all"]);
    expect(ids(node({}, "ready", [], "n2"))).toEqual(["job-all", "job-id"]);
  });

  it("lets a draining, disconnected or lost node keep what it holds and gain nothing", () => {
    for (const state of ["draining", "disconnected", "lost"] as const) {
      expect(ids(node({ region: "eu", arch: "arm64" }, state, ["job-eu", "job-stopped"]))).toEqual([
        "job-eu",
      ]);
      expect(ids(node({ region: "eu" }, state, []))).toEqual([]);
    }
  });

  it("drops a held job the node no longer matches", () => {
    expect(ids(node({ region: "us" }, "draining", ["job-eu", "job-all"]))).toEqual(["job-all"]);
  });

  it("a job with an unreadable selector matches no node", () => {
    const broken = placementJob(job({ id: "job-broken", selector: { match_expressions: ["a in ("] } }));
    expect(broken.selector).toBeUndefined();
    expect(computeAssignments([broken], node({}))).toEqual([]);
  });

  it("property: the set is exactly the matching placed jobs (ready) or their intersection with held ones", () => {
    const states = ["pending", "queued", "running", "completed", "failed", "stopped", "deleted"] as const;
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ region: fc.constantFrom("eu", "us", undefined), state: fc.constantFrom(...states) }),
          {
            maxLength: 12,
          },
        ),
        fc.constantFrom("eu", "us"),
        fc.constantFrom("ready", "draining", "disconnected", "lost") as fc.Arbitrary<NodeStateType>,
        fc.array(fc.nat(11), { maxLength: 6 }),
        (specs, region, state, heldIdx) => {
          const js = specs.map((s, i) =>
            placementJob(
              job({
                id: `job-${String(i).padStart(2, "0")}`,
                state: s.state,
                selector: s.region === undefined ? undefined : { match_labels: { region: s.region } },
              }),
            ),
          );
          const held = heldIdx.map((i) => `job-${String(i).padStart(2, "0")}`);
          const got = computeAssignments(js, node({ region }, state, held)).map((a) => a.jobId);
          const want = specs
            .map((s, i) => ({ ...s, id: `job-${String(i).padStart(2, "0")}` }))
            .filter((s) => ["pending", "queued", "running"].includes(s.state))
            .filter((s) => s.region === undefined || s.region === region)
            .filter((s) => state === "ready" || held.includes(s.id))
            .map((s) => s.id);
          expect(got).toEqual(want);
        },
      ),
    );
  });
});

describe("assignmentSignature", () => {
  it("changes exactly when the set changes", () => {
    const a = assignmentFor(job({ id: "job-a" }), "n1");
    const b = assignmentFor(job({ id: "job-b" }), "n1");
    const b2 = assignmentFor(job({ id: "job-b", version: 2 }), "n1");
    expect(assignmentSignature([a, b])).toBe(assignmentSignature([{ ...a }, { ...b }]));
    expect(assignmentSignature([a, b])).not.toBe(assignmentSignature([a, b2]));
    expect(assignmentSignature([a])).not.toBe(assignmentSignature([a, b]));
    expect(assignmentSignature([])).toBe("");
  });
});
