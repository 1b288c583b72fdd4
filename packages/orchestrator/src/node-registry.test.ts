import { HeartbeatSchema } from "@edgeplane/api";
import { encode, MemoryBroker, subjects } from "@edgeplane/bus";
import { parseSelector } from "@edgeplane/selector";
import {
  createMemoryDesiredStateStore,
  createMemoryNodeData,
  createMemoryNodeStore,
  type MemoryNodeData,
  type NodeStore,
} from "@edgeplane/store";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createNodeRegistry, type NodeRegistry, type NodeRegistryOptions } from "./node-registry.js";
import { SimAgent } from "./sim-agent.js";

const T0 = Date.UTC(2026, 0, 1);
const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
/** Lets queued microtasks and timers of the memory bus run. */
const settle = () => new Promise((r) => setTimeout(r, 5));

interface Harness {
  broker: MemoryBroker;
  data: MemoryNodeData;
  clock: { now(): number; t: number };
  registry: NodeRegistry;
  saves: number[];
  agent(id: string, labels?: Record<string, string>): SimAgent;
  restart(options?: Partial<NodeRegistryOptions>): Promise<NodeRegistry>;
}

let h: Harness;
const registries: NodeRegistry[] = [];

async function harness(options: Partial<NodeRegistryOptions> = {}): Promise<Harness> {
  const broker = new MemoryBroker();
  const data = createMemoryNodeData();
  const clock = { t: T0, now: () => clock.t };
  const saves: number[] = [];
  const make = async (extra: Partial<NodeRegistryOptions>) => {
    const inner = createMemoryNodeStore({ data });
    const nodeStore: NodeStore = {
      ...inner,
      saveMany: async (records) => {
        saves.push(records.length);
        return inner.saveMany(records);
      },
    };
    const registry = createNodeRegistry({
      bus: broker.connect(),
      nodeStore,
      desiredStore: createMemoryDesiredStateStore({ data }),
      clock,
      logger: quiet,
      sweepIntervalMs: 0,
      flushIntervalMs: 0,
      ...options,
      ...extra,
    });
    registries.push(registry);
    await registry.start();
    return registry;
  };
  const registry = await make({});
  return {
    broker,
    data,
    clock,
    registry,
    saves,
    agent: (id, labels = {}) =>
      new SimAgent({ bus: broker.connect(), nodeId: id, labels, timeoutMs: 500 }).listen(),
    restart: async (extra = {}) => make(extra),
  };
}

beforeEach(async () => {
  h = await harness();
});

afterEach(async () => {
  for (const r of registries.splice(0)) await r.stop();
});

describe("registration", () => {
  it("accepts a node, replies with the interval and its desired state, persists it at once", async () => {
    const a = h.agent("edge-1", { region: "eu", "edgeplane.io/arch": "arm64" });
    const reply = await a.register();
    expect(reply).toMatchObject({ accepted: true, heartbeatIntervalMs: 5000 });
    expect(reply.desiredState).toMatchObject({ nodeId: "edge-1", revision: 0, assignments: [] });
    expect(h.registry.get("edge-1")).toMatchObject({
      state: "ready",
      labels: { region: "eu", "edgeplane.io/arch": "arm64" },
      agentVersion: "0.1.0-sim",
      executors: ["pipeline", "exec"],
      registeredAt: T0,
    });
    expect(h.data.nodes.has("edge-1")).toBe(true);
  });

  it("refuses invalid labels with a message naming the field, and stores nothing", async () => {
    const reply = await h.agent("edge-1", { "bad key!": "x" }).register();
    expect(reply.accepted).toBe(false);
    expect(reply.message).toMatch(/^labels\["bad key!"\]: invalid key/);
    const reply2 = await h.agent("edge-2", { ok: "-bad-" }).register();
    expect(reply2.message).toMatch(/^labels\["ok"\]: invalid value/);
    expect(h.registry.size).toBe(0);
    expect(h.data.nodes.size).toBe(0);
    expect(h.registry.stats().rejectedRegistrations).toBe(2);
  });

  it("refuses a body naming another node (identity is the subject)", async () => {
    const reply = await h.agent("edge-1").register({ nodeId: "edge-2" });
    expect(reply.accepted).toBe(false);
    expect(reply.message).toMatch(/does not match node edge-1/);
    expect(h.registry.stats().dropped.mismatched_identity).toBe(1);
    expect(h.registry.size).toBe(0);
  });

  it("keeps operator labels and drain across re-registration; the agent's labels are replaced", async () => {
    const a = h.agent("edge-1", { region: "eu", zone: "a" });
    await a.register();
    await h.registry.setLabels("edge-1", { labels: { tier: "gold", zone: "b" } });
    await h.registry.drain("edge-1", { reason: "maintenance" });
    a.labels = { region: "us", zone: "a" };
    await a.register();
    expect(h.registry.get("edge-1")).toMatchObject({
      labels: { region: "us", zone: "b", tier: "gold" },
      state: "draining",
      drained: true,
    });
  });
});

describe("bad inputs", () => {
  it("counts and drops unknown, mismatched, malformed and oversized messages; nothing stored changes", async () => {
    const small = await harness({ maxMessageBytes: 1024 });
    const a = small.agent("edge-1");
    await a.register();
    const before = new Map(small.data.nodes);
    const bus = small.broker.connect();
    bus.publish(
      subjects.outbound("ghost", "heartbeat"),
      encode(HeartbeatSchema, { nodeId: "ghost", seq: 1n }),
    );
    bus.publish(
      subjects.outbound("edge-1", "heartbeat"),
      encode(HeartbeatSchema, { nodeId: "edge-2", seq: 1n }),
    );
    bus.publish(subjects.outbound("edge-1", "heartbeat"), new Uint8Array([0x0a, 0xff, 0xff, 0xff]));
    bus.publish(subjects.outbound("edge-1", "heartbeat"), new Uint8Array(2048));
    bus.publish(subjects.outbound("edge-1", "event"), new Uint8Array([0xff]));
    bus.publish("ep.node.a.b.out.heartbeat", new Uint8Array());
    await settle();
    await small.registry.flush();
    expect(small.registry.stats().dropped).toEqual({
      mismatched_identity: 1,
      malformed: 2,
      oversized: 1,
      unknown_node: 1,
    });
    expect(small.data.nodes).toEqual(before);
    expect(small.registry.has("ghost")).toBe(false);
  });
});

describe("liveness", () => {
  it("ready → disconnected after 3 missed intervals → lost after lost_after; a heartbeat brings it back", async () => {
    const a = h.agent("edge-1");
    await a.register();
    h.clock.t = T0 + 31_000; // past the 30 s grace of the registry's start, and 15 s of silence
    h.registry.sweep();
    expect(h.registry.get("edge-1")).toMatchObject({
      state: "disconnected",
      message: expect.stringMatching(/missed 3 heartbeats/),
    });
    h.clock.t = T0 + 300_001;
    h.registry.sweep();
    expect(h.registry.get("edge-1")?.state).toBe("lost");
    a.heartbeat();
    await settle();
    expect(h.registry.get("edge-1")).toMatchObject({
      state: "ready",
      message: "",
      lastHeartbeat: T0 + 300_001,
    });
  });

  it("heartbeats keep a node ready", async () => {
    const a = h.agent("edge-1");
    await a.register();
    for (let i = 1; i <= 20; i++) {
      h.clock.t = T0 + i * 5000;
      a.heartbeat();
      await settle();
      h.registry.sweep();
    }
    expect(h.registry.get("edge-1")?.state).toBe("ready");
  });

  it("a drained node stays draining through silence and return", async () => {
    const a = h.agent("edge-1");
    await a.register();
    await h.registry.drain("edge-1", { reason: "disk swap" });
    expect(h.registry.get("edge-1")).toMatchObject({
      state: "draining",
      message: "drained by operator: disk swap",
    });
    h.clock.t = T0 + 60_000;
    h.registry.sweep();
    expect(h.registry.get("edge-1")?.state).toBe("disconnected");
    a.heartbeat();
    await settle();
    expect(h.registry.get("edge-1")?.state).toBe("draining");
    await h.registry.drain("edge-1", { undrain: true });
    expect(h.registry.get("edge-1")).toMatchObject({ state: "ready", drained: false, message: "" });
  });

  it("after a restart every node gets the grace period (no mass disconnect or lost)", async () => {
    await h.agent("edge-1").register();
    await h.agent("edge-2").register();
    await h.registry.stop();
    // The control plane was down for 10 minutes; its records say "ready", last heartbeat T0.
    h.clock.t = T0 + 600_000;
    const again = await h.restart();
    again.sweep();
    expect(again.stats().nodes).toMatchObject({ ready: 2, total: 2 });
    h.clock.t += 29_000;
    again.sweep();
    expect(again.stats().nodes.ready).toBe(2);
    h.clock.t += 2000; // grace (30 s) over: silent nodes are disconnected, not lost
    again.sweep();
    expect(again.stats().nodes).toMatchObject({ disconnected: 2, lost: 0 });
    h.clock.t = T0 + 600_000 + 300_000;
    again.sweep();
    expect(again.stats().nodes.lost).toBe(2);
  });

  it("persists heartbeats coarsely, in batches", async () => {
    const agents = await Promise.all(
      ["n1", "n2", "n3"].map(async (id) => {
        const a = h.agent(id);
        await a.register();
        return a;
      }),
    );
    h.saves.length = 0;
    for (let i = 1; i <= 24; i++) {
      h.clock.t = T0 + i * 5000;
      for (const a of agents) a.heartbeat();
      await settle();
      await h.registry.flush();
    }
    // 2 minutes of heartbeats from 3 nodes: last_heartbeat written once a minute per node, in one batch each time.
    expect(h.saves).toEqual([3, 3]);
  });
});

describe("desired state", () => {
  it("pushes on change and re-sends to a node whose heartbeat shows an older revision", async () => {
    const desired = createMemoryDesiredStateStore({ data: h.data });
    const a = h.agent("edge-1");
    await a.register();
    a.autoApply = false; // offline: receives nothing it applies
    const record = await desired.put({ nodeId: "edge-1", assignments: [], now: T0, expectedRevision: 0 });
    h.registry.desiredChanged(record);
    await settle();
    expect(a.received.at(-1)?.revision).toBe(1);
    expect(a.appliedRevision).toBe(0);
    expect(h.registry.stats().desiredPushes).toBe(1);
    // Within one heartbeat interval of the push: no re-send.
    h.clock.t = T0 + 1000;
    a.heartbeat();
    await settle();
    expect(h.registry.stats().desiredResends).toBe(0);
    a.autoApply = true;
    h.clock.t = T0 + 5000;
    a.heartbeat();
    await settle();
    expect(h.registry.stats().desiredResends).toBe(1);
    expect(a.appliedRevision).toBe(1);
    expect(h.registry.get("edge-1")).toMatchObject({ desiredRevision: 1 });
    h.clock.t = T0 + 10_000;
    a.heartbeat();
    await settle();
    expect(h.registry.get("edge-1")).toMatchObject({ appliedRevision: 1 });
    expect(h.registry.stats().desiredResends).toBe(1);
  });

  it("answers a desired-state fetch from a known node, and drops one from an unknown node", async () => {
    const a = h.agent("edge-1");
    await a.register();
    const ds = await a.fetchDesired();
    expect(ds).toMatchObject({ nodeId: "edge-1", revision: 0 });
    await expect(h.agent("ghost").fetchDesired()).rejects.toMatchObject({ code: "deadline_exceeded" });
    expect(h.registry.stats().dropped.unknown_node).toBe(1);
  });

  it("asks placement to jump past a revision the agent reports ahead of the store", async () => {
    const changes: string[] = [];
    h.registry.onNodeChange((id, change) => changes.push(`${id}:${change}`));
    const a = h.agent("edge-1");
    a.appliedRevision = 7;
    await a.register();
    expect(changes).toContain("edge-1:revision");
  });
});

describe("events and logs", () => {
  it("de-duplicates events by id, records execution status, hands events and logs to listeners", async () => {
    const events: string[] = [];
    const logs: string[] = [];
    h.registry.onExecutionEvent((id, ev) => events.push(`${id}:${ev.eventId}:${ev.status?.state}`));
    h.registry.onLogs((id, batch) => logs.push(`${id}:${batch.executionId}:${batch.lines.length}`));
    const a = h.agent("edge-1");
    await a.register();
    const id = a.event({ executionId: "exec-1", jobId: "job-1", state: "running" });
    a.event({ executionId: "exec-1", jobId: "job-1", state: "running" }, id);
    a.event({ executionId: "exec-1", jobId: "job-1", state: "finished", exitCode: 0 });
    a.logs("exec-1", ["a", "b"]);
    await settle();
    expect(events).toEqual([`edge-1:${id}:running`, "edge-1:ev-edge-1-2:finished"]);
    expect(logs).toEqual(["edge-1:exec-1:2"]);
    expect(h.registry.stats().duplicateEvents).toBe(1);
    expect(h.registry.get("edge-1")?.executions).toMatchObject([
      { executionId: "exec-1", state: "finished", exitCode: 0 },
    ]);
  });

  it("takes the execution list of a heartbeat as the whole picture", async () => {
    const a = h.agent("edge-1");
    await a.register();
    a.executions = [
      { executionId: "e1", jobId: "j1", state: "running", health: { healthy: true, errorRate: 0.01 } },
      { executionId: "e2", jobId: "j2", state: "waiting" },
    ];
    a.heartbeat();
    await settle();
    expect(h.registry.get("edge-1")?.executions.map((e) => [e.executionId, e.state, e.healthy])).toEqual([
      ["e1", "running", true],
      ["e2", "waiting", false],
    ]);
    a.executions = [{ executionId: "e2", jobId: "j2", state: "running" }];
    a.heartbeat();
    await settle();
    expect(h.registry.get("edge-1")?.executions.map((e) => [e.executionId, e.state])).toEqual([
      ["e2", "running"],
    ]);
  });
});

describe("queries and operator changes", () => {
  beforeEach(async () => {
    for (let i = 0; i < 12; i++) {
      await h
        .agent(`n${String(i).padStart(2, "0")}`, { region: i % 3 === 0 ? "eu" : "us", idx: String(i) })
        .register();
    }
  });

  it("pages in id order, filtered by selector and state", async () => {
    const first = h.registry.list({ limit: 5 });
    expect(first.items.map((n) => n.id)).toEqual(["n00", "n01", "n02", "n03", "n04"]);
    const second = h.registry.list({ limit: 5, after: first.next });
    expect(second.items.map((n) => n.id)).toEqual(["n05", "n06", "n07", "n08", "n09"]);
    const last = h.registry.list({ limit: 5, after: second.next });
    expect(last.items.map((n) => n.id)).toEqual(["n10", "n11"]);
    expect(last.next).toBeUndefined();
    const eu = h.registry.list({ limit: 3, selector: parseSelector("region=eu") });
    expect(eu.items.map((n) => n.id)).toEqual(["n00", "n03", "n06"]);
    expect(
      h.registry
        .list({ limit: 3, selector: parseSelector("region=eu"), after: eu.next })
        .items.map((n) => n.id),
    ).toEqual(["n09"]);
    await h.registry.drain("n03");
    expect(h.registry.list({ limit: 50, states: ["draining"] }).items.map((n) => n.id)).toEqual(["n03"]);
    expect(
      h.registry.list({ limit: 50, states: ["ready"], selector: parseSelector("region=eu") }).items,
    ).toHaveLength(3);
  });

  it("merges operator labels over the agent's, refuses edgeplane.io/ keys, removes on empty value", async () => {
    const view = await h.registry.setLabels("n01", { labels: { tier: "gold", region: "ap" } });
    expect(view.labels).toMatchObject({ region: "ap", tier: "gold", idx: "1" });
    expect(view.operatorLabels).toEqual({ tier: "gold", region: "ap" });
    expect(
      h.registry.list({ limit: 50, selector: parseSelector("region=ap") }).items.map((n) => n.id),
    ).toEqual(["n01"]);
    await expect(
      h.registry.setLabels("n01", { labels: { "edgeplane.io/arch": "x86" } }),
    ).rejects.toMatchObject({
      code: "invalid_argument",
      details: [{ field: 'labels["edgeplane.io/arch"]' }],
    });
    await expect(
      h.registry.setLabels("n01", { labels: { "bad key": "x" }, remove: [3] }),
    ).rejects.toMatchObject({
      details: [{ field: 'labels["bad key"]' }, { field: "remove[0]" }],
    });
    const removed = await h.registry.setLabels("n01", { labels: { region: "" }, remove: ["tier"] });
    expect(removed.operatorLabels).toEqual({});
    expect(removed.labels.region).toBe("us");
    await expect(h.registry.setLabels("nope", {})).rejects.toMatchObject({ code: "not_found" });
    // Written before answering.
    expect(JSON.parse(h.data.nodes.get("n01") as string).operator_labels).toEqual({});
  });

  it("reports the node change to listeners", async () => {
    const changes: string[] = [];
    h.registry.onNodeChange((id, change) => changes.push(`${id}:${change}`));
    await h.registry.setLabels("n01", { labels: { tier: "gold" } });
    await h.registry.drain("n02");
    expect(changes).toEqual(["n01:labels", "n02:state"]);
  });
});
