/**
 * Node registry and desired-state persistence (`NodeStore`, `DesiredStateStore`), memory and
 * Redis implementations, the node state table and the Redis key builder. Re-exported by the
 * `@edgeplane/store` barrel.
 */

export { AssignmentTemplates } from "./assignment-templates.js";
export type { NodeStoreKeys } from "./keys.js";
export { DEFAULT_NODE_PREFIX, nodeStoreKeys } from "./keys.js";
export type { MemoryDesiredStateStoreOptions, MemoryNodeData, MemoryNodeStoreOptions } from "./memory.js";
export { createMemoryDesiredStateStore, createMemoryNodeData, createMemoryNodeStore } from "./memory.js";
export type { NodeStateType } from "./node-state.js";
export {
  canNodeTransition,
  isLiveNodeState,
  isNodeState,
  NODE_STATES,
  NODE_TRANSITIONS,
  takesNewAssignments,
} from "./node-state.js";
export type {
  AssignmentDesiredState,
  AssignmentRecord,
  AssignmentTimeouts,
  DesiredStateRecord,
  DesiredStateStore,
  LabelMap,
  NodeRecord,
  NodeStore,
  PutDesiredCommand,
  PutDesiredResult,
} from "./node-store.js";
export { MAX_DESIRED_REVISION } from "./node-store.js";
export type { RedisDesiredStateStore, RedisNodeStore, RedisNodeStoreOptions } from "./redis.js";
export { createRedisDesiredStateStore, createRedisNodeStore } from "./redis.js";
