/**
 * The rollout planner (issue 7): pure functions that decide, for one deployment at one instant,
 * what to dispatch, what to record and what to tell people. The runtime (work queue, snapshot
 * loader, applier, leader lease) is built on top; see README.md in this folder and
 * docs/rollouts.md for the rules.
 */

export { failureBudget, failureBudgetExceeded } from "./budget.js";
export { checkControl, nextSteps, rollbackRefusal } from "./controls.js";
export type { CreateDeploymentOptions } from "./create.js";
export { createDeployment, withoutCanary } from "./create.js";
export type {
  FleetModel,
  FleetResult,
  FleetStep,
  NodeBehavior,
  RunFleetOptions,
  TimelineEntry,
  VersionBehavior,
} from "./fleet.js";
export { runFleet } from "./fleet.js";
export type { LateNodeDecision } from "./late-nodes.js";
export { lateNodeVersion } from "./late-nodes.js";
export type { FailureKind, NodeVerdict } from "./nodes.js";
export { evaluateNode, nextNodeWake } from "./nodes.js";
export { plan, STRATEGY_FNS } from "./plan.js";
export type { RolloutSettings } from "./settings.js";
export { isRunOnce, rolloutSettings } from "./settings.js";
export type { SimulateOptions, SimulationResult } from "./simulate.js";
export { fleetNodeIds, formatTimeline, randomFleet, seededRandom, simulate } from "./simulate.js";
export type { Control, DeploymentState, NodeRolloutState } from "./states.js";
export {
  CONTROL_TARGET,
  CONTROLS,
  canNodeTransition,
  canTransition,
  DEPLOYMENT_STATES,
  DEPLOYMENT_TRANSITIONS,
  deploymentAllowedFrom,
  isActiveDeployment,
  isControl,
  isDeploymentState,
  isSettledNode,
  isTerminalDeployment,
  NEXT_STEPS,
  NODE_ROLLOUT_STATES,
  NODE_ROLLOUT_TRANSITIONS,
} from "./states.js";
export type { StrategyFn } from "./strategies/rolling.js";
export { countersOf, progressOf } from "./summary.js";
export type {
  Action,
  DeploymentCounters,
  DeploymentEvent,
  DeploymentEventKind,
  DeploymentRecord,
  ExecutionState,
  NodeLiveness,
  NodeObservation,
  NodeRollout,
  Plan,
  Rejection,
  RolloutSpec,
  Snapshot,
  StableVersion,
} from "./types.js";
export { EVENT_KINDS, MAX_EVENT_NODES, MAX_EVENTS } from "./types.js";
export type { WavePlan } from "./waves.js";
export { canaryCount, planWaves, rolloutOrder, rolloutWaveSize, wavesOf } from "./waves.js";
