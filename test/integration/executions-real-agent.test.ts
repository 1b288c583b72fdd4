/**
 * Executions with the real agent (`@edgeplane/agent`, with a test executor standing in for
 * `exec`) and the control plane's node and execution sides wired as the composition root wires
 * them (`startNodeServices` then `startExecutionServices`), over a real nats-server and Redis: a
 * query job is placed on two nodes, each runs it, ships logs and a result; the API shows the
 * result per node and the logs, and the job completes ("finished on 2 nodes").
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Agent, createAgent, type Executor } from "@edgeplane/agent";
import { type Bus, connectNatsBus } from "@edgeplane/bus";
import { createLogger } from "@edgeplane/core";
import {
  createRedisDesiredStateStore,
  createRedisJobStore,
  createRedisNodeStore,
  type JobStore,
} from "@edgeplane/store";
import { type NatsServer, startNats, waitFor } from "@edgeplane/testkit";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  createDesiredStateCanceler,
  type ExecutionServices,
  startExecutionServices,
} from "../../packages/control-plane/src/executions/index.js";
import { GrpcServer } from "../../packages/control-plane/src/grpc/server.js";
import { Router } from "../../packages/control-plane/src/http/router.js";
import { type NodeServices, startNodeServices } from "../../packages/control-plane/src/nodes/index.js";
import { PageTokens } from "../../packages/control-plane/src/page-token.js";

const quiet = createLogger({ component: "test", level: "error", sink: () => {} });

let nats: NatsServer;
let redis: Redis;
let prefix: string;
let cpBus: Bus;
let jobStore: JobStore;
let nodes: NodeServices;
let executions: ExecutionServices;
let grpcServer: GrpcServer;
let http: Server;
let httpUrl: string;
const agents: Agent[] = [];
const dirs: string[] = [];

/** Runs a query: logs two lines, then finishes with a result naming its node. */
const executor: Executor = {
  name: "query-double",
  types: ["query"],
  start(_assignment, ctx) {
    ctx.emit({ state: "running", progress: 0.5 });
    ctx.log("INFO", "stdout", `hello from ${ctx.nodeId}`);
    const timer = setTimeout(() => {
      ctx.log("WARN", "stderr", "almost done");
      ctx.emit({
        state: "finished",
        exitCode: 0,
        progress: 1,
        result: { node: ctx.nodeId, uptime: 42 },
        resultBytes: 30,
      });
    }, 100);
    return {
      async stop() {
        clearTimeout(timer);
      },
      status: () => ({}),
    };
  },
};

beforeAll(async () => {
  nats = await startNats({ jetstream: false });
  redis = new Redis(inject("redisUrl"), { maxRetriesPerRequest: null });
  prefix = `t${randomUUID().slice(0, 8)}:`;
  cpBus = await connectNatsBus({ servers: [nats.url], name: "test-control-plane" });
  jobStore = createRedisJobStore({ redis, prefix });
  const desiredStore = createRedisDesiredStateStore({ redis, prefix });
  const router = new Router();
  grpcServer = new GrpcServer(quiet);
  const tokens = new PageTokens();
  nodes = await startNodeServices({
    bus: cpBus,
    jobStore,
    nodeStore: createRedisNodeStore({ redis, prefix }),
    desiredStore,
    tokens,
    router,
    grpc: grpcServer,
    logger: quiet,
    registry: { heartbeatIntervalMs: 200, flushIntervalMs: 100 },
    placement: { pollIntervalMs: 50 },
  });
  executions = await startExecutionServices({
    registry: nodes.registry,
    desiredStore,
    jobStore,
    redis,
    prefix,
    tokens,
    router,
    grpc: grpcServer,
    logger: quiet,
    cancelAssignment: createDesiredStateCanceler({ desiredStore, registry: nodes.registry }),
    followPollMs: 100,
    drainMs: 300,
  });
  await grpcServer.listen("127.0.0.1:0");
  http = createServer((req, res) => void router.handle(req, res, quiet));
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const a of agents) await a.stop({ graceMs: 0 });
  await executions?.stop();
  http?.closeAllConnections();
  await new Promise((r) => http?.close(r));
  await grpcServer?.stop(1000);
  await nodes?.stop();
  await cpBus?.close();
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis?.quit();
  await nats?.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function get(path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${httpUrl}${path}`);
  expect(res.status, path).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

describe("a query job on real agents", () => {
  it("runs on every matching node: results per node, logs, and the job completes", async () => {
    for (const nodeId of ["qa-1", "qa-2"]) {
      const dataDir = await mkdtemp(join(tmpdir(), "executions-real-agent-"));
      dirs.push(dataDir);
      const agent = createAgent({
        nodeId,
        dataDir,
        nats: { servers: [nats.url] },
        labels: { site: "qa" },
        executors: [executor],
        heartbeatIntervalMs: 200,
        retry: { baseMs: 50, maxMs: 200 },
        logger: quiet,
      });
      await agent.start();
      agents.push(agent);
    }
    await waitFor(() => nodes.registry.get("qa-1") && nodes.registry.get("qa-2"), {
      message: "the agents to register",
    });
    const { job } = await jobStore.putJob({
      namespace: "default",
      name: "uptime",
      type: "query",
      labels: {},
      spec: {
        name: "uptime",
        namespace: "default",
        type: "query",
        restart_policy: "never",
        selector: { match_labels: { site: "qa" } },
        config: { command: "/usr/bin/uptime" },
      },
      newId: `job-${randomUUID()}`,
      now: Date.now(),
    });
    const completed = await waitFor(
      async () => {
        const j = await jobStore.getJob(job.id);
        return j?.state === "completed" ? j : undefined;
      },
      { timeoutMs: 20_000, message: "the query job to complete" },
    );
    expect(completed.stateMessage).toBe("finished on 2 nodes");

    const list = await get(`/api/v1/jobs/${job.id}/executions?include_archived=true`);
    const items = list.items as Array<Record<string, unknown>>;
    expect(items.map((e) => e.node_id).sort()).toEqual(["qa-1", "qa-2"]);
    for (const e of items) {
      expect(e).toMatchObject({
        state: "finished",
        exit_code: 0,
        progress: 1,
        attempt: 1,
        result: { node: e.node_id, uptime: 42 },
        job_version: 1,
      });
      expect(typeof e.start_time).toBe("string");
      expect(typeof e.finish_time).toBe("string");
      const logs = await waitFor(
        async () => {
          const r = await get(`/api/v1/executions/${e.id as string}/logs`);
          return (r.lines as unknown[]).length === 2 ? r : undefined;
        },
        { message: "both log lines" },
      );
      expect((logs.lines as Array<Record<string, unknown>>).map((l) => `${l.level}: ${l.text}`)).toEqual([
        `INFO: hello from ${e.node_id as string}`,
        "WARN: almost done",
      ]);
      expect(logs.dropped).toBe(0);
    }
    expect(executions.stats().ingest.dropped).toEqual({
      unassigned: 0,
      wrong_node: 0,
      malformed: 0,
      oversized_result: 0,
      archived: 0,
      overloaded: 0,
    });
  });
});
