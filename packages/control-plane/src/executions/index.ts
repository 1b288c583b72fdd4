/**
 * The control plane's execution side, in one call: the execution and log stores, the ingest of
 * what agents report (through the node registry), run-once job completion, the archive sweeper,
 * and the Executions API (REST routes + gRPC ExecutionService).
 *
 * @example (in control-plane.ts, after `startNodeServices`, before the servers listen)
 * ```ts
 * const executions = await startExecutionServices({
 *   registry: nodes.registry, desiredStore, jobStore, redis, prefix: options.redisPrefix, tokens, router,
 *   grpc: grpcServer, clock, logger: log.child("executions"),
 *   cancelAssignment: createDesiredStateCanceler({ desiredStore, registry: nodes.registry }),
 * });
 * ```
 */
import { ExecutionService } from "@edgeplane/api";
import { type Clock, createLogger, EdgeplaneError, type Logger, systemClock } from "@edgeplane/core";
import type { NodeRegistry } from "@edgeplane/orchestrator";
import {
  createMemoryExecutionStore,
  createMemoryLogStore,
  createRedisExecutionStore,
  createRedisLogStore,
  type DesiredStateStore,
  type ExecutionRecord,
  type ExecutionStore,
  type JobStore,
  type LogBounds,
  type LogStore,
} from "@edgeplane/store";
import type { Redis } from "ioredis";
import type { Router } from "../http/router.js";
import type { GrpcRegistrar } from "../nodes/index.js";
import type { PageTokens } from "../page-token.js";
import { isRunOnceType, JobCompletion } from "./completion.js";
import { createExecutionGrpcService } from "./grpc.js";
import { ExecutionIngest, type IngestRegistry, type IngestStats } from "./ingest.js";
import { LogFeed } from "./log-feed.js";
import { registerExecutionRoutes } from "./rest.js";
import { type CancelAssignment, ExecutionsService } from "./service.js";

export type { CompletionDecision, CompletionInput, JobCompletionOptions } from "./completion.js";
export {
  decideRunOnceJob,
  failureReason,
  isRunOnceType,
  JobCompletion,
  RUN_ONCE_TYPES,
} from "./completion.js";
export {
  executionToJson,
  executionToMessage,
  logLineText,
  logLineToJson,
  logLineToMessage,
  resultValue,
} from "./convert.js";
export { createExecutionGrpcService } from "./grpc.js";
export type {
  ExecutionChange,
  ExecutionChangeHandler,
  ExecutionIngestOptions,
  IngestDropReason,
  IngestRegistry,
  IngestStats,
} from "./ingest.js";
export { ExecutionIngest, INGEST_DROP_REASONS, identityOf } from "./ingest.js";
export { LogFeed } from "./log-feed.js";
export type { ExecutionRoutesOptions } from "./rest.js";
export { registerExecutionRoutes } from "./rest.js";
export type {
  CancelAssignment,
  ExecutionsServiceOptions,
  ListExecutionsParams,
  LogChunk,
} from "./service.js";
export { ExecutionsService } from "./service.js";

/** Options of {@link startExecutionServices}. */
export interface ExecutionServicesOptions {
  /** The node registry (its heartbeat, event, log, node-change and desired-change listeners). */
  readonly registry: IngestRegistry;
  /** Where executions are created from: the assignment that names them. */
  readonly desiredStore: Pick<DesiredStateStore, "get" | "loadAll">;
  readonly jobStore: Pick<JobStore, "getJob" | "findJob" | "updateStatus">;
  /** The control plane's Redis client (the stores leave it open); omit for the memory stores. */
  readonly redis?: Redis;
  /** Redis key prefix (default `ep:`). */
  readonly prefix?: string;
  /** Stores to use instead of building them from `redis` (tests, tools). */
  readonly executionStore?: ExecutionStore;
  readonly logStore?: LogStore;
  /** The control plane's page-token signer (shared by every replica). */
  readonly tokens: PageTokens;
  readonly router: Router;
  readonly grpc: GrpcRegistrar;
  /** Makes the node's desired state stop a canceled execution (see {@link CancelAssignment}). */
  readonly cancelAssignment: CancelAssignment;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Ended executions are archived after this; default 24 h. */
  readonly retentionMs?: number;
  /** Archived executions (and their logs) are deleted after this; default 30 days; 0 = never. */
  readonly purgeAfterMs?: number;
  /** The archive sweeper runs this often; default 60 s; 0 = no timer (tests call `sweep()`). */
  readonly sweepIntervalMs?: number;
  /** Bounds of each execution's log (default 5000 lines, 512 KiB). */
  readonly logBounds?: LogBounds;
  /** Results above this many JSON bytes are dropped (the status is kept); default and max 1 MiB. */
  readonly maxResultBytes?: number;
  /** An unchanged running status is written at most this often; default 10 s. */
  readonly observedPersistMs?: number;
  /** Run-once completion: attempts after which a failure is final (default 3). */
  readonly maxAttempts?: number;
  /** Run-once completion: a failure with attempts left is final after this without a retry (default 60 s). */
  readonly retryGraceMs?: number;
  /** Log follow: poll period (default 1000 ms), drain after the end (default 1500 ms), SSE keep-alive (default 15 s). */
  readonly followPollMs?: number;
  readonly drainMs?: number;
  readonly keepAliveMs?: number;
}

/** What one archive sweep did. */
export interface SweepResult {
  readonly archived: number;
  readonly purged: number;
}

/** The running execution side of the control plane. */
export interface ExecutionServices {
  readonly service: ExecutionsService;
  readonly store: ExecutionStore;
  readonly logs: LogStore;
  readonly ingest: ExecutionIngest;
  readonly completion: JobCompletion;
  /** Archives ended executions past the retention, purges old archived ones, re-checks retry graces. */
  sweep(): Promise<SweepResult>;
  /** Counters (the lead may expose them on /metrics). */
  stats(): { ingest: IngestStats; completion: ReturnType<JobCompletion["stats"]>; followers: number };
  /** Resolves once ingest and completion are idle (tests). */
  idle(): Promise<void>;
  /**
   * Ends log follows, stops the sweeper, unsubscribes from the registry, finishes writes in
   * flight. Leaves the registry, the stores' shared client and the servers alone.
   */
  stop(): Promise<void>;
}

const SWEEP_BATCH = 500;
const SWEEP_ROUNDS = 20;

/**
 * Registers the Executions REST routes and gRPC service, then starts the ingest (subscribed to
 * the registry), the completion workers and the sweeper. Call after the registry exists (its
 * listeners are added here) and before the servers listen.
 */
export async function startExecutionServices(options: ExecutionServicesOptions): Promise<ExecutionServices> {
  const log = options.logger ?? createLogger({ component: "control-plane.executions" });
  const clock = options.clock ?? systemClock;
  const store =
    options.executionStore ??
    (options.redis
      ? createRedisExecutionStore({ redis: options.redis, prefix: options.prefix })
      : createMemoryExecutionStore());
  const logs =
    options.logStore ??
    (options.redis
      ? createRedisLogStore({ redis: options.redis, prefix: options.prefix, ...options.logBounds })
      : createMemoryLogStore({ ...options.logBounds }));
  const retentionMs = options.retentionMs ?? 24 * 3600_000;
  const purgeAfterMs = options.purgeAfterMs ?? 30 * 24 * 3600_000;
  const feed = new LogFeed();
  const completion = new JobCompletion({
    jobStore: options.jobStore,
    store,
    clock,
    logger: log.child("completion"),
    maxAttempts: options.maxAttempts,
    retryGraceMs: options.retryGraceMs,
  });
  const ingest = new ExecutionIngest({
    store,
    logs,
    registry: options.registry,
    desiredStore: options.desiredStore,
    clock,
    logger: log.child("ingest"),
    maxResultBytes: options.maxResultBytes,
    observedPersistMs: options.observedPersistMs,
    onChange: (change) => {
      feed.notify(change.id);
      if (change.record === undefined || isRunOnceType(change.record.jobType))
        completion.notify(change.jobId);
    },
    onLogs: (id) => feed.notify(id),
  });
  const service = new ExecutionsService({
    store,
    logs,
    jobs: options.jobStore,
    tokens: options.tokens,
    clock,
    feed,
    cancelAssignment: options.cancelAssignment,
    followPollMs: options.followPollMs,
    drainMs: options.drainMs,
  });
  registerExecutionRoutes(options.router, service, { keepAliveMs: options.keepAliveMs });
  options.grpc.add(ExecutionService, createExecutionGrpcService(service));

  let sweeping: Promise<SweepResult> | undefined;
  const sweep = (): Promise<SweepResult> => {
    sweeping ??= (async () => {
      let archived = 0;
      let purged = 0;
      try {
        const now = clock.now();
        for (let i = 0; i < SWEEP_ROUNDS; i++) {
          const ids = await store.archive(now - retentionMs, now, SWEEP_BATCH);
          archived += ids.length;
          if (ids.length < SWEEP_BATCH) break;
        }
        if (purgeAfterMs > 0) {
          for (let i = 0; i < SWEEP_ROUNDS; i++) {
            const ids = await store.purge(now - purgeAfterMs, SWEEP_BATCH);
            await logs.delete(ids);
            purged += ids.length;
            if (ids.length < SWEEP_BATCH) break;
          }
        }
        if (archived > 0 || purged > 0) log.info("execution sweep", { archived, purged });
      } finally {
        completion.tick();
      }
      return { archived, purged };
    })().finally(() => {
      sweeping = undefined;
    });
    return sweeping;
  };
  const interval = options.sweepIntervalMs ?? 60_000;
  let timer: ReturnType<typeof setInterval> | undefined;
  if (interval > 0) {
    timer = setInterval(() => {
      sweep().catch((err: unknown) =>
        log.warn("execution sweep failed; retrying next period", { err: EdgeplaneError.from(err).message }),
      );
    }, interval);
    timer.unref();
  }

  completion.start();
  ingest.start();

  let stopping: Promise<void> | undefined;
  return {
    service,
    store,
    logs,
    ingest,
    completion,
    sweep,
    stats: () => ({ ingest: ingest.stats(), completion: completion.stats(), followers: feed.waiting }),
    idle: async () => {
      await ingest.idle();
      await completion.idle();
    },
    stop: () => {
      stopping ??= (async () => {
        if (timer) clearInterval(timer);
        feed.close();
        await ingest.stop();
        await completion.stop();
        await sweeping?.catch(() => undefined);
        if (options.executionStore === undefined && options.redis === undefined) await store.close();
      })();
      return stopping;
    },
  };
}

/** What {@link createDesiredStateCanceler} needs from the registry. */
export type CancelRegistry = Pick<NodeRegistry, "desiredChanged">;

/**
 * A {@link CancelAssignment} that writes the node's desired state itself: the execution's
 * assignment gets `desired_state: "stopped"` (a new revision, check-and-set on the current one,
 * retried on a conflict), then the registry pushes it. Idempotent. The desired-state writer
 * (placement / the deployment runtime) must keep a canceled assignment stopped when it recomputes
 * the set, or its next sync of the node undoes this (see docs/executions.md, "Cancel").
 */
export function createDesiredStateCanceler(options: {
  readonly desiredStore: Pick<DesiredStateStore, "get" | "put">;
  readonly registry: CancelRegistry;
  readonly clock?: Clock;
}): CancelAssignment {
  const clock = options.clock ?? systemClock;
  return async (executionId: string, execution: ExecutionRecord) => {
    for (let attempt = 0; ; attempt++) {
      const current = await options.desiredStore.get(execution.nodeId);
      const held = current?.assignments.find((a) => a.executionId === executionId);
      if (current === undefined || held === undefined || held.desiredState === "stopped") return;
      try {
        const record = await options.desiredStore.put({
          nodeId: execution.nodeId,
          assignments: current.assignments.map((a) =>
            a.executionId === executionId ? { ...a, desiredState: "stopped" as const } : a,
          ),
          now: clock.now(),
          expectedRevision: current.revision,
        });
        options.registry.desiredChanged(record);
        return;
      } catch (err) {
        if (EdgeplaneError.from(err).code !== "aborted" || attempt >= 4) throw err;
      }
    }
  };
}
