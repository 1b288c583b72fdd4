/**
 * Node liveness under faults, on a real nats-server (killed with -9 and restarted) and Redis, with
 * the timings shortened (heartbeat 200 ms, disconnected after 3 missed = 600 ms, lost after 3 s):
 * - a NATS outage marks no node lost (the registry suspends liveness while its own bus is down,
 *   and gives every node the grace period again when it is back);
 * - an agent that stops heartbeating becomes disconnected, then lost after lost_after;
 * - a control-plane restart over the same Redis keeps nodes ready (grace period).
 */
import { type Bus, connectNatsBus } from "@edgeplane/bus";
import { createNodeRegistry, type NodeRegistry, SimAgent } from "@edgeplane/orchestrator";
import { createRedisDesiredStateStore, createRedisNodeStore } from "@edgeplane/store";
import { type NatsServer, startNats, waitFor } from "@edgeplane/testkit";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { dropPrefix, testPrefix } from "../support/redis.js";

const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
const TIMINGS = {
  heartbeatIntervalMs: 200,
  missedHeartbeats: 3,
  lostAfterMs: 3000,
  restartGraceMs: 1500,
  sweepIntervalMs: 50,
  flushIntervalMs: 100,
};

let nats: NatsServer;
let redis: Redis;
let prefix: string;
const buses: Bus[] = [];
const registries: NodeRegistry[] = [];
let agents: SimAgent[];
let beating: Set<SimAgent>;
let timer: ReturnType<typeof setInterval>;
/** Every state any node entered, from the registry's change listener. */
let entered: Array<{ node: string; state: string }>;

async function bus(name: string): Promise<Bus> {
  const b = await connectNatsBus({ servers: [nats.url], name, pingIntervalMs: 1000 });
  buses.push(b);
  return b;
}

async function startRegistry(): Promise<NodeRegistry> {
  const registry = createNodeRegistry({
    ...TIMINGS,
    bus: await bus("control-plane"),
    nodeStore: createRedisNodeStore({ redis, prefix }),
    desiredStore: createRedisDesiredStateStore({ redis, prefix }),
    logger: quiet,
  });
  registry.onNodeChange((node, change) => {
    if (change === "state") entered.push({ node, state: registry.get(node)?.state ?? "?" });
  });
  registries.push(registry);
  await registry.start();
  return registry;
}

beforeAll(async () => {
  nats = await startNats({ jetstream: false });
  redis = new Redis(inject("redisUrl"), { maxRetriesPerRequest: null });
});

afterAll(async () => {
  await redis.quit();
  await nats?.stop();
});

beforeEach(async () => {
  prefix = testPrefix();
  entered = [];
  const agentBuses = [await bus("agents-0"), await bus("agents-1")];
  agents = Array.from(
    { length: 20 },
    (_, i) => new SimAgent({ bus: agentBuses[i % 2] as Bus, nodeId: `n${i}`, labels: { i: String(i) } }),
  );
  beating = new Set(agents);
  timer = setInterval(() => {
    for (const a of beating) a.heartbeat();
  }, TIMINGS.heartbeatIntervalMs);
});

afterEach(async () => {
  clearInterval(timer);
  for (const r of registries.splice(0)) await r.stop();
  await Promise.all(buses.splice(0).map((b) => b.close()));
  await dropPrefix(redis, prefix);
});

async function registerAll(registry: NodeRegistry): Promise<void> {
  await Promise.all(agents.map((a) => a.register()));
  await waitFor(() => registry.stats().nodes.ready === agents.length, { message: "every node ready" });
}

describe("node liveness under faults", () => {
  it("kill -9 of nats-server and a restart: no node is marked lost", async () => {
    const registry = await startRegistry();
    await registerAll(registry);
    await nats.kill();
    // Longer than the disconnect threshold (600 ms) and than lost_after (3 s) minus the grace.
    await new Promise((r) => setTimeout(r, 2000));
    await nats.restart();
    // Every agent heartbeats again (their connections reconnect on their own).
    const since = Date.now();
    await waitFor(() => agents.every((a) => (registry.get(a.nodeId)?.lastHeartbeat ?? 0) > since), {
      timeoutMs: 15_000,
      message: "heartbeats from every agent after the restart",
    });
    // Past lost_after since the kill, with every agent back.
    await new Promise((r) => setTimeout(r, TIMINGS.lostAfterMs));
    expect(entered.filter((e) => e.state === "lost")).toEqual([]);
    expect(registry.stats().nodes.ready).toBe(agents.length);
  });

  it("an agent that stops heartbeating becomes disconnected, then lost after lost_after, and comes back", async () => {
    const registry = await startRegistry();
    await registerAll(registry);
    const quiet = agents[3] as SimAgent;
    beating.delete(quiet);
    const stoppedAt = Date.now();
    await waitFor(() => registry.get("n3")?.state === "disconnected", {
      timeoutMs: 5000,
      message: "n3 disconnected",
    });
    // The registry started just now: the 1.5 s grace applies before the first disconnect.
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(
      TIMINGS.heartbeatIntervalMs * TIMINGS.missedHeartbeats - 50,
    );
    await waitFor(() => registry.get("n3")?.state === "lost", { timeoutMs: 8000, message: "n3 lost" });
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(TIMINGS.lostAfterMs - 50);
    expect(registry.get("n3")?.message).toMatch(/no heartbeat for more than 3s/);
    // Every other node stayed ready the whole time.
    expect(entered.filter((e) => e.node !== "n3")).toEqual([]);
    // Persisted (coalesced): a new registry would load it as lost.
    await registry.flush();
    expect(JSON.parse((await redis.hget(`${prefix}nodes:rec`, "n3")) as string).state).toBe("lost");
    beating.add(quiet);
    await waitFor(() => registry.get("n3")?.state === "ready", { message: "n3 back" });
  });

  it("a control-plane restart over the same Redis keeps nodes ready (grace period)", async () => {
    const first = await startRegistry();
    await registerAll(first);
    const dead = agents[5] as SimAgent;
    beating.delete(dead); // dies while the control plane is down
    await first.stop();
    await new Promise((r) => setTimeout(r, 1000));
    entered = [];
    const restartedAt = Date.now();
    const second = await startRegistry();
    expect(second.size).toBe(agents.length);
    // Right after the restart, every node is ready: nobody is marked disconnected or lost in bulk.
    expect(second.stats().nodes).toMatchObject({ ready: agents.length, disconnected: 0, lost: 0 });
    await new Promise((r) => setTimeout(r, TIMINGS.restartGraceMs - 300));
    expect(second.stats().nodes.ready).toBe(agents.length);
    // After the grace, only the dead one is disconnected; lost no sooner than lost_after after the restart.
    await waitFor(() => second.get("n5")?.state === "disconnected", {
      timeoutMs: 5000,
      message: "n5 disconnected",
    });
    expect(second.stats().nodes.ready).toBe(agents.length - 1);
    await waitFor(() => second.get("n5")?.state === "lost", { timeoutMs: 8000, message: "n5 lost" });
    expect(Date.now() - restartedAt).toBeGreaterThanOrEqual(TIMINGS.lostAfterMs - 50);
    expect(entered.filter((e) => e.node !== "n5")).toEqual([]);
  });
});
