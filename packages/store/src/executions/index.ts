/**
 * Executions and their logs (`ExecutionStore`, `LogStore`): memory and Redis implementations,
 * the execution state table with the monotonic guard, and the Redis key builder. Re-exported by
 * the `@edgeplane/store` barrel. See `docs/executions.md`.
 */

export type { StoredFields } from "./codec.js";
export {
  DEFAULT_LOG_MAX_BYTES,
  DEFAULT_LOG_MAX_LINES,
  MAX_EXCEPTION_CHARS,
  MAX_LOG_LINE_CHARS,
  MAX_STORED_RESULT_BYTES,
} from "./codec.js";
export type {
  ExecutionDesiredState,
  ExecutionStateType,
  ObservationKey,
  ReportedExecutionState,
} from "./execution-state.js";
export {
  canExecutionTransition,
  EXECUTION_DESIRED_STATES,
  EXECUTION_STATES,
  EXECUTION_TRANSITIONS,
  executionAllowedFrom,
  isEndedExecutionState,
  isExecutionState,
  isFailedExecutionState,
  isTerminalExecutionState,
  reportApplies,
} from "./execution-state.js";
export type {
  ExecutionCountersRecord,
  ExecutionCursor,
  ExecutionHealthRecord,
  ExecutionIdentity,
  ExecutionPage,
  ExecutionRecord,
  ExecutionReport,
  ExecutionResultInput,
  ExecutionStore,
  ListExecutionsQuery,
  LogAppendResult,
  LogBounds,
  LogLineInput,
  LogLineRecord,
  LogRead,
  LogReadQuery,
  LogStore,
  ObserveOutcome,
} from "./execution-store.js";
export type { ExecutionStoreKeys } from "./keys.js";
export { DEFAULT_EXECUTION_PREFIX, executionMember, executionStoreKeys } from "./keys.js";
export type { MemoryExecutionData, MemoryExecutionStoreOptions, MemoryLogStoreOptions } from "./memory.js";
export {
  createMemoryExecutionData,
  createMemoryExecutionStore,
  createMemoryLogStore,
  MAX_EXECUTION_PAGE,
} from "./memory.js";
export type {
  RedisExecutionStore,
  RedisExecutionStoreOptions,
  RedisLogStore,
  RedisLogStoreOptions,
} from "./redis.js";
export { createRedisExecutionStore, createRedisLogStore } from "./redis.js";
