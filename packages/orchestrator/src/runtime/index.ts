/**
 * The rollout runtime (issue 7): the leader-only reconcile loop around the pure planner. See
 * `runtime.ts` for the flow and docs/rollouts.md ("The runtime") for the rules it adds.
 */
export type { RuntimeJobStore, RuntimePlacement, RuntimeRegistry } from "./context.js";
export type { LeaderElectorOptions, LeadershipListener } from "./leader.js";
export { LeaderElector } from "./leader.js";
export type { DeploymentView } from "./records.js";
export { createWriteOf, deploymentIdFor, recordOf, summaryOf, updateWriteOf } from "./records.js";
export type { DeploymentRuntimeOptions, RuntimeStats } from "./runtime.js";
export { createDeploymentRuntime, DeploymentRuntime } from "./runtime.js";
export { deploymentTargets, selectorOf } from "./targets.js";
export { VersionCache } from "./versions.js";
