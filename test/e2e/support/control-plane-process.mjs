#!/usr/bin/env node
// A control plane as its own process, for the crash and failover tests (`kill -9`, SIGSTOP):
// composed from the built packages (run `npx tsc -b` first) exactly as the in-process test stack
// composes it: Redis stores, a NATS bus, node services with placement in rollout mode
// (startDeploymentServices), the Jobs and Deployments APIs on HTTP and gRPC.
//
// Environment: REDIS_URL, NATS_URL, PREFIX (Redis key prefix), TOKEN_SECRET, the rollout
// tunables EDGEPLANE_LEADER_TTL_MS / EDGEPLANE_LEADER_TICK_MS / EDGEPLANE_ROLLOUT_SETTLE_MS, and
// (benchmarks) HEARTBEAT_MS (default 200), POLL_MS (change streams, default 50),
// PLACEMENT_CONCURRENCY, ROLLOUT_CONCURRENCY, LOG_LEVEL.
// Prints one JSON line {"ready": true, "httpUrl", "grpcAddress", "pid"} when it serves.
//
// Once control-plane.ts wires startDeploymentServices, `node packages/cli/dist/main.js server
// --store $REDIS_URL --nats $NATS_URL` is the same thing (see EDGEPLANE_E2E_CONTROL_PLANE in
// rollout-crash.test.ts).
import { createServer } from "node:http";
import { JobService } from "@edgeplane/api";
import { connectNatsBus } from "@edgeplane/bus";
import { createLogger, systemClock } from "@edgeplane/core";
import { createRedisDesiredStateStore, createRedisJobStore, createRedisNodeStore } from "@edgeplane/store";
import { Redis } from "ioredis";
import { startDeploymentServices } from "../../../packages/control-plane/dist/deployments/index.js";
import { GrpcServer } from "../../../packages/control-plane/dist/grpc/server.js";
import { Router } from "../../../packages/control-plane/dist/http/router.js";
import { createJobGrpcService } from "../../../packages/control-plane/dist/jobs/grpc.js";
import { registerJobRoutes } from "../../../packages/control-plane/dist/jobs/rest.js";
import { JobsService } from "../../../packages/control-plane/dist/jobs/service.js";
import { PageTokens } from "../../../packages/control-plane/dist/page-token.js";

const num = (name, fallback) => (process.env[name] ? Number(process.env[name]) : fallback);
const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};

const log = createLogger({ component: `cp-${process.pid}`, level: process.env.LOG_LEVEL ?? "info" });
const prefix = env("PREFIX");
const redis = new Redis(env("REDIS_URL"), { maxRetriesPerRequest: null });
const bus = await connectNatsBus({ servers: [env("NATS_URL")], name: `control-plane-${process.pid}` });
const jobStore = createRedisJobStore({ redis, prefix });
const tokens = new PageTokens(process.env.TOKEN_SECRET ?? "e2e-secret");
const jobs = new JobsService({ store: jobStore, tokens, clock: systemClock });
const router = new Router();
const grpc = new GrpcServer(log.child("grpc"));
const rollouts = await startDeploymentServices({
  nodes: {
    bus,
    jobStore,
    nodeStore: createRedisNodeStore({ redis, prefix }),
    desiredStore: createRedisDesiredStateStore({ redis, prefix }),
    tokens,
    router,
    grpc,
    logger: log.child("nodes"),
    registry: { heartbeatIntervalMs: num("HEARTBEAT_MS", 200), flushIntervalMs: 100 },
    placement: { pollIntervalMs: num("POLL_MS", 50), concurrency: num("PLACEMENT_CONCURRENCY", undefined) },
  },
  redis,
  redisPrefix: prefix,
  rollouts: { pollIntervalMs: num("POLL_MS", 50), concurrency: num("ROLLOUT_CONCURRENCY", undefined) },
  logger: log.child("rollouts"),
});
grpc.add(JobService, { ...createJobGrpcService(jobs), planJob: rollouts.planJob });
registerJobRoutes(router, jobs);
const grpcPort = await grpc.listen("127.0.0.1:0");
const http = createServer((req, res) => void router.handle(req, res, log));
await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
const httpUrl = `http://127.0.0.1:${http.address().port}`;
process.stdout.write(
  `${JSON.stringify({ ready: true, httpUrl, grpcAddress: `127.0.0.1:${grpcPort}`, pid: process.pid, holder: rollouts.runtime.elector.holder })}\n`,
);

const stop = async () => {
  http.closeAllConnections();
  http.close();
  await grpc.stop(500);
  await rollouts.stop();
  await bus.close();
  await redis.quit();
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
