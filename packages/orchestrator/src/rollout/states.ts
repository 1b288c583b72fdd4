/**
 * Deployment states, node rollout states, controls, and the moves allowed between them: one table
 * each, with the predicates derived from the tables (so a new state touches this file only).
 *
 * Deployment states (one line each):
 * - pending: created, nothing dispatched yet (the first sync starts it).
 * - running: dispatching waves and watching the nodes' health.
 * - paused: a user paused it: no new assignments; assigned nodes are still judged and their
 *   deadlines keep counting (so a pause can still end in `failed` or `succeeded`).
 * - awaiting_promotion: every canary is done and `auto_promote` is off: waits for a person.
 * - succeeded: every target is done or failed within the failure budget; the version is stable.
 * - failed: the failure budget was exceeded (or a canary failed); no node gets the version again.
 * - rolling_back: failed (or rolled back by a user) and a rollback deployment of the last stable
 *   spec is running; ends with that deployment.
 * - rolled_back: its rollback deployment succeeded.
 * - cancelled: a user cancelled it; nodes keep what they have.
 * - superseded: a newer version of the job started its own deployment.
 */
export const DEPLOYMENT_STATES = [
  "pending",
  "running",
  "paused",
  "awaiting_promotion",
  "succeeded",
  "failed",
  "rolling_back",
  "rolled_back",
  "cancelled",
  "superseded",
] as const;

/** A deployment state. */
export type DeploymentState = (typeof DEPLOYMENT_STATES)[number];

/**
 * The moves a deployment may make, in one stored write (the planner may pass through several
 * states in one sync, e.g. pending → running → failed; what is stored is pending → failed, so the
 * table lists the end-to-end moves). The applier passes `deploymentAllowedFrom(to)` to the store
 * as the guard of a state write, so Redis enforces the same table.
 */
export const DEPLOYMENT_TRANSITIONS = {
  pending: ["running", "succeeded", "failed", "rolling_back", "cancelled", "superseded"],
  running: ["paused", "awaiting_promotion", "succeeded", "failed", "rolling_back", "cancelled", "superseded"],
  paused: ["running", "awaiting_promotion", "succeeded", "failed", "rolling_back", "cancelled", "superseded"],
  awaiting_promotion: ["running", "succeeded", "failed", "rolling_back", "superseded"],
  rolling_back: ["rolled_back", "failed", "superseded"],
  // A failed deployment that was not rolled back may still be rolled back by a person.
  failed: ["rolling_back"],
  succeeded: [],
  rolled_back: [],
  cancelled: [],
  superseded: [],
} as const satisfies Record<DeploymentState, readonly DeploymentState[]>;

/** Whether a deployment may move from `from` to `to` in one write. */
export function canTransition(from: DeploymentState, to: DeploymentState): boolean {
  return (DEPLOYMENT_TRANSITIONS[from] as readonly DeploymentState[]).includes(to);
}

/** The states a deployment may enter `to` from (the guard of a state write). */
export function deploymentAllowedFrom(to: DeploymentState): DeploymentState[] {
  return DEPLOYMENT_STATES.filter((from) => canTransition(from, to));
}

/**
 * Whether a deployment in this state will not change again on its own. `failed` is terminal:
 * only a person (a manual rollback) moves it again.
 */
export function isTerminalDeployment(state: DeploymentState): boolean {
  return DEPLOYMENT_TRANSITIONS[state].every((to) => to === "rolling_back");
}

/**
 * Whether the deployment still owns its job's rollout: not terminal. `rolling_back` is active
 * (it ends when its rollback deployment ends).
 */
export function isActiveDeployment(state: DeploymentState): boolean {
  return !isTerminalDeployment(state);
}

/** Type guard for a deployment state string. */
export function isDeploymentState(value: string): value is DeploymentState {
  return (DEPLOYMENT_STATES as readonly string[]).includes(value);
}

/**
 * Where one node stands in one deployment:
 * - pending: not yet assigned the new version (its wave has not come);
 * - assigned: the new version is its desired state (delivered or not), not yet done;
 * - done: stayed healthy for `min_healthy_time` (run-once: finished OK; immediate: running);
 * - failed: deadline passed, node lost, or (run-once) the execution failed.
 * `done` and `failed` are final: a node is judged once and never both.
 */
export const NODE_ROLLOUT_STATES = ["pending", "assigned", "done", "failed"] as const;

/** A node rollout state. */
export type NodeRolloutState = (typeof NODE_ROLLOUT_STATES)[number];

/** Allowed moves of a node within a deployment (pending → failed: the node was lost before its wave). */
export const NODE_ROLLOUT_TRANSITIONS = {
  pending: ["assigned", "failed"],
  assigned: ["done", "failed"],
  done: [],
  failed: [],
} as const satisfies Record<NodeRolloutState, readonly NodeRolloutState[]>;

/** Whether a node may move from `from` to `to` within a deployment. */
export function canNodeTransition(from: NodeRolloutState, to: NodeRolloutState): boolean {
  return (NODE_ROLLOUT_TRANSITIONS[from] as readonly NodeRolloutState[]).includes(to);
}

/** Whether a node's rollout state is final (done or failed). */
export function isSettledNode(state: NodeRolloutState): boolean {
  return NODE_ROLLOUT_TRANSITIONS[state].length === 0;
}

/** The controls a person can send to a deployment. */
export const CONTROLS = ["pause", "resume", "promote", "rollback", "cancel"] as const;

/** A control. */
export type Control = (typeof CONTROLS)[number];

/** Type guard for a control string. */
export function isControl(value: string): value is Control {
  return (CONTROLS as readonly string[]).includes(value);
}

/**
 * The controls each state can accept, which is also what `next_steps` lists (after the checks of
 * `checkControl`, which can drop one: e.g. "rollback" with no stable version to roll back to).
 * `cancel` is refused in `awaiting_promotion` on purpose: the canaries already run the new version
 * and only promote or rollback leave the fleet on a version some deployment vouches for.
 */
export const NEXT_STEPS = {
  pending: ["cancel"],
  running: ["pause", "cancel", "rollback"],
  paused: ["resume", "cancel", "rollback"],
  awaiting_promotion: ["promote", "rollback"],
  rolling_back: [],
  // Only while it was not rolled back yet (see checkControl).
  failed: ["rollback"],
  succeeded: [],
  rolled_back: [],
  cancelled: [],
  superseded: [],
} as const satisfies Record<DeploymentState, readonly Control[]>;

/** The state a control moves a deployment to (when accepted). */
export const CONTROL_TARGET = {
  pause: "paused",
  resume: "running",
  promote: "running",
  rollback: "rolling_back",
  cancel: "cancelled",
} as const satisfies Record<Control, DeploymentState>;
