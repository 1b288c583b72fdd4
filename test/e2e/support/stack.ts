/**
 * An in-process control plane for the rollout tests, composed as `control-plane.ts` composes
 * one (Redis stores, a NATS bus, the node services with placement in rollout mode through
 * `startDeploymentServices`, the Jobs and Deployments APIs on real HTTP and gRPC servers), with
 * short timings. Several stacks over one Redis prefix are several replicas of one control plane.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type Client, createClient, DeploymentService, JobService } from "@edgeplane/api";
import { type Bus, connectNatsBus } from "@edgeplane/bus";
import { createLogger, fromGrpcStatus, type Logger, systemClock } from "@edgeplane/core";
import {
  createRedisDesiredStateStore,
  createRedisJobStore,
  createRedisNodeStore,
  type JobStore,
} from "@edgeplane/store";
import { Redis } from "ioredis";
import {
  type DeploymentServices,
  type RolloutTunables,
  startDeploymentServices,
} from "../../../packages/control-plane/src/deployments/index.js";
import { GrpcServer } from "../../../packages/control-plane/src/grpc/server.js";
import { Router } from "../../../packages/control-plane/src/http/router.js";
import { createJobGrpcService } from "../../../packages/control-plane/src/jobs/grpc.js";
import { registerJobRoutes } from "../../../packages/control-plane/src/jobs/rest.js";
import { JobsService } from "../../../packages/control-plane/src/jobs/service.js";
import type { NodeServicesOptions } from "../../../packages/control-plane/src/nodes/index.js";
import { PageTokens } from "../../../packages/control-plane/src/page-token.js";

/** A logger that prints nothing (set `EDGEPLANE_TEST_LOGS=1` to see the control plane's logs). */
export const quiet: Logger =
  process.env.EDGEPLANE_TEST_LOGS === "1"
    ? createLogger({ component: "test" })
    : createLogger({ component: "test", level: "error", sink: () => {} });

/** Options of {@link startStack}. */
export interface StackOptions {
  readonly redisUrl: string;
  readonly natsUrl: string;
  /** Redis key prefix (shared by the replicas of one control plane). */
  readonly prefix: string;
  /** Page-token secret (shared by replicas). */
  readonly tokenSecret?: string;
  readonly registry?: NodeServicesOptions["registry"];
  readonly rollouts?: RolloutTunables;
  readonly logger?: Logger;
}

/** A running in-process control plane. */
export interface Stack {
  readonly httpUrl: string;
  readonly grpcAddress: string;
  readonly jobStore: JobStore;
  readonly jobs: JobsService;
  readonly rollouts: DeploymentServices;
  readonly redis: Redis;
  readonly bus: Bus;
  /** gRPC clients (closed by `stop`). */
  readonly deploymentsClient: Client<typeof DeploymentService>;
  readonly jobsClient: Client<typeof JobService>;
  /** A REST call: status and parsed JSON body. */
  api(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }>;
  stop(): Promise<void>;
}

/** Starts a control plane in this process. */
export async function startStack(options: StackOptions): Promise<Stack> {
  const log = options.logger ?? quiet;
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  const bus = await connectNatsBus({ servers: [options.natsUrl], name: "test-control-plane" });
  const prefix = options.prefix;
  const jobStore = createRedisJobStore({ redis, prefix });
  const tokens = new PageTokens(options.tokenSecret ?? "test-secret");
  const jobs = new JobsService({ store: jobStore, tokens, clock: systemClock });
  const router = new Router();
  const grpcServer = new GrpcServer(log);
  const rollouts = await startDeploymentServices({
    nodes: {
      bus,
      jobStore,
      nodeStore: createRedisNodeStore({ redis, prefix }),
      desiredStore: createRedisDesiredStateStore({ redis, prefix }),
      tokens,
      router,
      grpc: grpcServer,
      logger: log,
      registry: { heartbeatIntervalMs: 200, flushIntervalMs: 100, ...options.registry },
      placement: { pollIntervalMs: 50 },
    },
    redis,
    redisPrefix: prefix,
    rollouts: { leaseTtlMs: 2000, leaseTickMs: 200, pollIntervalMs: 50, settleMs: 2000, ...options.rollouts },
    logger: log,
  });
  grpcServer.add(JobService, { ...createJobGrpcService(jobs), planJob: rollouts.planJob });
  registerJobRoutes(router, jobs);
  const grpcPort = await grpcServer.listen("127.0.0.1:0");
  const http: Server = createServer((req, res) => void router.handle(req, res, log));
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const grpcAddress = `127.0.0.1:${grpcPort}`;
  const clientOptions = { fromStatus: fromGrpcStatus, defaultTimeoutMs: 30_000 };
  const deploymentsClient = createClient(DeploymentService, grpcAddress, clientOptions);
  const jobsClient = createClient(JobService, grpcAddress, clientOptions);
  let stopped: Promise<void> | undefined;
  return {
    httpUrl,
    grpcAddress,
    jobStore,
    jobs,
    rollouts,
    redis,
    bus,
    deploymentsClient,
    jobsClient,
    async api(method, path, body) {
      const res = await fetch(`${httpUrl}${path}`, {
        method,
        headers: { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
    },
    stop() {
      stopped ??= (async () => {
        deploymentsClient.close();
        jobsClient.close();
        http.closeAllConnections();
        await new Promise((r) => http.close(r));
        await grpcServer.stop(500);
        await rollouts.stop();
        await bus.close();
        await redis.quit().catch(() => redis.disconnect());
      })();
      return stopped;
    },
  };
}

export { dropPrefix } from "../../support/redis.js";
