/**
 * Node states and the moves allowed between them (one table; predicates derived from it).
 *
 * - ready: the agent heartbeats; the node takes new assignments.
 * - draining: an operator drained it: it keeps what it runs but takes no new assignments. An
 *   operator state: it lasts until the node is undrained (a drained node that stops
 *   heartbeating shows `disconnected`/`lost` and comes back as `draining`).
 * - disconnected: missed heartbeats (default 3 intervals); keeps its assignments, which it
 *   converges on when it returns (level-triggered).
 * - lost: silent for longer than `lost_after` (default 5 min); gets no new assignments. Only a
 *   heartbeat or a registration brings it back.
 */
export const NODE_STATES = ["ready", "draining", "disconnected", "lost"] as const;

/** A node state. */
export type NodeStateType = (typeof NODE_STATES)[number];

/**
 * Allowed transitions. `ready`/`draining` swap on drain/undrain; liveness moves a live node to
 * `disconnected` then `lost` (straight to `lost` when the sweep ran late); a heartbeat or a
 * registration brings a silent node back to `ready` (or `draining` when drained).
 */
export const NODE_TRANSITIONS = {
  ready: ["draining", "disconnected", "lost"],
  draining: ["ready", "disconnected", "lost"],
  disconnected: ["ready", "draining", "lost"],
  lost: ["ready", "draining"],
} as const satisfies Record<NodeStateType, readonly NodeStateType[]>;

/** Whether a node may move from `from` to `to`. */
export function canNodeTransition(from: NodeStateType, to: NodeStateType): boolean {
  return (NODE_TRANSITIONS[from] as readonly NodeStateType[]).includes(to);
}

/** Type guard for a node state string. */
export function isNodeState(value: string): value is NodeStateType {
  return (NODE_STATES as readonly string[]).includes(value);
}

/** Whether the node heartbeats (`ready` or `draining`). */
export function isLiveNodeState(state: NodeStateType): boolean {
  return state === "ready" || state === "draining";
}

/** Whether the node may be given new assignments (only `ready`). */
export function takesNewAssignments(state: NodeStateType): boolean {
  return state === "ready";
}
