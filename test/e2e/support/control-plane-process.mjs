#!/usr/bin/env node
// A control plane as its own process, for the crash and failover tests (`kill -9`, SIGSTOP):
// composed from the built packages (run `npx tsc -b` first) exactly as the in-process test stack
// composes it: Redis stores, a NATS bus, node services with placement in rollout mode
// (startDeploymentServices), the Jobs and Deployments APIs on HTTP and gRPC.
//
// Environment: REDIS_URL, NATS_URL, PREFIX (Redis key prefix), TOKEN_SECRET, the rollout
// tunables EDGEPLANE_LEADER_TTL_MS / EDGEPLANE_LEADER_TICK_MS / EDGEPLANE_ROLLOUT_SETTLE_MS, and
// (benchmarks) HEARTBEAT_MS (default 200), POLL_MS (change streams; default the components' own,
// 200 ms, as in `edgectl server`: jobs written through this API are read at once anyway),
// PLACEMENT_CONCURRENCY, ROLLOUT_CONCURRENCY, LOG_LEVEL, REDIS_AUTOPIPELINE=1 (ioredis
// auto-pipelining), COALESCE=0 (no write coalescing, which `edgectl server` does),
// CPU_PROFILE=<file> (SIGUSR2 starts a CPU profile, a second one writes it), HEAP_PROFILE=<file>
// (the same for an allocation profile), TRACE=1 (`GET /debug/trace`: see below);
// `GET /debug/stats` answers the rollout runtime's and placement's counters, the event loop's
// delay and the garbage collector's pauses (`?reset=1` starts a new window).
// Prints one JSON line {"ready": true, "httpUrl", "grpcAddress", "pid"} when it serves.
//
// The crash tests run `edgectl server` itself (test/e2e/support/process.ts); the benchmarks use
// this launcher for its tunables and counters (EDGEPLANE_E2E_CONTROL_PLANE=launcher runs the
// crash tests on it too).
import { createServer } from "node:http";
import { monitorEventLoopDelay, PerformanceObserver, constants as perf } from "node:perf_hooks";
import { JobService } from "@edgeplane/api";
import { connectNatsBus, parseOutbound, subjects } from "@edgeplane/bus";
import { createLogger, systemClock } from "@edgeplane/core";
import {
  coalesceWrites,
  createRedisDesiredStateStore,
  createRedisJobStore,
  createRedisNodeStore,
} from "@edgeplane/store";
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
const redis = new Redis(env("REDIS_URL"), {
  maxRetriesPerRequest: null,
  enableAutoPipelining: process.env.REDIS_AUTOPIPELINE === "1",
});
// As `edgectl server` does (COALESCE=0 turns it off, to compare).
if (process.env.COALESCE !== "0") coalesceWrites(redis);
const bus = await connectNatsBus({ servers: [env("NATS_URL")], name: `control-plane-${process.pid}` });
// Benchmarks (TRACE=1): when each execution event arrived and each desired state was pushed, per
// node (absolute times, ms), so a benchmark can tell the control plane's share of a turnaround
// from the transport's and its own; `GET /debug/trace` answers them.
const trace = { events: [], pushes: [] };
if (process.env.TRACE === "1") {
  const at = () => performance.timeOrigin + performance.now();
  // A desired-state subject is `<before><node id><after>`.
  const [before, after] = subjects.desired("\0").split("\0");
  const subscribe = bus.subscribe.bind(bus);
  const publish = bus.publish.bind(bus);
  bus.subscribe = (subject, handler, options) =>
    subscribe(
      subject,
      (m) => {
        const out = parseOutbound(m.subject);
        if (out?.kind === "event") trace.events.push(out.nodeId, at());
        handler(m);
      },
      options,
    );
  bus.publish = (subject, data) => {
    if (subject.startsWith(before) && subject.endsWith(after))
      trace.pushes.push(subject.slice(before.length, subject.length - after.length), at());
    publish(subject, data);
  };
}
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
    placement: {
      pollIntervalMs: num("POLL_MS", undefined),
      concurrency: num("PLACEMENT_CONCURRENCY", undefined),
    },
  },
  redis,
  redisPrefix: prefix,
  rollouts: { pollIntervalMs: num("POLL_MS", undefined), concurrency: num("ROLLOUT_CONCURRENCY", undefined) },
  logger: log.child("rollouts"),
});
// As `edgectl server` does: jobs written here are read from the change stream at once.
jobs.onChange(rollouts.readJobChangesNow);
grpc.add(JobService, { ...createJobGrpcService(jobs), planJob: rollouts.planJob });
registerJobRoutes(router, jobs);
// Benchmarks read the counters of the rollout runtime and placement, and the event loop's delay
// (ms; `?reset=1` starts a new window).
const nodeChanges = {};
rollouts.nodes.registry.onNodeChange((_id, change) => {
  nodeChanges[change] = (nodeChanges[change] ?? 0) + 1;
});
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();
// Garbage collection pauses since the last reset: young generation (scavenges) and full (marking).
const gcStats = () => ({ minor: { n: 0, ms: 0, max: 0 }, major: { n: 0, ms: 0, max: 0 } });
let gc = gcStats();
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = e.detail?.kind === perf.NODE_PERFORMANCE_GC_MINOR ? gc.minor : gc.major;
    kind.n++;
    kind.ms = Math.round((kind.ms + e.duration) * 100) / 100;
    kind.max = Math.max(kind.max, Math.round(e.duration * 100) / 100);
  }
}).observe({ entryTypes: ["gc"] });
router.add("GET", "/debug/stats", async (req) => {
  const ms = (ns) => Math.round(ns / 1e4) / 100;
  const loop = {
    p50: ms(loopDelay.percentile(50)),
    p99: ms(loopDelay.percentile(99)),
    max: ms(loopDelay.max),
  };
  const gcNow = gc;
  if (req.query?.get?.("reset") === "1") {
    loopDelay.reset();
    gc = gcStats();
  }
  return {
    body: {
      runtime: rollouts.runtime.stats(),
      placement: rollouts.nodes.placement.stats?.() ?? {},
      registry: { ...rollouts.nodes.registry.stats(), nodeChanges },
      loop,
      gc: gcNow,
    },
  };
});
router.add("GET", "/debug/trace", async () => ({ body: trace }));
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

// Benchmarks: with CPU_PROFILE=<file>, SIGUSR2 starts a CPU profile and a second SIGUSR2 writes it;
// with HEAP_PROFILE=<file>, the same for a sampling allocation profile (every allocation, also
// those the garbage collector has freed since: where the allocation rate comes from).
if (process.env.CPU_PROFILE || process.env.HEAP_PROFILE) {
  const { Session } = await import("node:inspector");
  const { writeFileSync } = await import("node:fs");
  const session = new Session();
  session.connect();
  const post = (method, params) =>
    new Promise((resolve, reject) =>
      session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))),
    );
  let profiling = false;
  process.on("SIGUSR2", async () => {
    const heap = Boolean(process.env.HEAP_PROFILE);
    if (!profiling) {
      profiling = true;
      if (heap)
        await post("HeapProfiler.startSampling", {
          samplingInterval: 16384,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: true,
        });
      else {
        await post("Profiler.enable");
        await post("Profiler.start");
      }
      return;
    }
    profiling = false;
    const file = heap ? process.env.HEAP_PROFILE : process.env.CPU_PROFILE;
    const { profile } = await post(heap ? "HeapProfiler.stopSampling" : "Profiler.stop");
    writeFileSync(file, JSON.stringify(profile));
    process.stdout.write(`${JSON.stringify({ profile: file })}\n`);
  });
}
