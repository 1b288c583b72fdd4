/**
 * The rollout orchestrator's persistence (issue 7): the {@link DeploymentStore}, the
 * versions-per-node map ({@link NodeVersionStore}) and the leader lease ({@link LeaderLease}),
 * memory and Redis implementations, and the Redis key builder. Re-exported by the
 * `@edgeplane/store` barrel.
 */

export { fencedWrite, isFenced, MAX_CONTROL_REASON } from "./codec.js";
export type {
  AssignVersionCommand,
  DeploymentChange,
  DeploymentCursor,
  DeploymentGuard,
  DeploymentPage,
  DeploymentStore,
  DeploymentSummary,
  DeploymentWrite,
  Fence,
  LeaderLease,
  LeaseHolder,
  LeaseOutcome,
  NodeVersion,
  NodeVersionStore,
  StoredDeployment,
  UnassignVersionCommand,
  VersionAssignment,
} from "./deployment-store.js";
export type { DeploymentStoreKeys } from "./keys.js";
export { DEFAULT_DEPLOYMENT_PREFIX, deploymentStoreKeys } from "./keys.js";
export type { MemoryDeploymentData, MemoryDeploymentStoreOptions } from "./memory.js";
export {
  createMemoryDeploymentData,
  createMemoryDeploymentStore,
  createMemoryLeaderLease,
  createMemoryNodeVersionStore,
  memoryFencing,
} from "./memory.js";
export type {
  RedisDeploymentStore,
  RedisDeploymentStoreOptions,
  RedisLeaderLease,
  RedisNodeVersionStore,
} from "./redis.js";
export { createRedisDeploymentStore, createRedisLeaderLease, createRedisNodeVersionStore } from "./redis.js";
