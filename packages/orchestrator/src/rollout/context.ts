/**
 * The working state of one `plan()` call: a mutable draft of the deployment record, the actions
 * and timeline entries produced so far, and the few verbs every strategy shares (emit an event,
 * move the deployment, assign nodes). Internal to the planner; nothing here escapes a call.
 */
import { formatDuration } from "@edgeplane/core";
import { plural } from "./plural.js";
import type { RolloutSettings } from "./settings.js";
import { rolloutSettings } from "./settings.js";
import { type DeploymentState, isTerminalDeployment, type NodeRolloutState } from "./states.js";
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
  nodes: NodeRollout[];
};

/** Node counts by rollout state. */
export type StateCounts = Record<NodeRolloutState, number>;

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
  /**
   * The node table's index, built in one pass when the call starts and kept current by
   * {@link setNode} (every change of a node goes through it), so no step of a sync walks all
   * targets again: counts by state, the assigned nodes, where the pending ones start, the
   * highest wave dispatched, how many nodes were ever assigned, and which entries changed.
   */
  readonly index: NodeIndex;
}

/** See {@link PlanContext.index}. */
export interface NodeIndex {
  readonly count: StateCounts;
  /** Positions (in `targets`) of the nodes in state `assigned`. */
  readonly assigned: Set<number>;
  /** No pending node sits before this position (nodes never return to pending). */
  pendingFrom: number;
  /** The highest wave of a node ever assigned (`counters.currentWave`). */
  currentWave: number;
  /** Nodes ever assigned (`counters.updated`). */
  updated: number;
  /** The number of waves (frozen at creation). */
  readonly waves: number;
  /** Positions whose entry was replaced in this call. */
  readonly changed: Set<number>;
}

/** Position of every target, per target list (built once per list: the lists are frozen). */
const positions = new WeakMap<readonly string[], ReadonlyMap<string, number>>();

/** The position of each node id in `targets` (cached per list). */
export function targetPositions(targets: readonly string[]): ReadonlyMap<string, number> {
  let map = positions.get(targets);
  if (map === undefined) {
    const m = new Map<string, number>();
    for (let i = 0; i < targets.length; i++) m.set(targets[i] as string, i);
    map = m;
    positions.set(targets, map);
  }
  return map;
}

/** A node's progress by id (undefined when it is not a target). */
export function nodeOf(d: Pick<DeploymentRecord, "nodes" | "targets">, id: string): NodeRollout | undefined {
  const i = targetPositions(d.targets).get(id);
  return i === undefined ? undefined : d.nodes[i];
}

/**
 * The index of node tables a plan() call returned, by table: the next sync of the deployment
 * starts from its copy instead of walking 10,000 entries again. Sound because tables are never
 * mutated once returned (records are read-only), and weak, so it holds nothing alive.
 */
const indexes = new WeakMap<readonly NodeRollout[], NodeIndex>();

/** Remembers the index of a table a plan() call returns. */
export function rememberIndex(ctx: PlanContext): void {
  indexes.set(ctx.d.nodes, ctx.index);
}

/** Starts a plan() call over a copy of the snapshot's record (the snapshot is never mutated). */
export function createContext(snapshot: Snapshot, now: number): PlanContext {
  const source = snapshot.deployment;
  const d: DraftDeployment = { ...source, nodes: source.nodes.slice() };
  const settings = rolloutSettings(source);
  const known = indexes.get(source.nodes);
  if (known !== undefined) {
    const index: NodeIndex = {
      ...known,
      count: { ...known.count },
      assigned: new Set(known.assigned),
      changed: new Set(),
    };
    return { now, snapshot, settings, d, events: [], actions: [], unhealthy: 0, index };
  }
  const assigned = new Set<number>();
  let pending = 0;
  let done = 0;
  let failed = 0;
  let pendingFrom = -1;
  let currentWave = 0;
  let updated = 0;
  let waves = 0;
  const nodes = d.nodes;
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i] as NodeRollout;
    const wave = n.wave;
    if (wave > waves) waves = wave;
    switch (n.state) {
      case "pending":
        pending++;
        if (pendingFrom < 0) pendingFrom = i;
        continue;
      case "assigned":
        assigned.add(i);
        break;
      case "done":
        done++;
        break;
      case "failed":
        failed++;
        break;
    }
    if (n.assignedAt !== undefined) {
      updated++;
      if (wave > currentWave) currentWave = wave;
    }
  }
  const index: NodeIndex = {
    count: { pending, assigned: assigned.size, done, failed },
    assigned,
    pendingFrom: pendingFrom < 0 ? nodes.length : pendingFrom,
    currentWave,
    updated,
    waves,
    changed: new Set(),
  };
  return { now, snapshot, settings, d, events: [], actions: [], unhealthy: 0, index };
}

/** Replaces the entry of the node at position `i`, keeping the index current. */
export function setNode(ctx: PlanContext, i: number, next: NodeRollout): void {
  const { index, d } = ctx;
  const prev = d.nodes[i] as NodeRollout;
  if (prev.state !== next.state) {
    index.count[prev.state]--;
    index.count[next.state]++;
    if (prev.state === "assigned") index.assigned.delete(i);
    if (next.state === "assigned") index.assigned.add(i);
  }
  if (prev.assignedAt === undefined && next.assignedAt !== undefined) {
    index.updated++;
    if (next.wave > index.currentWave) index.currentWave = next.wave;
  }
  d.nodes[i] = next;
  index.changed.add(i);
}

/** Positions of the assigned nodes, in rollout order. */
export function assignedPositions(ctx: PlanContext): number[] {
  return [...ctx.index.assigned].sort((a, b) => a - b);
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

/** Node ids of the targets in a given rollout state, in rollout order (a walk: for rare paths). */
export function nodesIn(
  ctx: PlanContext,
  state: NodeRollout["state"],
  among: readonly string[] = ctx.d.targets,
): string[] {
  const { d } = ctx;
  if (among === d.targets) return d.targets.filter((_, i) => d.nodes[i]?.state === state);
  const at = targetPositions(d.targets);
  return among.filter((id) => {
    const i = at.get(id);
    return i !== undefined && d.nodes[i]?.state === state;
  });
}

/** Nodes updating now: assigned, not done, not failed (pending delivery included). */
export function inFlight(ctx: PlanContext): number {
  return ctx.index.count.assigned;
}

/** The number of waves of this deployment, the canary wave included. */
export function waveCount(d: Pick<DeploymentRecord, "nodes">): number {
  let max = 0;
  for (const n of d.nodes) if (n.wave > max) max = n.wave;
  return max;
}

/**
 * Makes the new version the desired state of the nodes at `positions` (all pending): stamps the assignment time
 * and the absolute deadline, emits one `dispatched` entry per wave, and adds the `assign` action.
 */
export function assign(ctx: PlanContext, positions: readonly number[]): void {
  if (positions.length === 0) return;
  const { d, now, settings } = ctx;
  const byWave = new Map<number, string[]>();
  const nodeIds: string[] = [];
  for (const i of positions) {
    const node = d.nodes[i];
    const id = d.targets[i] as string;
    if (node === undefined || node.state !== "pending")
      throw new Error(`bug: assigning ${id} in state ${node?.state}`);
    const next: NodeRollout = {
      state: "assigned",
      wave: node.wave,
      assignedAt: now,
      ...(settings.deadlineMs !== undefined ? { deadlineAt: now + settings.deadlineMs } : {}),
    };
    setNode(ctx, i, next);
    nodeIds.push(id);
    const list = byWave.get(node.wave) ?? [];
    list.push(id);
    byWave.set(node.wave, list);
  }
  const waves = ctx.index.waves;
  const deadline =
    settings.deadlineMs !== undefined ? `, deadline ${formatDuration(settings.deadlineMs)}` : "";
  for (const [wave, ids] of [...byWave].sort((a, b) => a[0] - b[0])) {
    const canary = d.canaries.length > 0 && wave === 1 && !d.isRollback;
    const what = canary ? `canary wave (wave 1 of ${waves})` : `wave ${wave} of ${waves}`;
    emit(
      ctx,
      "dispatched",
      `${what}: version ${d.jobVersion} to ${plural(ids.length, "node")}${deadline}`,
      ids,
      {
        wave: String(wave),
        version: String(d.jobVersion),
        ...(canary ? { canary: "true" } : {}),
      },
    );
  }
  ctx.actions.push({ kind: "assign", nodeIds, version: d.jobVersion });
}
