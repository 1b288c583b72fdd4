import type { ExecutionRecord } from "@edgeplane/store";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decideRunOnceJob } from "./completion.js";

const T0 = Date.UTC(2026, 0, 1);
const job = { id: "job-1", type: "query" as const, version: 2, state: "running" as const };

function exec(nodeId: string, overrides: Partial<ExecutionRecord> = {}): ExecutionRecord {
  return {
    id: `exec-${nodeId}`,
    jobId: "job-1",
    jobVersion: 2,
    nodeId,
    deploymentId: "",
    namespace: "default",
    jobType: "query",
    restartPolicy: "on-failure",
    desiredState: "running",
    state: "finished",
    createdAt: T0,
    updatedAt: T0,
    startTime: T0,
    finishTime: T0,
    exitCode: 0,
    result: undefined,
    resultTruncated: false,
    resultBytes: 0,
    exception: "",
    progress: 1,
    health: undefined,
    counters: undefined,
    attempt: 1,
    reportedAt: T0,
    endedAt: T0,
    archived: false,
    archivedAt: 0,
    cancelReason: "",
    canceledAt: 0,
    ...overrides,
  };
}

const decide = (
  executions: ExecutionRecord[],
  now = T0,
  extra: Partial<Parameters<typeof decideRunOnceJob>[0]> = {},
) => decideRunOnceJob({ job, executions, now, maxAttempts: 3, retryGraceMs: 60_000, ...extra });

describe("decideRunOnceJob", () => {
  it("completes when every execution of the current version finished", () => {
    const d = decide([exec("n1"), exec("n2"), exec("n3"), exec("n9", { jobVersion: 1, state: "error" })]);
    expect(d).toEqual({
      kind: "completed",
      message: "finished on 3 nodes",
      details: { finished: "3", canceled: "0", executions: "3" },
    });
    expect(decide([exec("n1")])).toMatchObject({ message: "finished on 1 node" });
    expect(decide([exec("n1"), exec("n2", { state: "canceled" })])).toMatchObject({
      kind: "completed",
      message: "finished on 1 node, canceled on 1",
    });
  });

  it("waits while an execution is waiting or running, and with none at all", () => {
    expect(decide([exec("n1"), exec("n2", { state: "running", endedAt: 0 })])).toEqual({ kind: "none" });
    expect(decide([exec("n1"), exec("n2", { state: "waiting", attempt: 0, endedAt: 0 })])).toEqual({
      kind: "none",
    });
    expect(decide([])).toEqual({ kind: "none" });
    expect(decide([exec("n1", { jobVersion: 1 })])).toEqual({ kind: "none" });
  });

  it("fails at once when the restart policy allows no more attempts, naming the node and the reason", () => {
    const never = decide([
      exec("n1"),
      exec("n2", { state: "error", exitCode: 1, exception: "grep: no such file", restartPolicy: "never" }),
      exec("n3", { state: "running", endedAt: 0 }),
    ]);
    expect(never).toEqual({
      kind: "failed",
      message: "node n2: exited with code 1: grep: no such file (attempt 1, restart_policy never)",
      details: { execution_id: "exec-n2", node_id: "n2", failed: "1", finished: "1", executions: "3" },
    });
    const exhausted = decide([exec("n1", { state: "timed_out", attempt: 3, exitCode: undefined })]);
    expect(exhausted).toMatchObject({
      kind: "failed",
      message: "node n1: timed out (attempt 3 of 3, restart_policy on-failure)",
    });
    const lost = decide([
      exec("n1", { state: "lost", exception: "node n1 was lost" }),
      exec("n0", { state: "error", restartPolicy: "never" }),
    ]);
    expect(lost).toMatchObject({
      kind: "failed",
      message: expect.stringMatching(/^node n0: exited with code 0 .*; 1 more execution failed$/),
    });
    expect(decide([exec("n1", { state: "lost" })])).toMatchObject({
      message: "node n1: was lost with its node (attempt 1 of 3, restart_policy on-failure)",
    });
  });

  it("holds a failure with attempts left for the retry grace, then fails", () => {
    const failed = exec("n2", { state: "error", exitCode: 1, endedAt: T0 });
    expect(decide([exec("n1"), failed], T0 + 10_000)).toEqual({ kind: "none", recheckAfterMs: 50_000 });
    expect(decide([exec("n1"), failed], T0 + 60_000)).toMatchObject({
      kind: "failed",
      message: "node n2: exited with code 1 (attempt 1 of 3, restart_policy on-failure; no retry came)",
    });
    // A retry (attempt 2 running) replaces the failure: nothing to decide.
    expect(
      decide([exec("n1"), exec("n2", { state: "running", attempt: 2, endedAt: 0 })], T0 + 90_000),
    ).toEqual({ kind: "none" });
  });

  it("leaves jobs that are not run-once or not pending/running alone", () => {
    const failing = [exec("n1", { state: "error", restartPolicy: "never" })];
    expect(
      decideRunOnceJob({
        job: { ...job, type: "pipeline" },
        executions: failing,
        now: T0,
        maxAttempts: 3,
        retryGraceMs: 1,
      }),
    ).toEqual({ kind: "none" });
    for (const state of ["queued", "completed", "failed", "stopped", "deleted"] as const)
      expect(
        decideRunOnceJob({
          job: { ...job, state },
          executions: failing,
          now: T0,
          maxAttempts: 3,
          retryGraceMs: 1,
        }),
      ).toEqual({ kind: "none" });
  });

  it("never completes with an execution not ended, never fails without a final failure", () => {
    const states = ["waiting", "running", "finished", "error", "timed_out", "canceled", "lost"] as const;
    const arb = fc.array(
      fc.record({
        state: fc.constantFrom(...states),
        attempt: fc.integer({ min: 1, max: 4 }),
        policy: fc.constantFrom("never", "on-failure", "always"),
      }),
      { minLength: 1, maxLength: 8 },
    );
    fc.assert(
      fc.property(arb, fc.integer({ min: 0, max: 120_000 }), (specs, elapsed) => {
        const executions = specs.map((s, i) =>
          exec(`n${i}`, { state: s.state, attempt: s.attempt, restartPolicy: s.policy, endedAt: T0 }),
        );
        const d = decide(executions, T0 + elapsed);
        const ended = (s: string) => !["waiting", "running"].includes(s);
        if (d.kind === "completed")
          expect(executions.every((e) => ["finished", "canceled"].includes(e.state))).toBe(true);
        if (d.kind === "failed")
          expect(
            executions.some(
              (e) =>
                ["error", "timed_out", "lost"].includes(e.state) &&
                (e.state === "lost" || e.restartPolicy === "never" || e.attempt >= 3 || elapsed >= 60_000),
            ),
          ).toBe(true);
        if (d.kind === "none" && executions.every((e) => ended(e.state)) && d.recheckAfterMs === undefined)
          expect.unreachable("all ended without a pending retry must decide");
      }),
    );
  });
});
