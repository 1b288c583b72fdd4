/**
 * `@edgeplane/orchestrator`: the node registry (liveness, the control plane's side of the agent
 * protocol), placement (each node's desired state: the versions rollouts assign, or in the
 * stand-in mode every matching ready node at once), the pure rollout planner, the rollout
 * runtime around it (leader lease, loader, applier), and the key-deduplicating work queue they
 * run on. See README.md.
 */

export { assignmentToMessage, desiredStateMessage } from "./desired-message.js";
export type { DropReason } from "./drops.js";
export { DROP_REASONS } from "./drops.js";
export type { ExecutionView, NodeView } from "./node-entry.js";
export type { LabelChange } from "./node-labels.js";
export {
  agentLabelProblem,
  applyOperatorLabels,
  isSystemLabel,
  MAX_NODE_LABELS,
  mergeLabels,
  SYSTEM_LABEL_PREFIX,
} from "./node-labels.js";
export type { LivenessConfig, LivenessOptions, LivenessSubject } from "./node-liveness.js";
export {
  LIVENESS_DEFAULTS,
  livenessConfig,
  livenessMessage,
  liveState,
  sweepState,
} from "./node-liveness.js";
export type {
  ExecutionChangeListener,
  ExecutionEventListener,
  ExecutionObservation,
  LogsListener,
  NodeChange,
  NodeChangeListener,
  NodePage,
  NodeQuery,
  NodeRegistryOptions,
  PlacementView,
  RegistryStats,
} from "./node-registry.js";
export { createNodeRegistry, NodeRegistry } from "./node-registry.js";
export type { PlacedVersion, PlacementJob, PlacementNode, VersionLookup } from "./placement.js";
export {
  assignmentFor,
  assignmentSignature,
  computeAssignments,
  executionIdFor,
  isPlacedJobState,
  isPlacedWithRollouts,
  PLACED_JOB_STATES,
  placementJob,
} from "./placement.js";
export type {
  PlacementControllerOptions,
  PlacementGate,
  PlacementJobSource,
  PlacementRegistry,
  PlacementStats,
  PlacementVersionSource,
} from "./placement-controller.js";
export { createPlacementController, PlacementController } from "./placement-controller.js";
/**
 * The pure rollout planner (`plan`, `createDeployment`, `planWaves`, `simulate`, ...), as a
 * namespace: its vocabulary (`canNodeTransition`, states) would clash with the registry's.
 */
export * as rollout from "./rollout/index.js";
// The rollout runtime: leader lease, snapshot loader, applier, job sync.
export * from "./runtime/index.js";
export type { SimAgentOptions, SimExecution } from "./sim-agent.js";
export { SimAgent } from "./sim-agent.js";
export type { QueueTimers, SyncHandler, WorkQueueOptions } from "./work-queue.js";
export { WorkQueue } from "./work-queue.js";
