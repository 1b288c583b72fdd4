/**
 * The working state of one `plan()` call: a mutable draft of the deployment record, the actions
 * and timeline entries produced so far, and the few verbs every strategy shares (emit an event,
 * move the deployment, assign nodes). Internal to the planner; nothing here escapes a call.
 */
import { formatDuration } from "@edgeplane/core";
import type { RolloutSettings } from "./settings.js";
import { rolloutSettings } from "./settings.js";
import { type DeploymentState, isTerminalDeployment } from "./states.js";
import {
  type Action,
  type DeploymentEvent,
  type DeploymentEventKind,
  type DeploymentRecord,
  MAX_EVENT_NODES,
  type NodeRollout,
  type Snapshot,
} from "./types.js";

/** A deployment record being edited by one plan() call. */
export type DraftDeployment = { -readonly [K in keyof DeploymentRecord]: DeploymentRecord[K] } & {
  nodes: Record<string, NodeRollout>;
};

/** Everything a strategy reads and writes during one plan() call. */
export interface PlanContext {
  readonly now: number;
  readonly snapshot: Snapshot;
  readonly settings: RolloutSettings;
  readonly d: DraftDeployment;
  readonly events: DeploymentEvent[];
  readonly actions: Action[];
  /** Assigned nodes seen unhealthy in this sync (filled by the node evaluation). */
  unhealthy: number;
}

/** Starts a plan() call over a copy of the snapshot's record (the snapshot is never mutated). */
export function createContext(snapshot: Snapshot, now: number): PlanContext {
  const source = snapshot.deployment;
  const d: DraftDeployment = { ...source, nodes: { ...source.nodes } };
  return { now, snapshot, settings: rolloutSettings(source), d, events: [], actions: [], unhealthy: 0 };
}

/** Appends a timeline entry (node list capped at {@link MAX_EVENT_NODES}). */
export function emit(
  ctx: PlanContext,
  kind: DeploymentEventKind,
  reason: string,
  nodes: readonly string[] = [],
  details: Record<string, string> = {},
): void {
  const shown = nodes.length > MAX_EVENT_NODES ? nodes.slice(0, MAX_EVENT_NODES) : [...nodes];
  const allDetails =
    nodes.length > MAX_EVENT_NODES ? { ...details, nodes_total: String(nodes.length) } : details;
  ctx.events.push({ time: ctx.now, kind, reason, nodes: shown, details: allDetails });
}

/** Moves the deployment to `state` (stamping `finishedAt` when terminal) with an optional message. */
export function setState(ctx: PlanContext, state: DeploymentState, message?: string): void {
  ctx.d.state = state;
  if (message !== undefined) ctx.d.message = message;
  if (isTerminalDeployment(state)) ctx.d.finishedAt = ctx.now;
  else delete ctx.d.finishedAt;
}

/** Node ids of the targets in a given rollout state, in rollout order. */
export function nodesIn(
  ctx: PlanContext,
  state: NodeRollout["state"],
  among: readonly string[] = ctx.d.targets,
) {
  return among.filter((id) => ctx.d.nodes[id]?.state === state);
}

/** Nodes updating now: assigned, not done, not failed (pending delivery included). */
export function inFlight(ctx: PlanContext): number {
  let n = 0;
  for (const id of ctx.d.targets) if (ctx.d.nodes[id]?.state === "assigned") n++;
  return n;
}

/** The number of waves of this deployment, the canary wave included. */
export function waveCount(d: Pick<DeploymentRecord, "nodes" | "targets">): number {
  let max = 0;
  for (const id of d.targets) max = Math.max(max, d.nodes[id]?.wave ?? 0);
  return max;
}

/**
 * Makes the new version the desired state of `nodeIds` (all pending): stamps the assignment time
 * and the absolute deadline, emits one `dispatched` entry per wave, and adds the `assign` action.
 */
export function assign(ctx: PlanContext, nodeIds: readonly string[]): void {
  if (nodeIds.length === 0) return;
  const { d, now, settings } = ctx;
  const byWave = new Map<number, string[]>();
  for (const id of nodeIds) {
    const node = d.nodes[id];
    if (node === undefined || node.state !== "pending")
      throw new Error(`bug: assigning ${id} in state ${node?.state}`);
    const next: NodeRollout = {
      state: "assigned",
      wave: node.wave,
      assignedAt: now,
      ...(settings.deadlineMs !== undefined ? { deadlineAt: now + settings.deadlineMs } : {}),
    };
    d.nodes[id] = next;
    const list = byWave.get(node.wave) ?? [];
    list.push(id);
    byWave.set(node.wave, list);
  }
  const waves = waveCount(d);
  const deadline =
    settings.deadlineMs !== undefined ? `, deadline ${formatDuration(settings.deadlineMs)}` : "";
  for (const [wave, ids] of [...byWave].sort((a, b) => a[0] - b[0])) {
    const canary = d.canaries.length > 0 && wave === 1 && !d.isRollback;
    const what = canary ? `canary wave (wave 1 of ${waves})` : `wave ${wave} of ${waves}`;
    emit(
      ctx,
      "dispatched",
      `${what}: version ${d.jobVersion} to ${ids.length} node${ids.length === 1 ? "" : "s"}${deadline}`,
      ids,
      {
        wave: String(wave),
        version: String(d.jobVersion),
        ...(canary ? { canary: "true" } : {}),
      },
    );
  }
  ctx.actions.push({ kind: "assign", nodeIds: [...nodeIds], version: d.jobVersion });
}
