import { MemoryBroker } from "@edgeplane/bus";
import { validateJobSpec } from "@edgeplane/core";
import { parseSelector } from "@edgeplane/selector";
import {
  createMemoryDesiredStateStore,
  createMemoryJobStore,
  createMemoryNodeData,
  createMemoryNodeStore,
  type JobStore,
  type MemoryNodeData,
} from "@edgeplane/store";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createNodeRegistry, type NodeRegistry } from "./node-registry.js";
import { executionIdFor } from "./placement.js";
import { createPlacementController, type PlacementController } from "./placement-controller.js";
import { SimAgent } from "./sim-agent.js";

const T0 = Date.UTC(2026, 0, 1);
const PIPELINE_CONFIG = { input: { generate: { interval: "1s", message: {} } }, output: { discard: {} } };
const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
const settle = () => new Promise((r) => setTimeout(r, 5));

let broker: MemoryBroker;
let data: MemoryNodeData;
let jobs: JobStore;
let clock: { t: number; now(): number };
let registry: NodeRegistry;
let placement: PlacementController;
const stops: Array<() => Promise<void>> = [];
let seq = 0;

async function startServices(): Promise<void> {
  const desiredStore = createMemoryDesiredStateStore({ data });
  registry = createNodeRegistry({
    bus: broker.connect(),
    nodeStore: createMemoryNodeStore({ data }),
    desiredStore,
    clock,
    logger: quiet,
    sweepIntervalMs: 0,
    flushIntervalMs: 0,
  });
  placement = createPlacementController({
    jobStore: jobs,
    desiredStore,
    registry,
    clock,
    logger: quiet,
    pollIntervalMs: 3_600_000,
    resyncIntervalMs: 0,
  });
  await registry.start();
  await placement.start();
  const r = registry;
  const p = placement;
  stops.push(async () => {
    await p.stop();
    await r.stop();
  });
}

/** Waits until placement has taken in every job change and node change so far. */
async function converge(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await settle();
    await placement.pollNow();
    await placement.idle();
  }
  await settle();
}

async function submit(name: string, extra: Record<string, unknown> = {}) {
  const spec = validateJobSpec(
    { name, type: "pipeline", config: PIPELINE_CONFIG, ...extra },
    {
      parseExpression: (e: string) => parseSelector(e),
    },
  );
  const result = await jobs.putJob({
    namespace: spec.namespace,
    name: spec.name,
    type: spec.type,
    labels: spec.labels ?? {},
    spec: spec as unknown as Record<string, unknown>,
    newId: `job-${String(++seq).padStart(4, "0")}`,
    now: clock.now(),
  });
  return result.job;
}

async function agent(id: string, labels: Record<string, string>): Promise<SimAgent> {
  const a = new SimAgent({ bus: broker.connect(), nodeId: id, labels, timeoutMs: 500 }).listen();
  const reply = await a.register();
  expect(reply.accepted).toBe(true);
  return a;
}

const jobIdsOf = (a: SimAgent) => (a.desired?.assignments ?? []).map((x) => x.jobId);

beforeEach(async () => {
  broker = new MemoryBroker();
  data = createMemoryNodeData();
  jobs = createMemoryJobStore();
  clock = { t: T0, now: () => clock.t };
  await startServices();
});

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

describe("simple placement", () => {
  it("places a job on every matching ready node at once and marks it running", async () => {
    const eu1 = await agent("eu-1", { region: "eu" });
    const eu2 = await agent("eu-2", { region: "eu" });
    const us1 = await agent("us-1", { region: "us" });
    const job = await submit("logs", { selector: { match_labels: { region: "eu" } } });
    await converge();
    expect(jobIdsOf(eu1)).toEqual([job.id]);
    expect(jobIdsOf(eu2)).toEqual([job.id]);
    expect(jobIdsOf(us1)).toEqual([]);
    expect(eu1.desired?.assignments[0]).toMatchObject({
      executionId: executionIdFor(job.id, 1, "eu-1"),
      jobVersion: 1,
      namespace: "default",
      jobName: "logs",
      type: "pipeline",
      desiredState: "running",
      restartPolicy: "on-failure",
      maxErrorRate: 0.1,
      deploymentId: "",
    });
    expect(eu1.desired?.assignments[0]?.config).toEqual(PIPELINE_CONFIG);
    expect(eu1.appliedRevision).toBe(1);
    expect(await jobs.getJob(job.id)).toMatchObject({
      state: "running",
      stateMessage: "placed on every matching ready node",
    });
  });

  it("queues a job no ready node matches, and runs it when one appears", async () => {
    const job = await submit("logs", { selector: { match_labels: { region: "ap" } } });
    await converge();
    expect(await jobs.getJob(job.id)).toMatchObject({
      state: "queued",
      stateMessage: "no ready node matches the selector",
    });
    const ap = await agent("ap-1", { region: "ap" });
    await converge();
    expect(jobIdsOf(ap)).toEqual([job.id]);
    expect((await jobs.getJob(job.id))?.state).toBe("running");
  });

  it("follows label changes: a node that starts matching gets the job, one that stops loses it", async () => {
    const a = await agent("n1", { region: "us" });
    const job = await submit("logs", { selector: { match_expressions: ["region=eu"] } });
    await converge();
    expect(jobIdsOf(a)).toEqual([]);
    await registry.setLabels("n1", { labels: { region: "eu" } });
    await converge();
    expect(jobIdsOf(a)).toEqual([job.id]);
    await registry.setLabels("n1", { labels: { region: "" } });
    await converge();
    expect(jobIdsOf(a)).toEqual([]);
    expect(a.appliedRevision).toBe(2);
    expect((await jobs.getJob(job.id))?.state).toBe("queued");
  });

  it("removes a stopped or deleted job from its nodes", async () => {
    const a = await agent("n1", {});
    const keep = await submit("keep");
    const stop = await submit("stop-me");
    const del = await submit("delete-me");
    await converge();
    expect(jobIdsOf(a).sort()).toEqual([keep.id, stop.id, del.id].sort());
    await jobs.updateStatus(stop.id, { state: "stopped", message: "stopped by a user", now: clock.now() });
    await jobs.deleteJob(del.id, clock.now());
    await converge();
    expect(jobIdsOf(a)).toEqual([keep.id]);
    expect((await jobs.getJob(stop.id))?.state).toBe("stopped");
  });

  it("moves nodes to a new job version (new execution id)", async () => {
    const a = await agent("n1", {});
    const v1 = await submit("logs");
    await converge();
    await submit("logs", {
      config: { ...PIPELINE_CONFIG, input: { generate: { interval: "1s", message: {}, count: 2 } } },
    });
    await converge();
    expect(a.desired?.assignments).toHaveLength(1);
    expect(a.desired?.assignments[0]).toMatchObject({
      jobId: v1.id,
      jobVersion: 2,
      executionId: executionIdFor(v1.id, 2, "n1"),
    });
  });

  it("gives a draining node nothing new but lets it keep what it has", async () => {
    const a = await agent("n1", {});
    const old = await submit("old");
    await converge();
    await registry.drain("n1");
    const fresh = await submit("fresh");
    await converge();
    expect(jobIdsOf(a)).toEqual([old.id]);
    expect((await jobs.getJob(fresh.id))?.state).toBe("queued");
    await registry.drain("n1", { undrain: true });
    await converge();
    expect(jobIdsOf(a).sort()).toEqual([old.id, fresh.id].sort());
  });

  it("keeps a disconnected node's assignments; it converges when it returns", async () => {
    const a = await agent("n1", {});
    const first = await submit("first");
    await converge();
    a.autoApply = false; // offline from here on
    clock.t = T0 + 60_000;
    registry.sweep();
    expect(registry.get("n1")?.state).toBe("disconnected");
    await jobs.updateStatus(first.id, { state: "stopped", message: "x", now: clock.now() });
    const second = await submit("second");
    await converge();
    // Lost the stopped job, gained nothing (not ready).
    expect(placement.heldBy("n1")).toEqual([]);
    a.autoApply = true;
    a.heartbeat(); // back: ready again, and behind on revision
    await converge();
    expect(jobIdsOf(a)).toEqual([second.id]);
    a.heartbeat();
    await settle();
    expect(registry.get("n1")).toMatchObject({ state: "ready", appliedRevision: 3, desiredRevision: 3 });
  });

  it("jumps past a revision an agent reports ahead of the store", async () => {
    const a = new SimAgent({ bus: broker.connect(), nodeId: "n1", labels: {}, timeoutMs: 500 }).listen();
    a.appliedRevision = 41; // e.g. the store was restored from an old backup
    await a.register();
    await submit("logs");
    await converge();
    expect(a.appliedRevision).toBeGreaterThan(41);
    expect(jobIdsOf(a)).toHaveLength(1);
  });

  it("writes nothing after a restart over the same stores", async () => {
    await agent("n1", {});
    await agent("n2", {});
    await submit("logs");
    await converge();
    for (const stop of stops.splice(0)) await stop();
    await startServices();
    await converge();
    expect(placement.stats().desiredWrites).toBe(0);
    expect(placement.heldBy("n1")).toHaveLength(1);
  });
});

describe("check-and-set conflicts", () => {
  it("re-reads a desired state written behind its back and converges", async () => {
    const a = await agent("n1", {});
    // Another writer bumps n1's (empty) desired state twice; placement's view is now stale.
    const other = createMemoryDesiredStateStore({ data });
    await other.put({ nodeId: "n1", assignments: [], now: clock.now() });
    await other.put({ nodeId: "n1", assignments: [], now: clock.now() });
    const job = await submit("logs");
    await converge();
    await new Promise((r) => setTimeout(r, 50)); // the retry after the conflict (backoff)
    await converge();
    expect(jobIdsOf(a)).toEqual([job.id]);
    expect(a.appliedRevision).toBe(3);
    expect(placement.stats().syncErrors).toBeGreaterThan(0);
  });
});
