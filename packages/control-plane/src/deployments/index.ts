/**
 * The control plane's rollout side, in one call: the node services (registry + placement, with
 * placement switched to rollouts: each node runs the version its deployments assigned it, and it
 * writes only while this control plane holds the leader lease), the rollout runtime (leader
 * lease with fencing, reconcile loop, applier), and the Deployments API (REST routes, gRPC
 * DeploymentService, the dry run `POST /api/v1/jobs/plan` and JobService.PlanJob).
 *
 * It replaces the `startNodeServices(...)` call of the composition root (it makes that call
 * itself, with the same options):
 *
 * @example
 * ```ts
 * const rollouts = await startDeploymentServices({
 *   nodes: { bus, jobStore, nodeStore, desiredStore, tokens, router, grpc: grpcServer, clock, logger: log.child("nodes"), ...options.nodes },
 *   redis, // the connected ioredis client, or undefined on the memory store
 *   redisPrefix: options.redisPrefix,
 *   maxVersions: options.maxVersions,
 *   logger: log.child("rollouts"),
 * });
 * closers.push(() => rollouts.stop()); // stops the rollouts, then the node services
 * grpcServer.add(JobService, { ...createJobGrpcService(jobs), planJob: rollouts.planJob });
 * ```
 */

import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { ServiceImpl } from "@edgeplane/api";
import { DeploymentService, type JobService } from "@edgeplane/api";
import { type Clock, createLogger, type Logger, systemClock } from "@edgeplane/core";
import {
  createDeploymentRuntime,
  type DeploymentRuntime,
  type DeploymentRuntimeOptions,
  LeaderElector,
  VersionCache,
} from "@edgeplane/orchestrator";
import {
  createMemoryDeploymentData,
  createMemoryDeploymentStore,
  createMemoryLeaderLease,
  createMemoryNodeVersionStore,
  createRedisDeploymentStore,
  createRedisLeaderLease,
  createRedisNodeVersionStore,
  type DeploymentStore,
  type LeaderLease,
  type MemoryDeploymentData,
  type NodeVersionStore,
} from "@edgeplane/store";
import type { Redis } from "ioredis";
import { type NodeServices, type NodeServicesOptions, startNodeServices } from "../nodes/index.js";
import { DeploymentFeed } from "./feed.js";
import { createDeploymentGrpcService, createPlanJobHandler } from "./grpc.js";
import { registerDeploymentRoutes } from "./rest.js";
import { DeploymentsService } from "./service.js";

export type { DeploymentView, PlanResult } from "./convert.js";
export { deploymentToJson, deploymentToMessage, planToJson, planToMessage } from "./convert.js";
export { DeploymentFeed } from "./feed.js";
export { createDeploymentGrpcService, createPlanJobHandler } from "./grpc.js";
export { registerDeploymentRoutes } from "./rest.js";
export type { DeploymentsServiceOptions, PlanRegistry } from "./service.js";
export { DeploymentsService } from "./service.js";

/** The rollout stores (memory or Redis, built from `redis` when not given). */
export interface DeploymentStores {
  readonly deployments: DeploymentStore;
  readonly versions: NodeVersionStore;
  readonly lease: LeaderLease;
}

/** Tunables of the rollout runtime (environment variables in parentheses override the defaults). */
export type RolloutTunables = Pick<
  DeploymentRuntimeOptions,
  "holder" | "leaseTtlMs" | "leaseTickMs" | "pollIntervalMs" | "concurrency" | "settleMs"
>;

/** Options of {@link startDeploymentServices}. */
export interface DeploymentServicesOptions {
  /**
   * Exactly what `startNodeServices` takes (bus, stores, tokens, router, grpc, registry and
   * placement tunables). Placement gets the rollout's version source and leader gate added.
   */
  readonly nodes: NodeServicesOptions;
  /** The connected Redis client of the other stores; undefined on the memory store. */
  readonly redis?: Redis;
  /** Prefix of every Redis key (as the other stores'). */
  readonly redisPrefix?: string;
  /** The stores to use instead (tests; several control planes over one memory "Redis"). */
  readonly stores?: DeploymentStores;
  /** Versions kept per job (a rollback writes a version); default 50. */
  readonly maxVersions?: number;
  /**
   * Lease ttl (`EDGEPLANE_LEADER_TTL_MS`, default 10 s), renewal (`EDGEPLANE_LEADER_TICK_MS`,
   * ttl / 5), settle after a new term (`EDGEPLANE_ROLLOUT_SETTLE_MS`, default 10 s), holder id,
   * poll period, concurrency.
   */
  readonly rollouts?: RolloutTunables;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** The running rollout side of the control plane. */
export interface DeploymentServices {
  /** The node services it started (registry, placement in rollout mode, Nodes API). */
  readonly nodes: NodeServices;
  readonly runtime: DeploymentRuntime;
  readonly service: DeploymentsService;
  readonly stores: DeploymentStores;
  /** The JobService.PlanJob handler (the dry run). */
  readonly planJob: ServiceImpl<typeof JobService>["planJob"];
  /**
   * Has the rollout runtime (to start a deployment) and placement read the job change stream now
   * rather than at their next poll: call it after a job was written through this control plane's
   * API (`JobsService.onChange`). The stream stays the one source of job changes.
   */
  readJobChangesNow(): void;
  /** Stops the rollouts (releasing the lease), then the node services. Leaves bus and stores open. */
  stop(): Promise<void>;
}

function envMs(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/**
 * Builds the rollout stores over `redis`, or memory ones over `memoryData` (new when omitted; the
 * memory job store's fence reads the lease in it: `memoryFencing(memoryData)`).
 */
export function deploymentStores(
  redis: Redis | undefined,
  prefix?: string,
  memoryData?: MemoryDeploymentData,
): DeploymentStores {
  if (redis !== undefined) {
    return {
      deployments: createRedisDeploymentStore({ redis, prefix }),
      versions: createRedisNodeVersionStore({ redis, prefix }),
      lease: createRedisLeaderLease({ redis, prefix }),
    };
  }
  const data = memoryData ?? createMemoryDeploymentData();
  return {
    deployments: createMemoryDeploymentStore({ data }),
    versions: createMemoryNodeVersionStore({ data }),
    lease: createMemoryLeaderLease({ data }),
  };
}

/**
 * Starts the node services with placement in rollout mode, the rollout runtime, and the
 * Deployments API (see the module header for the wiring).
 */
export async function startDeploymentServices(
  options: DeploymentServicesOptions,
): Promise<DeploymentServices> {
  const log = options.logger ?? createLogger({ component: "control-plane.rollouts" });
  const clock = options.clock ?? options.nodes.clock ?? systemClock;
  const stores = options.stores ?? deploymentStores(options.redis, options.redisPrefix);
  const tun = options.rollouts ?? {};
  const ttlMs = tun.leaseTtlMs ?? envMs("EDGEPLANE_LEADER_TTL_MS") ?? 10_000;
  const versions = new VersionCache(stores.versions);
  const elector = new LeaderElector({
    lease: stores.lease,
    holder: tun.holder ?? `${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`,
    ttlMs,
    tickMs: tun.leaseTickMs ?? envMs("EDGEPLANE_LEADER_TICK_MS"),
    clock,
    logger: log.child("leader"),
  });
  const nodes = await startNodeServices({
    ...options.nodes,
    placement: {
      ...options.nodes.placement,
      versions,
      gate: { isActive: () => elector.isLeader() },
    },
  });
  const runtime = createDeploymentRuntime({
    jobStore: options.nodes.jobStore,
    deployments: stores.deployments,
    versionStore: stores.versions,
    lease: stores.lease,
    registry: nodes.registry,
    placement: nodes.placement,
    versions,
    elector,
    pollIntervalMs: tun.pollIntervalMs,
    concurrency: tun.concurrency,
    settleMs: tun.settleMs ?? envMs("EDGEPLANE_ROLLOUT_SETTLE_MS"),
    maxVersions: options.maxVersions,
    clock,
    logger: log,
  });
  const feed = new DeploymentFeed(stores.deployments, { logger: log.child("feed") });
  const service = new DeploymentsService({
    store: stores.deployments,
    jobStore: options.nodes.jobStore,
    registry: nodes.registry,
    tokens: options.nodes.tokens,
    feed,
    clock,
    runtime,
    logger: log,
  });
  registerDeploymentRoutes(options.nodes.router, service);
  options.nodes.grpc.add(DeploymentService, createDeploymentGrpcService(service));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      feed.stop();
      await runtime.stop();
      await nodes.stop();
    })();
    return stopping;
  };
  try {
    await runtime.start();
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  const readJobChangesNow = () => {
    void runtime.pollNow();
    void nodes.placement.pollNow();
  };
  return { nodes, runtime, service, stores, planJob: createPlanJobHandler(service), readJobChangesNow, stop };
}
