/**
 * The control plane's node side against the real agent (`@edgeplane/agent`, with an executor
 * double), over a real nats-server and Redis: registration with discovered labels, placement of a
 * job, executions reported back through heartbeats, removal of a stopped job, and an agent restart
 * from its data dir that causes no churn.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Agent, createAgent, type ExecutionHandle, type Executor } from "@edgeplane/agent";
import { type Bus, connectNatsBus } from "@edgeplane/bus";
import {
  createNodeRegistry,
  createPlacementController,
  type NodeRegistry,
  type PlacementController,
} from "@edgeplane/orchestrator";
import {
  createRedisDesiredStateStore,
  createRedisJobStore,
  createRedisNodeStore,
  type JobStore,
} from "@edgeplane/store";
import { type NatsServer, startNats, waitFor } from "@edgeplane/testkit";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { quiet } from "../support/agent.js";
import { putPipelineJob } from "../support/jobs.js";
import { dropPrefix, testPrefix } from "../support/redis.js";

let nats: NatsServer;
let redis: Redis;
let prefix: string;
let cpBus: Bus;
let jobStore: JobStore;
let registry: NodeRegistry;
let placement: PlacementController;
const running = new Set<string>();
const cleanups: Array<() => Promise<unknown>> = [];

/** Runs every assignment until it is stopped; reports healthy. */
const executor: Executor = {
  name: "double",
  types: ["pipeline", "query", "update", "config"],
  start(assignment, ctx): ExecutionHandle {
    running.add(assignment.executionId);
    ctx.emit({ state: "running", health: { healthy: true } });
    return {
      async stop() {
        running.delete(assignment.executionId);
      },
      status: () => ({}),
    };
  },
};

async function startRealAgent(nodeId: string, dataDir: string): Promise<Agent> {
  const agent = createAgent({
    nodeId,
    dataDir,
    nats: { servers: [nats.url] },
    labels: { site: "lab" },
    executors: [executor],
    heartbeatIntervalMs: 200,
    retry: { baseMs: 50, maxMs: 200 },
    logger: quiet,
  });
  await agent.start();
  return agent;
}

beforeAll(async () => {
  nats = await startNats({ jetstream: false });
  redis = new Redis(inject("redisUrl"), { maxRetriesPerRequest: null });
  prefix = testPrefix();
  cpBus = await connectNatsBus({ servers: [nats.url], name: "test-control-plane" });
  jobStore = createRedisJobStore({ redis, prefix });
  const desiredStore = createRedisDesiredStateStore({ redis, prefix });
  registry = createNodeRegistry({
    bus: cpBus,
    nodeStore: createRedisNodeStore({ redis, prefix }),
    desiredStore,
    heartbeatIntervalMs: 200,
    flushIntervalMs: 100,
    logger: quiet,
  });
  placement = createPlacementController({
    jobStore,
    desiredStore,
    registry,
    pollIntervalMs: 50,
    logger: quiet,
  });
  await registry.start();
  await placement.start();
});

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

afterAll(async () => {
  await placement?.stop();
  await registry?.stop();
  await cpBus?.close();
  await dropPrefix(redis, prefix);
  await redis.quit();
  await nats?.stop();
});

describe("the real agent against the registry and placement", () => {
  it("registers, runs a placed job, reports it in heartbeats, stops it, and restarts without churn", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "nodes-real-agent-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    let agent = await startRealAgent("edge-real-1", dataDir);
    cleanups.push(() => agent.stop({ graceMs: 0 }));

    const node = await waitFor(() => registry.get("edge-real-1"), { message: "the agent to register" });
    expect(node.state).toBe("ready");
    expect(node.labels.site).toBe("lab");
    expect(Object.keys(node.labels).some((k) => k.startsWith("edgeplane.io/"))).toBe(true);

    const job = await putPipelineJob(jobStore, prefix.slice(0, -1), "on-lab", {
      selector: { match_labels: { site: "lab" } },
    });
    await waitFor(() => running.size === 1, {
      timeoutMs: 10_000,
      message: "the agent to run the assignment",
    });
    await waitFor(
      () => {
        const n = registry.get("edge-real-1");
        return n?.appliedRevision === n?.desiredRevision && n?.executions[0]?.state === "running" && n;
      },
      { timeoutMs: 10_000, message: "the heartbeat to report the execution" },
    );
    expect((await jobStore.getJob(job.id))?.state).toBe("running");

    // The agent restarts from its data dir: same applied revision, no new desired revision.
    const revision = registry.get("edge-real-1")?.desiredRevision;
    await agent.stop({ graceMs: 0 });
    agent = await startRealAgent("edge-real-1", dataDir);
    await waitFor(() => agent.registered, { message: "the restarted agent to register" });
    await waitFor(() => running.size === 1, { message: "the execution to run again" });
    expect(registry.get("edge-real-1")?.desiredRevision).toBe(revision);
    expect(registry.stats().dropped).toEqual({
      mismatched_identity: 0,
      malformed: 0,
      oversized: 0,
      unknown_node: 0,
    });

    await jobStore.updateStatus(job.id, { state: "stopped", message: "stopped by a user", now: Date.now() });
    await waitFor(() => running.size === 0, {
      timeoutMs: 10_000,
      message: "the stopped job to stop on the node",
    });
    await waitFor(() => registry.get("edge-real-1")?.executions.every((e) => e.state !== "running"), {
      message: "the heartbeat to stop reporting it running",
    });
  });
});
