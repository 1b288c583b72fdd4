/**
 * Deciding what a desired state means for the executions an agent holds: pure functions, no I/O,
 * no clock. The agent applies the plan (persist first, then stop and start).
 */
import type { Assignment } from "@edgeplane/api";
import { runModeOf } from "./execution-state.js";

/**
 * What to do with a desired state of a given revision:
 * - apply: it is newer than what the agent applied;
 * - duplicate: the revision the agent already applied (a re-send, or push and fetch crossing);
 * - stale: older than what the agent applied (a delayed message, or a control plane behind).
 */
export type RevisionVerdict = "apply" | "duplicate" | "stale";

/** Judges an incoming revision against the applied one. */
export function judgeRevision(incoming: number, applied: number): RevisionVerdict {
  if (incoming > applied) return "apply";
  return incoming === applied ? "duplicate" : "stale";
}

/**
 * How the agent holds an execution, as far as planning is concerned:
 * - active: the executor runs it (or is starting it);
 * - canceled: stopped because the control plane asked (may run again if asked, when long-running);
 * - ended: over on its own (finished, error, timed out), or stopped with the agent;
 * - retrying: its attempt failed and the next one starts after a backoff (restart policy
 *   `on-failure` / `always`); planned like `active` (a cancel or removal ends the wait).
 */
export type HeldPhase = "active" | "canceled" | "ended" | "retrying";

/** One held execution, as the planner sees it. */
export interface HeldSummary {
  readonly phase: HeldPhase;
  /** The job type it runs (decides long-running vs run-once). */
  readonly type: string;
}

/** What to do to converge on a desired assignment set. */
export interface ApplyPlan {
  /** Assignments to start (new and desired running, or long-running ones asked to run again). */
  readonly start: readonly Assignment[];
  /** Held executions to stop because the control plane asked (desired "stopped" or removed). */
  readonly stop: readonly string[];
  /** Held executions to forget (after stopping them) because they left the set. */
  readonly remove: readonly string[];
  /** New assignments that arrive already "stopped": recorded as canceled, never run. */
  readonly cancelUnstarted: readonly Assignment[];
  /** Finished run-once executions that left the set: their final status is dropped. */
  readonly pruneFinished: readonly string[];
}

/**
 * Plans the moves from what the agent holds to `desired`. Idempotent: planning the same set
 * against the result of applying it yields an empty plan.
 *
 * - A new assignment desired running starts; one desired stopped is recorded as canceled.
 * - A held, active assignment keeps running while desired running; it stops when desired
 *   stopped or removed.
 * - A run-once assignment with a final status (`finished`) never runs again while it stays in
 *   the set; the status is dropped when it leaves the set.
 * - A long-running assignment canceled earlier starts again when it is desired running again;
 *   one that ended on its own is left alone (its restart policy belongs to the executor layer).
 *
 * | held phase | desired running | desired stopped | absent from set |
 * |---|---|---|---|
 * | (none, not finished) | start | cancelUnstarted | — |
 * | (none, finished run-once) | keep | keep | pruneFinished |
 * | active or retrying | keep | stop | stop + remove |
 * | canceled | start if long-running | keep | remove |
 * | ended | keep | keep | remove |
 */
export function planApply(
  held: ReadonlyMap<string, HeldSummary>,
  finished: ReadonlySet<string>,
  desired: readonly Assignment[],
): ApplyPlan {
  const start: Assignment[] = [];
  const stop: string[] = [];
  const remove: string[] = [];
  const cancelUnstarted: Assignment[] = [];
  const pruneFinished: string[] = [];
  const wanted = new Set<string>();
  for (const a of desired) {
    if (wanted.has(a.executionId)) continue; // a duplicated id: the first one wins
    wanted.add(a.executionId);
    const h = held.get(a.executionId);
    const running = a.desiredState !== "stopped";
    if (!h) {
      if (finished.has(a.executionId)) continue;
      if (running) start.push(a);
      else cancelUnstarted.push(a);
      continue;
    }
    const live = h.phase === "active" || h.phase === "retrying";
    if (live && !running) stop.push(a.executionId);
    else if (h.phase === "canceled" && running && runModeOf(a.type) === "long-running") start.push(a);
  }
  for (const [id, h] of held) {
    if (wanted.has(id)) continue;
    if (h.phase === "active" || h.phase === "retrying") stop.push(id);
    remove.push(id);
  }
  for (const id of finished) if (!wanted.has(id)) pruneFinished.push(id);
  return { start, stop, remove, cancelUnstarted, pruneFinished };
}
