/**
 * `@edgeplane/store`: the {@link JobStore} interface and its two implementations, Redis
 * (production: each state change is one Lua script, keys in `redis/keys.ts`) and memory (dev
 * default), both held to one conformance suite (`src/conformance/job-store-suite.ts`, exported
 * to tests as `@edgeplane/store/conformance`).
 */

export * from "./deployments/index.js";
export * from "./executions/index.js";
export type {
  JobCursor,
  JobEvent,
  JobOrderBy,
  JobRecord,
  JobStore,
  JobVersionRecord,
  JsonObject,
  ListJobsPage,
  ListJobsQuery,
  PutJobCommand,
  PutJobResult,
  StatusUpdate,
  VersionKind,
  WriteGuard,
} from "./job-store.js";
export type { MemoryJobStoreOptions } from "./memory-store.js";
export { createMemoryJobStore } from "./memory-store.js";
// The node registry and desired-state stores list their own exports.
export * from "./nodes/index.js";
export { coalesceWrites } from "./redis/coalesce.js";
export type { RedisDurability } from "./redis/durability.js";
export { checkRedisDurability } from "./redis/durability.js";
export type { IndexKind, JobStoreKeys } from "./redis/keys.js";
export { DEFAULT_PREFIX, jobStoreKeys } from "./redis/keys.js";
export type { RedisJobStore, RedisJobStoreOptions } from "./redis/redis-store.js";
export { createRedisJobStore } from "./redis/redis-store.js";
export { sharedSecret } from "./redis/secret.js";
export {
  canonicalJson,
  DEFAULT_MAX_VERSIONS,
  defaultMaxScan,
  IDEMPOTENCY_TTL_MS,
  LIVE_STATES,
  specDigest,
} from "./semantics.js";
