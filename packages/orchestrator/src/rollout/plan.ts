/**
 * The planner: `plan(snapshot, now) → Plan`. Pure (no I/O, no clock: `now` is an argument), total
 * (never throws on a well-formed snapshot) and idempotent (planning the returned record again at
 * the same instant with the same observations changes nothing).
 *
 * One sync, in order:
 * 1. superseded? (a newer deployment of the job started) → `superseded`, stop.
 * 2. a requested control: refused with a reason, or applied (cancel and rollback end the sync).
 * 3. rolling_back: follow the rollback deployment (→ rolled_back or failed), stop.
 * 4. pending: start (→ running).
 * 5. judge every node (done / failed / health clock / deadline).
 * 6. a failed canary or the failure budget exceeded → halt, `failed`, then auto-rollback or not.
 * 7. every target done or failed → `succeeded`, mark the version stable.
 * 8. running: the strategy dispatches (immediate / rolling / canary); if it dispatched anything,
 *    back to 5, so nodes assigned in this sync are judged at once (a lost canary fails now, not
 *    at the next sync) and the result is a fixpoint.
 * 9. counters, progress, message, next_steps, requeue.
 */
import { formatDuration, type Strategy } from "@edgeplane/core";
import { failureBudget, failureBudgetExceeded } from "./budget.js";
import {
  assignedPositions,
  createContext,
  emit,
  inFlight,
  nodeOf,
  nodesIn,
  type PlanContext,
  rememberIndex,
  setNode,
  setState,
  targetPositions,
} from "./context.js";
import { checkControl, nextSteps, rollbackRefusal } from "./controls.js";
import { evaluateNode, type FailureKind } from "./nodes.js";
import { type Control, isTerminalDeployment } from "./states.js";
import { canary } from "./strategies/canary.js";
import { immediate } from "./strategies/immediate.js";
import { rolling, type StrategyFn } from "./strategies/rolling.js";
import { activeMessage, countersOfIndex, progressOf, requeueAfter } from "./summary.js";
import {
  type DeploymentRecord,
  MAX_EVENTS,
  type NodeRollout,
  type Plan,
  type Rejection,
  type Snapshot,
} from "./types.js";

/** The strategy functions, one per strategy. */
export const STRATEGY_FNS = { immediate, rolling, canary } as const satisfies Record<Strategy, StrategyFn>;

/** A structured reason to halt. */
interface Halt {
  readonly reason: string;
  readonly nodes: readonly string[];
  readonly details: Record<string, string>;
}

/** "1 node", "3 nodes", "2 canaries". */
const s = (n: number, word: string) =>
  `${n} ${n === 1 ? word : word.endsWith("y") ? `${word.slice(0, -1)}ies` : `${word}s`}`;

/**
 * Withdraws the assignment of nodes that have not started the new version (so a node offline
 * when the deployment ended never receives it later), marking them and adding an `unassign`.
 */
function withdrawUndelivered(ctx: PlanContext, why: string): void {
  const { d, now } = ctx;
  const ids: string[] = [];
  for (const i of assignedPositions(ctx)) {
    const node = d.nodes[i] as NodeRollout;
    const id = d.targets[i] as string;
    if (node.withdrawnAt !== undefined) continue;
    if (ctx.snapshot.observations[id]?.execution?.version === d.jobVersion) continue;
    setNode(ctx, i, {
      ...node,
      withdrawnAt: now,
      reason: `assignment withdrawn (${why}) before the node started version ${d.jobVersion}`,
    });
    ids.push(id);
  }
  if (ids.length > 0) ctx.actions.push({ kind: "unassign", nodeIds: ids, version: d.jobVersion });
}

function jobState(
  ctx: PlanContext,
  state: "running" | "completed" | "failed" | "stopped",
  message: string,
): void {
  ctx.actions.push({ kind: "job_state", state, message });
}

/** Starts a rollback to the snapshot's stable version (the caller checked it is allowed). */
function startRollback(ctx: PlanContext, manual: boolean, why: string): void {
  const { d } = ctx;
  const stable = ctx.snapshot.stable;
  if (stable === undefined) throw new Error("bug: rollback without a stable version");
  withdrawUndelivered(ctx, manual ? "rolled back by a user" : "deployment failed");
  setState(ctx, "rolling_back", `rolling back to version ${stable.version}: ${why}`);
  emit(
    ctx,
    "rollback_started",
    `${manual ? "rollback requested by a user" : "auto-rollback"}: the spec of stable version ${stable.version} is written as a new version and deployed (${why})`,
    [],
    { to_version: String(stable.version), from_version: String(d.jobVersion), manual: String(manual) },
  );
  ctx.actions.push({ kind: "rollback", toVersion: stable.version, reason: why, manual });
  jobState(
    ctx,
    "running",
    `version ${d.jobVersion} ${manual ? "rolled back by a user" : `failed (${why})`}; rolling back to version ${stable.version}`,
  );
}

/** Halts a failed deployment and decides about the automatic rollback. */
function fail(ctx: PlanContext, halt: Halt): void {
  const { d, settings } = ctx;
  emit(ctx, "halted", halt.reason, halt.nodes, halt.details);
  withdrawUndelivered(ctx, "deployment failed");
  setState(ctx, "failed", `failed: ${halt.reason}`);
  emit(ctx, "failed", halt.reason, halt.nodes, halt.details);
  const refusal =
    settings.autoRollback || d.isRollback
      ? rollbackRefusal(d, ctx.snapshot.stable)
      : "no_auto_rollback is set: nodes stay as they are";
  if (refusal === undefined) {
    startRollback(ctx, false, halt.reason);
    return;
  }
  d.message = `failed: ${halt.reason}; not rolled back: ${refusal}`;
  emit(ctx, "rollback_skipped", refusal, [], { code: rollbackSkipCode(d, ctx.snapshot) });
  jobState(
    ctx,
    "failed",
    d.isRollback
      ? `rollback to version ${d.rollbackToVersion ?? "?"} (as version ${d.jobVersion}) failed: ${halt.reason}`
      : `version ${d.jobVersion} failed: ${halt.reason}`,
  );
}

function rollbackSkipCode(d: DeploymentRecord, snap: Snapshot): string {
  if (d.rollout.no_auto_rollback && !d.isRollback) return "no_auto_rollback";
  if (d.isRollback) return "is_rollback";
  if (snap.stable === undefined) return "no_stable_version";
  return "identical_spec";
}

/** Marks the deployment succeeded and its version stable. */
function succeed(ctx: PlanContext): void {
  const { d, settings } = ctx;
  const targets = d.targets.length;
  const doneN = ctx.index.count.done;
  const failedN = ctx.index.count.failed;
  const tally =
    targets === 0
      ? "no target nodes"
      : failedN === 0
        ? `${doneN}/${targets} nodes done`
        : `${doneN}/${targets} nodes done, ${failedN} failed (within the failure budget of ${failureBudget(targets, d.rollout)})`;
  setState(ctx, "succeeded", `succeeded: ${tally}`);
  emit(ctx, "succeeded", tally, [], {
    done: String(doneN),
    failed: String(failedN),
    targets: String(targets),
  });
  ctx.actions.push({ kind: "mark_stable", version: d.jobVersion });
  const what = d.isRollback
    ? `rolled back to the spec of version ${d.rollbackToVersion ?? "?"} (as version ${d.jobVersion})`
    : `version ${d.jobVersion} rolled out`;
  jobState(ctx, settings.runOnce ? "completed" : "running", `${what}: ${tally}`);
}

/** pending → running: the first sync. */
function start(ctx: PlanContext): void {
  const { d, settings } = ctx;
  d.startedAt = ctx.now;
  setState(ctx, "running");
  const parts = [`version ${d.jobVersion} to ${s(d.targets.length, "node")}`, d.strategy];
  if (d.canaries.length > 0) parts.push(`${s(d.canaries.length, "canary")} first`);
  if (d.strategy !== "immediate") parts.push(`wave size ${settings.waveSize}`);
  parts.push(`${s(ctx.index.waves, "wave")}`);
  if (settings.deadlineMs !== undefined) parts.push(`deadline ${formatDuration(settings.deadlineMs)}`);
  if (!settings.ignoreHealth && !settings.runOnce)
    parts.push(`min_healthy_time ${formatDuration(settings.minHealthyMs)}`);
  parts.push(`failure budget ${failureBudget(d.targets.length, d.rollout)}`);
  emit(ctx, "started", parts.join(", "), [], {
    strategy: d.strategy,
    targets: String(d.targets.length),
    waves: String(ctx.index.waves),
    wave_size: String(settings.waveSize),
    canaries: String(d.canaries.length),
    ...(d.isRollback
      ? {
          rollback_of: d.rollbackOfDeploymentId ?? "",
          rollback_to_version: String(d.rollbackToVersion ?? ""),
        }
      : {}),
  });
  jobState(
    ctx,
    "running",
    d.isRollback
      ? `rolling back to the spec of version ${d.rollbackToVersion ?? "?"} (as version ${d.jobVersion}) on ${s(d.targets.length, "node")}`
      : `rolling out version ${d.jobVersion} (${d.strategy}) to ${s(d.targets.length, "node")}`,
  );
}

const FAILURE_WORDS: Record<FailureKind, string> = {
  lost: "node lost",
  execution: "execution failed",
  deadline: "not done within the deadline",
};

/**
 * The positions of the nodes that can change in this sync, in rollout order: the assigned ones,
 * and pending ones observed lost (evaluateNode leaves every other pending, done or failed node
 * as it is).
 */
function candidates(ctx: PlanContext): number[] {
  const { d, snapshot } = ctx;
  const out = [...ctx.index.assigned];
  if (ctx.index.count.pending > 0) {
    const at = targetPositions(d.targets);
    for (const id in snapshot.observations) {
      if (snapshot.observations[id]?.liveness !== "lost") continue;
      const i = at.get(id);
      if (i !== undefined && d.nodes[i]?.state === "pending") out.push(i);
    }
  }
  return out.sort((a, b) => a - b);
}

/** Judges every target that can change; emits node_healthy / node_failed entries grouped per sync. */
function evaluateNodes(ctx: PlanContext): void {
  const { d, settings, now } = ctx;
  const doneIds: string[] = [];
  const failedBy = new Map<FailureKind, string[]>();
  for (const i of candidates(ctx)) {
    const node = d.nodes[i] as NodeRollout;
    const id = d.targets[i] as string;
    const verdict = evaluateNode(node, ctx.snapshot.observations[id], d.jobVersion, settings, now);
    if (verdict.node !== node) setNode(ctx, i, verdict.node);
    if (verdict.unhealthy) ctx.unhealthy++;
    if (verdict.change === "done") doneIds.push(id);
    if (verdict.change === "failed" && verdict.failureKind) {
      const list = failedBy.get(verdict.failureKind) ?? [];
      list.push(id);
      failedBy.set(verdict.failureKind, list);
    }
  }
  if (doneIds.length > 0) {
    const how = settings.runOnce
      ? "execution finished"
      : settings.ignoreHealth
        ? `running version ${d.jobVersion} (immediate: health not checked)`
        : `healthy for min_healthy_time ${formatDuration(settings.minHealthyMs)}`;
    emit(ctx, "node_healthy", how, doneIds);
  }
  for (const [kind, ids] of failedBy) {
    const first = ids[0] === undefined ? undefined : nodeOf(d, ids[0])?.reason;
    const reason = ids.length === 1 && first ? first : `${FAILURE_WORDS[kind]}: ${s(ids.length, "node")}`;
    emit(ctx, "node_failed", reason, ids, { cause: kind });
  }
}

/** Why the deployment must halt now (a failed canary, or the failure budget), if it must. */
function haltReason(ctx: PlanContext): Halt | undefined {
  const { d } = ctx;
  if (d.strategy === "canary" && d.canaries.length > 0) {
    const bad = nodesIn(ctx, "failed", d.canaries);
    const first = bad[0];
    if (first !== undefined) {
      return {
        reason: `canary ${bad.join(", ")} failed (${nodeOf(d, first)?.reason ?? "failed"}); any failed canary fails the deployment`,
        nodes: bad,
        details: {
          rule: "canary_failed",
          failed_canaries: String(bad.length),
          canaries: String(d.canaries.length),
        },
      };
    }
  }
  const exceeded = failureBudgetExceeded(ctx.index.count.failed, d.targets.length, d.rollout);
  if (exceeded === undefined) return undefined;
  const failed = nodesIn(ctx, "failed");
  return {
    reason: exceeded,
    nodes: failed,
    details: {
      rule: "failure_budget",
      failed_nodes: String(failed.length),
      targets: String(d.targets.length),
      max_failed_nodes: String(d.rollout.max_failed_nodes),
      max_failed_nodes_percent: String(d.rollout.max_failed_nodes_percent),
    },
  };
}

/** Applies an accepted control; returns true when the sync ends here. */
function applyControl(ctx: PlanContext, control: Control): boolean {
  const { d } = ctx;
  switch (control) {
    case "pause":
      setState(ctx, "paused");
      emit(
        ctx,
        "paused",
        `paused by a user: no new assignments; ${s(inFlight(ctx), "assigned node")} keep their deadlines`,
      );
      return false;
    case "resume":
      setState(ctx, "running");
      emit(ctx, "resumed", "resumed by a user");
      return false;
    case "promote":
      d.promoted = true;
      setState(ctx, "running");
      emit(
        ctx,
        "promoted",
        `promoted by a user after all ${s(d.canaries.length, "canary")} were done`,
        d.canaries,
        { by: "user" },
      );
      return false;
    case "cancel": {
      withdrawUndelivered(ctx, "deployment cancelled");
      const doneN = ctx.index.count.done;
      const tally = `${doneN}/${d.targets.length} nodes done; nodes keep what they have`;
      setState(ctx, "cancelled", `cancelled by a user: ${tally}`);
      emit(ctx, "cancelled", `cancelled by a user: ${tally}`);
      jobState(
        ctx,
        ctx.settings.runOnce ? "stopped" : "running",
        `deployment ${d.id} of version ${d.jobVersion} cancelled: ${tally}`,
      );
      return true;
    }
    case "rollback":
      startRollback(ctx, true, "requested by a user");
      return true;
  }
}

/**
 * Marks the events a control emitted (from index `from`) as a person's: `details.control`, and
 * the reason they gave (`details.user_reason`, also quoted in the event's reason), so the
 * timeline says who halted, promoted or rolled back, and why.
 */
function attributeControl(
  ctx: PlanContext,
  from: number,
  control: Control,
  reason: string | undefined,
): void {
  for (let i = from; i < ctx.events.length; i++) {
    const e = ctx.events[i];
    if (e === undefined) continue;
    ctx.events[i] = {
      ...e,
      reason: reason ? `${e.reason} (reason given: ${JSON.stringify(reason)})` : e.reason,
      details: { ...e.details, control, ...(reason ? { user_reason: reason } : {}) },
    };
  }
}

/** rolling_back: waits for the rollback deployment, and re-asks for it until it exists. */
function followRollback(ctx: PlanContext): void {
  const { d, snapshot } = ctx;
  if (d.rollbackDeploymentId === undefined) {
    const refusal = rollbackRefusal(d, snapshot.stable);
    if (refusal !== undefined) {
      setState(ctx, "failed", `failed: the rollback could not start: ${refusal}`);
      emit(ctx, "rollback_skipped", refusal, [], { code: rollbackSkipCode(d, snapshot) });
      jobState(ctx, "failed", `version ${d.jobVersion} failed and could not be rolled back: ${refusal}`);
      return;
    }
    // Level-triggered: the applier has not recorded the rollback deployment yet; ask again (the
    // applier makes this idempotent per deployment id).
    const to = snapshot.stable?.version ?? 0;
    ctx.actions.push({ kind: "rollback", toVersion: to, reason: d.message, manual: false });
    return;
  }
  const rb = snapshot.rollback;
  if (rb === undefined || rb.id !== d.rollbackDeploymentId) return;
  if (rb.state === "succeeded") {
    const why = `rollback deployment ${rb.id} succeeded`;
    setState(ctx, "rolled_back", `rolled back: ${why}`);
    emit(ctx, "rolled_back", why, [], { rollback_deployment_id: rb.id });
  } else if (isTerminalDeployment(rb.state)) {
    const why = `rollback deployment ${rb.id} ended ${rb.state}; nothing is rolled back again`;
    setState(ctx, "failed", `failed: ${why}`);
    emit(ctx, "failed", why, [], { rollback_deployment_id: rb.id, rule: "rollback_failed" });
  }
}

/**
 * Whether the draft's node table equals the source's. The table's keys are the targets (set at
 * creation, never added to), the draft starts as a shallow copy, and every change replaces a
 * node's object, so an unchanged node is the same object: one identity check per target instead
 * of a deep compare of a table that can hold 10,000 nodes.
 */
function sameNodes(ctx: PlanContext): boolean {
  const source = ctx.snapshot.deployment;
  const { d } = ctx;
  if (source.targets !== d.targets && !sameValue(source.targets, d.targets)) return false;
  for (const i of ctx.index.changed) {
    const a = source.nodes[i];
    const b = d.nodes[i];
    if (a !== b && !sameValue(a, b)) return false;
  }
  return true;
}

/** Same JSON value, key order aside. */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function finish(ctx: PlanContext, rejected: Rejection | undefined): Plan {
  const { d, snapshot, now } = ctx;
  const source = snapshot.deployment;
  const live =
    d.state === "pending" ||
    d.state === "running" ||
    d.state === "paused" ||
    d.state === "awaiting_promotion";
  d.counters = countersOfIndex(ctx, live ? ctx.unhealthy : 0);
  d.progress = progressOf(d.counters);
  if (live) d.message = activeMessage(ctx, d.counters);
  d.nextSteps = nextSteps(d, snapshot.stable);
  if (ctx.events.length > 0) d.events = [...source.events, ...ctx.events].slice(-MAX_EVENTS);
  const nodesSame = sameNodes(ctx);
  // An unchanged table keeps its identity (the next sync's copy and compare stay cheap).
  if (nodesSame) d.nodes = source.nodes as NodeRollout[];
  const changed =
    !nodesSame ||
    !sameValue(
      { ...source, nodes: undefined, targets: undefined, updatedAt: 0 },
      { ...d, nodes: undefined, targets: undefined, updatedAt: 0 },
    );
  if (changed) d.updatedAt = now;
  const requeue = requeueAfter(ctx);
  rememberIndex(ctx);
  const deployment: DeploymentRecord = d;
  return {
    actions: ctx.actions,
    deployment,
    events: ctx.events,
    changed,
    ...(requeue !== undefined ? { requeueAfterMs: requeue } : {}),
    ...(rejected !== undefined ? { rejected } : {}),
  };
}

/**
 * Plans one sync of one deployment at `now` (ms). See the module comment for the steps and
 * docs/rollouts.md for the rules.
 */
export function plan(snapshot: Snapshot, now: number): Plan {
  const ctx = createContext(snapshot, now);
  const { d } = ctx;
  let rejected: Rejection | undefined;
  const requested = snapshot.requested;

  const newer = snapshot.supersededBy;
  if (
    !isTerminalDeployment(d.state) &&
    newer !== undefined &&
    newer !== d.id &&
    newer !== d.rollbackDeploymentId
  ) {
    if (requested)
      rejected = { control: requested, reason: `deployment ${d.id} was superseded by deployment ${newer}` };
    supersede(ctx, newer);
    return finish(ctx, rejected);
  }

  if (requested !== undefined) {
    const refusal = checkControl(d, requested, snapshot.stable);
    if (refusal !== undefined) rejected = { control: requested, reason: refusal };
    else {
      const from = ctx.events.length;
      const ends = applyControl(ctx, requested);
      attributeControl(ctx, from, requested, snapshot.requestedReason);
      if (ends) return finish(ctx, undefined);
    }
  }

  if (d.state === "rolling_back") {
    followRollback(ctx);
    return finish(ctx, rejected);
  }
  if (isTerminalDeployment(d.state)) return finish(ctx, rejected);

  if (d.state === "pending") start(ctx);
  // Judge, halt or finish, dispatch; and again while something was dispatched, so nodes assigned
  // in this sync are judged at once too (a fixpoint: planning the result again changes nothing).
  for (let round = 0; round <= d.targets.length + 1; round++) {
    ctx.unhealthy = 0;
    evaluateNodes(ctx);
    const halt = haltReason(ctx);
    if (halt !== undefined) {
      fail(ctx, halt);
      break;
    }
    if (ctx.index.count.pending === 0 && ctx.index.count.assigned === 0) {
      succeed(ctx);
      break;
    }
    if (d.state !== "running") break;
    const before = ctx.actions.length;
    STRATEGY_FNS[d.strategy](ctx);
    if (ctx.actions.length === before) break;
  }
  return finish(ctx, rejected);
}

/**
 * Superseded: a newer deployment owns the job's desired state now; this one stops without
 * touching assignments (the newer one overwrites them wave by wave).
 */
function supersede(ctx: PlanContext, newer: string): void {
  const why = `deployment ${newer} of a newer version started`;
  setState(ctx, "superseded", `superseded: ${why}`);
  emit(ctx, "superseded", why, [], { superseded_by: newer });
}
