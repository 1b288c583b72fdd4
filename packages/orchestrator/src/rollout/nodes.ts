/**
 * Judging one node: is it done, failed, or still on its way? Pure; one function for every
 * strategy, steered by {@link RolloutSettings}.
 *
 * Long-running jobs (pipelines) under rolling or canary: a node is *healthy* when it is reachable
 * (ready or draining), its execution runs the deployment's version, reports healthy, and its error
 * rate is ≤ `max_error_rate`. It is *done* once healthy without a break for `min_healthy_time`
 * (the clock starts at the agent's `health.since`, never before the assignment nor before the last
 * unhealthy observation; any unhealthy observation, a disconnection included, restarts it). It has
 * *failed* when `deadline` passes after its assignment before it is done. Worked example:
 * deadline 5m, min_healthy_time 30s, assigned at 0:00, healthy at 0:40, blip at 1:00, healthy
 * again at 1:05 → done at 1:35; had it blipped until 4:40 it would fail at 5:00.
 *
 * Run-once jobs (query, update, config): done when the execution of the version finished; failed
 * when it ended in error, timed_out, canceled or lost, or when the deadline passes first.
 *
 * Immediate: health is ignored: done as soon as the execution of the version runs (or finished);
 * failed if it ends in error (run-once or not), or when a deadline is set and passes first.
 *
 * Every strategy: a node whose liveness is `lost` fails at once (unless already done), whether
 * its wave came or not; a `disconnected` node is merely not healthy (its deadline keeps counting).
 */
import { formatDuration } from "@edgeplane/core";
import { formatNumber } from "./budget.js";
import type { RolloutSettings } from "./settings.js";
import type { ExecutionState, NodeObservation, NodeRollout } from "./types.js";

/** Execution states that end a run-once execution without success. */
const FAILED_EXECUTION: ReadonlySet<ExecutionState> = new Set(["error", "timed_out", "canceled", "lost"]);

/** Why a node failed, for grouping timeline entries. */
export type FailureKind = "lost" | "execution" | "deadline";

/** The outcome of judging one node at one instant. */
export interface NodeVerdict {
  /** The node's updated progress (the same object when nothing changed). */
  readonly node: NodeRollout;
  /** Set when the node became done or failed in this evaluation. */
  readonly change?: "done" | "failed";
  /** Set with `change: "failed"`. */
  readonly failureKind?: FailureKind;
  /** Assigned, reachable-or-not, running the version (or disconnected) and not healthy right now. */
  readonly unhealthy: boolean;
}

function done(node: NodeRollout, at: number): NodeVerdict {
  const { healthySince: _h, unhealthyAt: _u, ...rest } = node;
  return { node: { ...rest, state: "done", doneAt: at }, change: "done", unhealthy: false };
}

function failed(node: NodeRollout, now: number, kind: FailureKind, reason: string): NodeVerdict {
  return {
    node: { ...node, state: "failed", failedAt: now, reason },
    change: "failed",
    failureKind: kind,
    unhealthy: false,
  };
}

/** Why a node is not healthy right now, in words (used in failure reasons). */
function unhealthyWhy(obs: NodeObservation | undefined, version: number, s: RolloutSettings): string {
  const liveness = obs?.liveness ?? "disconnected";
  if (liveness === "disconnected") return "node disconnected";
  const exec = obs?.execution;
  if (!exec) return `version ${version} not started (no execution reported)`;
  if (exec.version !== version)
    return `version ${version} not started (node reports version ${exec.version})`;
  if (exec.state !== "running") return `execution is ${exec.state}`;
  if (!exec.healthy) return "execution reports unhealthy";
  if (exec.errorRate > s.maxErrorRate) {
    return `error rate ${formatNumber(exec.errorRate)} > max_error_rate ${formatNumber(s.maxErrorRate)}`;
  }
  return "not healthy";
}

/** Whether the node counts as healthy for the health clock (long-running, health checked). */
function isHealthy(obs: NodeObservation | undefined, version: number, s: RolloutSettings): boolean {
  if (obs === undefined || (obs.liveness !== "ready" && obs.liveness !== "draining")) return false;
  const exec = obs.execution;
  return (
    exec !== undefined &&
    exec.version === version &&
    exec.state === "running" &&
    exec.healthy &&
    exec.errorRate <= s.maxErrorRate
  );
}

function deadlineReason(s: RolloutSettings, why: string): string {
  return `not done within deadline ${formatDuration(s.deadlineMs ?? 0)} of its assignment: ${why}`;
}

/**
 * Judges one node at `now`. Done and failed nodes never change; pending nodes only fail (lost);
 * assigned nodes are judged by the rules above. Exactly one of done/failed is ever reached.
 */
export function evaluateNode(
  node: NodeRollout,
  obs: NodeObservation | undefined,
  version: number,
  s: RolloutSettings,
  now: number,
): NodeVerdict {
  if (node.state === "done" || node.state === "failed") return { node, unhealthy: false };
  if (obs?.liveness === "lost") {
    const where = node.state === "pending" ? "before its wave was dispatched" : "while updating";
    return failed(node, now, "lost", `node lost ${where}`);
  }
  if (node.state === "pending") return { node, unhealthy: false };

  const exec = obs?.execution;
  const mine = exec !== undefined && exec.version === version ? exec : undefined;
  const pastDeadline = node.deadlineAt !== undefined && now >= node.deadlineAt;

  if (s.runOnce || s.ignoreHealth) {
    if (mine && (mine.state === "finished" || (!s.runOnce && mine.state === "running")))
      return done(node, now);
    if (mine && (FAILED_EXECUTION.has(mine.state) || (!s.runOnce && mine.state === "finished"))) {
      return failed(node, now, "execution", `execution of version ${version} ended ${mine.state}`);
    }
    if (pastDeadline) return failed(node, now, "deadline", deadlineReason(s, unhealthyWhy(obs, version, s)));
    return { node, unhealthy: false };
  }

  if (isHealthy(obs, version, s)) {
    const lower = Math.max(node.assignedAt ?? now, node.unhealthyAt ?? Number.NEGATIVE_INFINITY);
    const candidate = mine?.healthySince ?? node.healthySince ?? now;
    const since = Math.min(now, Math.max(candidate, lower));
    const doneAt = since + s.minHealthyMs;
    if (doneAt <= now && (node.deadlineAt === undefined || doneAt <= node.deadlineAt))
      return done(node, doneAt);
    if (pastDeadline) {
      const healthyFor = formatDuration(now - since);
      return failed(
        node,
        now,
        "deadline",
        deadlineReason(s, `healthy for ${healthyFor} of min_healthy_time ${formatDuration(s.minHealthyMs)}`),
      );
    }
    return { node: node.healthySince === since ? node : { ...node, healthySince: since }, unhealthy: false };
  }

  const why = unhealthyWhy(obs, version, s);
  if (pastDeadline) return failed(node, now, "deadline", deadlineReason(s, why));
  const counted = mine !== undefined || (obs?.liveness ?? "disconnected") === "disconnected";
  // Record the first unhealthy sighting of a stretch (not every one, to spare the store a write
  // per heartbeat); later sightings are covered by the agent's own health.since.
  if (node.healthySince === undefined && node.unhealthyAt !== undefined) return { node, unhealthy: counted };
  const { healthySince: _h, ...rest } = node;
  return { node: { ...rest, unhealthyAt: now }, unhealthy: counted };
}

/** The next instant this node can change on its own (a deadline, the end of its health clock). */
export function nextNodeWake(node: NodeRollout, s: RolloutSettings, now: number): number | undefined {
  if (node.state !== "assigned" || node.withdrawnAt !== undefined) return undefined;
  let next: number | undefined;
  const consider = (t: number | undefined) => {
    if (t !== undefined && t > now && (next === undefined || t < next)) next = t;
  };
  consider(node.deadlineAt);
  if (node.healthySince !== undefined && !s.runOnce && !s.ignoreHealth)
    consider(node.healthySince + s.minHealthyMs);
  return next;
}
