import { MemoryBroker } from "@edgeplane/bus";
import { validateJobSpec } from "@edgeplane/core";
import { parseSelector } from "@edgeplane/selector";
import {
  createMemoryDesiredStateStore,
  createMemoryJobStore,
  createMemoryNodeData,
  createMemoryNodeStore,
  type DesiredStateStore,
  type JobStore,
  type MemoryNodeData,
} from "@edgeplane/store";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createNodeRegistry, type NodeRegistry } from "./node-registry.js";
import { executionIdFor } from "./placement.js";
import {
  createPlacementController,
  type PlacementController,
  type PlacementControllerOptions,
} from "./placement-controller.js";
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

async function startServices(
  options: {
    wrap?: (store: DesiredStateStore) => DesiredStateStore;
    placement?: Partial<PlacementControllerOptions>;
  } = {},
): Promise<void> {
  const plain = createMemoryDesiredStateStore({ data });
  const desiredStore = options.wrap?.(plain) ?? plain;
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
    ...options.placement,
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

describe("batches", () => {
  /** Restarts the services with a desired store that records every `putMany` call's size. */
  async function restartCounting(placement: Partial<PlacementControllerOptions> = {}): Promise<number[]> {
    const calls: number[] = [];
    for (const stop of stops.splice(0)) await stop();
    await startServices({
      placement,
      wrap: (store) => ({
        ...store,
        putMany: (cmds) => {
          calls.push(cmds.length);
          return store.putMany(cmds);
        },
      }),
    });
    return calls;
  }

  it("writes the nodes queued together in one store call each batch, and pushes every one", async () => {
    const calls = await restartCounting({ batchSize: 8, concurrency: 1 });
    const agents = [];
    for (let i = 0; i < 20; i++) agents.push(await agent(`n${String(i).padStart(2, "0")}`, { site: "x" }));
    await converge();
    calls.length = 0;
    const job = await submit("logs", { selector: { match_labels: { site: "x" } } });
    await converge();
    for (const a of agents) expect(jobIdsOf(a)).toEqual([job.id]);
    expect(calls.reduce((x, y) => x + y, 0)).toBe(20);
    expect(Math.max(...calls)).toBe(8);
    expect(calls.length).toBeLessThanOrEqual(4);
    expect(placement.stats()).toMatchObject({ desiredWrites: 20, syncErrors: 0 });
  });

  it("a lost check-and-set fails only its node, which converges on the retry", async () => {
    await restartCounting({ batchSize: 64, concurrency: 1 });
    const agents = [];
    for (let i = 0; i < 5; i++) agents.push(await agent(`n${i}`, {}));
    await converge();
    // Another writer bumps n2 behind placement's back.
    await createMemoryDesiredStateStore({ data }).put({ nodeId: "n2", assignments: [], now: clock.now() });
    const job = await submit("logs");
    await converge();
    await new Promise((r) => setTimeout(r, 50)); // the retry after the conflict (backoff)
    await converge();
    for (const a of agents) expect(jobIdsOf(a)).toEqual([job.id]);
    expect(placement.stats().syncErrors).toBe(1);
    expect(agents[2]?.appliedRevision).toBe(2);
    expect(agents[0]?.appliedRevision).toBe(1);
  });

  it("writes nothing when the gate closes while a batch is computed", async () => {
    // Once armed: open for the start of the next sync, closed when it is about to write.
    let armed = false;
    let checks = 0;
    const calls = await restartCounting({
      gate: { isActive: () => !armed || checks++ === 0 },
    });
    const a = await agent("n1", {});
    await converge();
    armed = true;
    await submit("logs");
    await converge();
    expect(checks).toBe(2);
    expect(calls).toEqual([]);
    expect(jobIdsOf(a)).toEqual([]);
    armed = false;
    await placement.resync();
    await converge();
    expect(jobIdsOf(a)).toHaveLength(1);
    expect(calls).toEqual([1]);
  });

  it("a store that cannot be reached fails the batch's writes; they are retried", async () => {
    let failures = 1;
    for (const stop of stops.splice(0)) await stop();
    await startServices({
      wrap: (store) => ({
        ...store,
        putMany: async (cmds) => {
          if (failures-- > 0) throw new Error("connection reset");
          return store.putMany(cmds);
        },
      }),
    });
    const agents = [await agent("n1", {}), await agent("n2", {})];
    const job = await submit("logs");
    await converge();
    await new Promise((r) => setTimeout(r, 50));
    await converge();
    for (const x of agents) expect(jobIdsOf(x)).toEqual([job.id]);
    expect(placement.stats().syncErrors).toBeGreaterThanOrEqual(1);
  });
});

type NamedVersions = Map<string, { version: number; deploymentId: string }>;

/** The lookups of a test version source over `names` (`<job id>/<node id>` → version). */
function lookupOf(names: NamedVersions) {
  return {
    versionOf: (jobId: string, nodeId: string) => names.get(`${jobId}/${nodeId}`),
    jobsOn: (nodeId: string) =>
      new Set(
        [...names.keys()].filter((k) => k.endsWith(`/${nodeId}`)).map((k) => k.split("/")[0] as string),
      ),
  };
}

describe("rollouts (a version source)", () => {
  it("syncs a new job's nodes only where its versions map names one (its deployment assigns the rest)", async () => {
    const names: NamedVersions = new Map();
    const source = { generation: 0, ensure: () => undefined, ...lookupOf(names) };
    for (const stop of stops.splice(0)) await stop();
    await startServices({ placement: { versions: source } });
    const n1 = await agent("n1", {});
    const n2 = await agent("n2", {});
    await converge();
    const before = placement.stats().nodeSyncs;
    await submit("logs");
    await converge();
    // Nothing names the new job: no node needs a sync.
    expect(placement.stats().nodeSyncs).toBe(before);
    // A job whose map already names a node when it starts being placed (a job placed again, a
    // new leader): that node only.
    const other = await submit("metrics");
    names.set(`${other.id}/n2`, { version: 1, deploymentId: "dep-2" });
    await converge();
    expect(placement.stats().nodeSyncs).toBe(before + 1);
    expect(jobIdsOf(n2)).toEqual([other.id]);
    expect(jobIdsOf(n1)).toEqual([]);
  });

  it("assigns what the source names, and a source reset during a batch's loads aborts it until the retry", async () => {
    const names: NamedVersions = new Map();
    let generation = 0;
    let resets = 0;
    const source = {
      get generation() {
        return generation;
      },
      ensure: (): Promise<void> | undefined => {
        if (resets === 0) return undefined;
        resets--;
        // A new leadership term begins while this load is in flight.
        return Promise.resolve().then(() => {
          generation++;
        });
      },
      ...lookupOf(names),
    };
    for (const stop of stops.splice(0)) await stop();
    await startServices({ placement: { versions: source } });
    const n1 = await agent("n1", {});
    const n2 = await agent("n2", {});
    const job = await submit("logs");
    await converge();
    // A deployment assigns n1; a new term begins while the batch of n1 and n2 loads.
    names.set(`${job.id}/n1`, { version: 1, deploymentId: "dep-1" });
    resets = 1;
    placement.nodesChanged(["n1", "n2"]);
    await converge();
    await new Promise((r) => setTimeout(r, 50)); // the retry after the aborted batch (backoff)
    await converge();
    expect(n1.desired?.assignments.map((a) => [a.jobId, a.jobVersion, a.deploymentId])).toEqual([
      [job.id, 1, "dep-1"],
    ]);
    expect(jobIdsOf(n2)).toEqual([]);
    expect(placement.stats().syncErrors).toBeGreaterThanOrEqual(1);
    expect(resets).toBe(0);
  });
});

describe("rollouts: versions other than the current one", () => {
  it("places an older version from its stored spec, and not at all a version the store no longer keeps", async () => {
    const names: NamedVersions = new Map();
    const source = {
      generation: 0,
      ensure: () => undefined,
      ...lookupOf(names),
    };
    for (const stop of stops.splice(0)) await stop();
    await startServices({ placement: { versions: source } });
    const n1 = await agent("n1", {});
    const n2 = await agent("n2", {});
    const v1 = await submit("logs", { description: "v1" });
    const v2 = await submit("logs", { description: "v2", restart_policy: "always" });
    expect(v2.version).toBe(2);
    names.set(`${v1.id}/n1`, { version: 1, deploymentId: "dep-old" });
    names.set(`${v1.id}/n2`, { version: 7, deploymentId: "dep-gone" });
    await converge();
    placement.nodesChanged(["n1", "n2"]);
    await converge();
    expect(n1.desired?.assignments.map((a) => [a.jobVersion, a.restartPolicy, a.deploymentId])).toEqual([
      [1, "on-failure", "dep-old"],
    ]);
    expect(jobIdsOf(n2)).toEqual([]);
    // A version assigned later is loaded too.
    names.set(`${v1.id}/n1`, { version: 2, deploymentId: "dep-new" });
    placement.nodesChanged(["n1"]);
    await converge();
    expect(n1.desired?.assignments.map((a) => [a.jobVersion, a.restartPolicy])).toEqual([[2, "always"]]);
  });
});
