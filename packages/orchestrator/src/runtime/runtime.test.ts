/**
 * The rollout runtime over the memory stores, the in-process bus and simulated agents, in virtual
 * time (the runtime's queue timers and every clock are driven by the test): deployments start on
 * a spec change, waves follow health, a bad version rolls back, controls apply, late nodes get
 * the stable version, jobs queue and time out, and only the lease holder acts (fencing).
 */
import { MemoryBroker } from "@edgeplane/bus";
import { EdgeplaneError, type JobSpec, validateJobSpec } from "@edgeplane/core";
import { parseSelector } from "@edgeplane/selector";
import {
  createMemoryDeploymentData,
  createMemoryDeploymentStore,
  createMemoryDesiredStateStore,
  createMemoryJobStore,
  createMemoryLeaderLease,
  createMemoryNodeData,
  createMemoryNodeStore,
  createMemoryNodeVersionStore,
  type DeploymentStore,
  type JobRecord,
  type JobStore,
  type MemoryDeploymentData,
  type MemoryNodeData,
  memoryFencing,
  type NodeVersionStore,
  type StatusUpdate,
} from "@edgeplane/store";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createNodeRegistry, type NodeRegistry } from "../node-registry.js";
import { createPlacementController, type PlacementController } from "../placement-controller.js";
import { createDeployment } from "../rollout/create.js";
import { plan } from "../rollout/plan.js";
import type { DeploymentRecord } from "../rollout/types.js";
import { SimAgent } from "../sim-agent.js";
import type { QueueTimers } from "../work-queue.js";
import { createWriteOf, deploymentIdFor, recordOf } from "./records.js";
import { createDeploymentRuntime, type DeploymentRuntime } from "./runtime.js";

const T0 = Date.UTC(2026, 0, 1);
const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
const settle = () => new Promise((r) => setTimeout(r, 2));
const CONFIG = { input: { generate: { interval: "1s", message: {} } }, output: { discard: {} } };

/** Timers in virtual time: `advance` moves the clock and fires what is due, in order. */
class VirtualTimers implements QueueTimers {
  t = T0;
  #seq = 0;
  readonly #due = new Map<number, { at: number; cb: () => void }>();
  now = (): number => this.t;
  setTimeout(cb: () => void, ms: number): unknown {
    const id = ++this.#seq;
    this.#due.set(id, { at: this.t + ms, cb });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#due.delete(handle as number);
  }
  /** Fires every timer due by `t`. */
  fire(): void {
    for (;;) {
      const next = [...this.#due.entries()]
        .filter(([, v]) => v.at <= this.t)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (next === undefined) return;
      this.#due.delete(next[0]);
      next[1].cb();
    }
  }
}

interface ControlPlaneStub {
  registry: NodeRegistry;
  placement: PlacementController;
  runtime: DeploymentRuntime;
  timers: VirtualTimers;
}

let broker: MemoryBroker;
let nodeData: MemoryNodeData;
let depData: MemoryDeploymentData;
let jobs: JobStore;
let deployments: DeploymentStore;
let timers: VirtualTimers;
const clock = { now: () => timers.t };
const stops: Array<() => Promise<void>> = [];
const agents = new Map<string, SimAgent>();
/** Versions each agent reports unhealthy. */
const badVersions = new Set<number>();
let seq = 0;
let cp: ControlPlaneStub;

/** Calls of the node version store's own `assign` (a rollout step assigns in its record's write). */
let standaloneAssigns = 0;

function countingAssigns(store: NodeVersionStore): NodeVersionStore {
  return {
    ...store,
    assign: (cmd) => {
      standaloneAssigns++;
      return store.assign(cmd);
    },
  };
}

/** Job versions the rollout runtime read (a version's spec and kind). */
let versionReads = 0;
/** Job status writes of the rollout runtime that never happen (its process died first). */
let lostJobWrites: ((update: StatusUpdate) => boolean) | undefined;

function countingVersionReads(store: JobStore): JobStore {
  return new Proxy(store, {
    get(target, key, receiver) {
      if (key === "updateStatus")
        return (...args: Parameters<JobStore["updateStatus"]>) => {
          if (lostJobWrites?.(args[1])) throw new EdgeplaneError("unavailable", "the process died (test)");
          return target.updateStatus(...args);
        };
      if (key !== "getVersion") return Reflect.get(target, key, receiver);
      return (...args: Parameters<JobStore["getVersion"]>) => {
        versionReads++;
        return target.getVersion(...args);
      };
    },
  });
}

async function startControlPlane(holder: string, ttlMs = 3_600_000): Promise<ControlPlaneStub> {
  const desiredStore = createMemoryDesiredStateStore({ data: nodeData });
  const registry = createNodeRegistry({
    bus: broker.connect(),
    nodeStore: createMemoryNodeStore({ data: nodeData }),
    desiredStore,
    clock,
    logger: quiet,
    sweepIntervalMs: 0,
    flushIntervalMs: 0,
  });
  const runtime = createDeploymentRuntime({
    jobStore: countingVersionReads(jobs),
    deployments: createMemoryDeploymentStore({ data: depData }),
    versionStore: countingAssigns(createMemoryNodeVersionStore({ data: depData })),
    lease: createMemoryLeaderLease({ data: depData }),
    registry,
    holder,
    leaseTtlMs: ttlMs,
    pollIntervalMs: 3_600_000,
    settleMs: 0,
    clock,
    timers,
    logger: quiet,
  });
  const placement = createPlacementController({
    jobStore: jobs,
    desiredStore,
    registry,
    clock,
    logger: quiet,
    pollIntervalMs: 3_600_000,
    resyncIntervalMs: 0,
    versions: runtime.versions,
    gate: { isActive: () => runtime.isLeader() },
  });
  runtime.attachPlacement(placement);
  await registry.start();
  await placement.start();
  await runtime.start();
  stops.push(async () => {
    await runtime.stop();
    await placement.stop();
    await registry.stop();
  });
  return { registry, placement, runtime, timers };
}

/** Every agent reports what it runs: healthy since it got it, unless its version is bad. */
function heartbeatAll(): void {
  for (const a of agents.values()) {
    a.executions = (a.desired?.assignments ?? []).map((x) => ({
      executionId: x.executionId,
      jobId: x.jobId,
      jobVersion: x.jobVersion,
      state: "running",
      health: { healthy: !badVersions.has(x.jobVersion), errorRate: badVersions.has(x.jobVersion) ? 1 : 0 },
      attempt: 1,
    }));
    a.heartbeat();
  }
}

async function converge(target: ControlPlaneStub = cp): Promise<void> {
  for (let i = 0; i < 6; i++) {
    await settle();
    heartbeatAll();
    await settle();
    await target.runtime.pollNow();
    await target.placement.pollNow();
    await target.runtime.idle();
    await target.placement.idle();
  }
}

/** Moves virtual time forward in steps, converging at each. */
async function advance(ms: number, step = 1000): Promise<void> {
  for (let done = 0; done < ms; done += step) {
    timers.t += Math.min(step, ms - done);
    timers.fire();
    await converge();
  }
}

async function submit(name: string, extra: Record<string, unknown> = {}): Promise<JobRecord> {
  const spec = validateJobSpec(
    { name, type: "pipeline", config: CONFIG, ...extra },
    { parseExpression: (e: string) => parseSelector(e) },
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

async function agent(id: string, labels: Record<string, string> = { site: "lab" }): Promise<SimAgent> {
  const a = new SimAgent({ bus: broker.connect(), nodeId: id, labels }).listen();
  await a.register();
  agents.set(id, a);
  return a;
}

async function deploymentOf(job: JobRecord, version = job.version): Promise<DeploymentRecord> {
  const stored = await deployments.get(deploymentIdFor(job.id, version));
  if (stored === undefined) throw new Error(`no deployment of ${job.id} v${version}`);
  return recordOf(stored);
}

/** The version of `jobId` each agent holds (0: none). */
function versionsHeld(jobId: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [id, a] of agents)
    out[id] = a.desired?.assignments.find((x) => x.jobId === jobId)?.jobVersion ?? 0;
  return out;
}

beforeEach(async () => {
  timers = new VirtualTimers();
  broker = new MemoryBroker();
  nodeData = createMemoryNodeData();
  depData = createMemoryDeploymentData(clock);
  jobs = createMemoryJobStore({ fencing: memoryFencing(depData) });
  deployments = createMemoryDeploymentStore({ data: depData });
  badVersions.clear();
  agents.clear();
  lostJobWrites = undefined;
  cp = await startControlPlane("cp-a");
});

afterEach(async () => {
  for (const a of agents.values()) a.close();
  for (const stop of stops.splice(0).reverse()) await stop();
});

const rolling = (extra: Record<string, unknown> = {}) => ({
  selector: { match_labels: { site: "lab" } },
  deployment: {
    strategy: "rolling",
    max_parallel: 1,
    health_check: { deadline: "20s", min_healthy_time: "2s" },
    ...extra,
  },
});

describe("the rollout runtime", () => {
  it("deploys a new job at once (immediate) and marks it stable", async () => {
    await agent("n1");
    await agent("n2");
    await agent("other", { site: "elsewhere" });
    const job = await submit("web", { selector: { match_labels: { site: "lab" } } });
    await converge();
    const d = await deploymentOf(job);
    expect(d).toMatchObject({ state: "succeeded", strategy: "immediate", targets: expect.any(Array) });
    expect([...d.targets].sort()).toEqual(["n1", "n2"]);
    expect(versionsHeld(job.id)).toEqual({ n1: 1, n2: 1, other: 0 });
    expect(await jobs.getJob(job.id)).toMatchObject({
      state: "running",
      stableVersion: 1,
      deploymentId: d.id,
    });
    expect(agents.get("n1")?.desired?.assignments[0]?.deploymentId).toBe(d.id);
  });

  it("rolls a new version out one node at a time, each healthy for min_healthy_time", async () => {
    for (const id of ["n1", "n2", "n3"]) await agent(id);
    const v1 = await submit("web", rolling());
    await converge();
    await advance(10_000);
    expect((await deploymentOf(v1)).state).toBe("succeeded");
    standaloneAssigns = 0;
    const v2 = await submit("web", { ...rolling(), description: "v2" });
    await converge();
    let d = await deploymentOf(v2);
    expect(d.state).toBe("running");
    const held = Object.values(versionsHeld(v2.id));
    expect(held.filter((v) => v === 2)).toHaveLength(1);
    // The first node becomes done after 2 s; the next is dispatched; and so on.
    await advance(8_000);
    d = await deploymentOf(v2);
    expect(d.state).toBe("succeeded");
    expect(d.events.filter((e) => e.kind === "dispatched")).toHaveLength(3);
    expect(versionsHeld(v2.id)).toEqual({ n1: 2, n2: 2, n3: 2 });
    // Each dispatch went in the write of the record that made it: no separate versions write.
    expect(standaloneAssigns).toBe(0);
    expect(await jobs.getJob(v2.id)).toMatchObject({ stableVersion: 2, state: "running" });
    expect((await deploymentOf(v1)).state).toBe("succeeded");
  });

  it("halts a bad version at the deadline and rolls back to a new version carrying the old spec", async () => {
    for (const id of ["n1", "n2", "n3", "n4"]) await agent(id);
    const v1 = await submit("web", rolling({ max_failed_nodes: 0 }));
    await converge();
    await advance(10_000);
    expect((await jobs.getJob(v1.id))?.stableVersion).toBe(1);
    badVersions.add(2);
    await submit("web", { ...rolling({ max_failed_nodes: 0 }), description: "bad" });
    await converge();
    await advance(40_000);
    const failed = await deploymentOf(v1, 2);
    expect(failed.state).toBe("rolled_back");
    expect(failed.rollbackDeploymentId).toBe(deploymentIdFor(v1.id, 3));
    const kinds = failed.events.map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(["halted", "failed", "rollback_started", "rolled_back"]));
    const rb = await deploymentOf(v1, 3);
    expect(rb).toMatchObject({ state: "succeeded", isRollback: true, rollbackToVersion: 1 });
    const v3 = await jobs.getVersion(v1.id, 3);
    expect(v3).toMatchObject({ kind: "rollback", sourceVersion: 1 });
    const v1spec = await jobs.getVersion(v1.id, 1);
    expect(v3?.spec).toEqual(v1spec?.spec);
    expect(versionsHeld(v1.id)).toEqual({ n1: 3, n2: 3, n3: 3, n4: 3 });
    expect(await jobs.getJob(v1.id)).toMatchObject({ version: 3, stableVersion: 3, state: "running" });
  });

  it("with no_auto_rollback, a failed deployment leaves nodes as they are and fails the job", async () => {
    for (const id of ["n1", "n2"]) await agent(id);
    const v1 = await submit("web", rolling({ max_failed_nodes: 0, no_auto_rollback: true }));
    await converge();
    await advance(10_000);
    badVersions.add(2);
    await submit("web", { ...rolling({ max_failed_nodes: 0, no_auto_rollback: true }), description: "bad" });
    await converge();
    await advance(25_000);
    const d = await deploymentOf(v1, 2);
    expect(d.state).toBe("failed");
    expect(d.events.find((e) => e.kind === "rollback_skipped")?.details.code).toBe("no_auto_rollback");
    expect(await jobs.getJob(v1.id)).toMatchObject({ state: "failed", version: 2, stableVersion: 1 });
    // Nodes keep what they run: the one that got version 2 (and failed), the other version 1.
    expect(Object.values(versionsHeld(v1.id)).sort()).toEqual([1, 2]);
  });

  it("applies controls: pause holds dispatch, resume continues, cancel ends it", async () => {
    for (const id of ["n1", "n2", "n3"]) await agent(id);
    const job = await submit("web", rolling());
    await converge();
    const id = deploymentIdFor(job.id, 1);
    await deployments.requestControl(id, "pause", clock.now());
    cp.runtime.kick(id, true);
    await converge();
    expect((await deploymentOf(job)).state).toBe("paused");
    expect((await deployments.get(id))?.control).toBeUndefined();
    await advance(10_000);
    let d = await deploymentOf(job);
    expect(d.state).toBe("paused");
    expect(d.counters.updated).toBe(1);
    await deployments.requestControl(id, "resume", clock.now());
    await converge(); // the poller sees the control on the change stream
    d = await deploymentOf(job);
    expect(d.state).toBe("running");
    expect(d.counters.updated).toBe(2);
    await deployments.requestControl(id, "cancel", clock.now());
    await converge();
    d = await deploymentOf(job);
    expect(d.state).toBe("cancelled");
    expect(d.nextSteps).toEqual([]);
  });

  it("waits for a person to promote a canary, then rolls out the rest", async () => {
    for (const id of ["n1", "n2", "n3", "n4"]) await agent(id);
    const job = await submit("web", rolling({ strategy: "canary", canary_count: 1 }));
    await converge();
    await advance(5_000);
    let d = await deploymentOf(job);
    expect(d.state).toBe("awaiting_promotion");
    expect(d.nextSteps).toEqual(["promote"]);
    await deployments.requestControl(d.id, "promote", clock.now());
    await converge();
    await advance(10_000);
    d = await deploymentOf(job);
    expect(d.state).toBe("succeeded");
    expect(d.promoted).toBe(true);
  });

  it("gives nodes that start matching after the rollout the stable version", async () => {
    await agent("n1");
    const job = await submit("web", rolling());
    await converge();
    await advance(5_000);
    expect((await deploymentOf(job)).state).toBe("succeeded");
    const late = await agent("n9");
    await converge();
    expect(late.desired?.assignments.map((a) => [a.jobId, a.jobVersion])).toEqual([[job.id, 1]]);
  });

  it("ends the rollout of a job a person stops, without rolling it back", async () => {
    for (const id of ["n1", "n2", "n3"]) await agent(id);
    const job = await submit("web", rolling({ max_failed_nodes: 0 }));
    await converge();
    await advance(10_000);
    badVersions.add(2);
    await submit("web", { ...rolling({ max_failed_nodes: 0 }), description: "bad" });
    await converge();
    await jobs.updateStatus(job.id, { state: "stopped", message: "stopped by a user", now: clock.now() });
    await converge();
    await advance(25_000);
    const d = await deploymentOf(job, 2);
    expect(d.state).toBe("cancelled");
    expect(d.events.at(-1)).toMatchObject({ kind: "cancelled", details: { cause: "job_ended" } });
    expect(d.events.at(-1)?.reason).toContain("is stopped");
    expect(await jobs.getJob(job.id)).toMatchObject({ state: "stopped", version: 2 });
    expect(versionsHeld(job.id)).toEqual({ n1: 0, n2: 0, n3: 0 });
  });

  it("queues a job no node matches, fails it at queue_timeout", async () => {
    const before = cp.runtime.stats();
    versionReads = 0;
    const job = await submit("web", {
      selector: { match_labels: { site: "nowhere" } },
      timeouts: { queue_timeout: 30 },
    });
    await converge();
    const queued = await jobs.getJob(job.id);
    expect(queued).toMatchObject({ state: "queued", stableVersion: 1 });
    // Nothing to roll out: the deployment is created already ended, and the job written once.
    const d = await deploymentOf(job);
    expect(queued?.deploymentId).toBe(d.id);
    expect(d.state).toBe("succeeded");
    expect(d.events.map((e) => e.kind)).toEqual(["started", "succeeded"]);
    const after = cp.runtime.stats();
    expect(after.deploymentWrites - before.deploymentWrites).toBe(0);
    expect(after.jobWrites - before.jobWrites).toBe(1);
    // Nor is the new version read back: only a rolling-back deployment needs to know its kind.
    expect(versionReads).toBe(0);
    expect(queued?.stateMessage).toContain("no node matches the selector");
    await advance(31_000, 10_000);
    const failed = await jobs.getJob(job.id);
    expect(failed).toMatchObject({ state: "failed" });
    expect(failed?.stateMessage).toContain("queue_timeout 30s");
  });

  it("settles a job whose ended deployment a previous leader created before it died", async () => {
    const job = await submit("web", { selector: { match_labels: { site: "nowhere" } } });
    // The previous leader created the (empty, so already succeeded) deployment, then died before
    // writing the job.
    const draft = createDeployment({
      id: deploymentIdFor(job.id, 1),
      jobId: job.id,
      jobVersion: 1,
      spec: job.spec as unknown as JobSpec,
      targets: [],
      now: clock.now(),
    });
    const ended = plan({ deployment: draft, observations: {} }, clock.now()).deployment;
    await deployments.create(createWriteOf(ended, clock.now()));
    await converge();
    expect(await jobs.getJob(job.id)).toMatchObject({
      state: "queued",
      stableVersion: 1,
      deploymentId: deploymentIdFor(job.id, 1),
    });
  });

  it("supersedes a rollout when a newer version is submitted", async () => {
    for (const id of ["n1", "n2", "n3"]) await agent(id);
    const v1 = await submit("web", rolling());
    await converge();
    await advance(10_000);
    await submit("web", { ...rolling(), description: "v2" });
    await converge();
    await submit("web", { ...rolling(), description: "v3" });
    await converge();
    expect((await deploymentOf(v1, 2)).state).toBe("superseded");
    await advance(10_000);
    expect((await deploymentOf(v1, 3)).state).toBe("succeeded");
    expect(versionsHeld(v1.id)).toEqual({ n1: 3, n2: 3, n3: 3 });
  });

  it("acts only while holding the lease; a deposed leader's writes are refused", async () => {
    for (const id of ["n1", "n2"]) await agent(id);
    const b = await startControlPlane("cp-b");
    expect(cp.runtime.isLeader()).toBe(true);
    expect(b.runtime.isLeader()).toBe(false);
    const job = await submit("web", rolling());
    await converge();
    await converge(b);
    expect(b.runtime.stats()).toMatchObject({ deploymentWrites: 0, deploymentsCreated: 0 });
    expect(cp.runtime.stats().deploymentsCreated).toBe(1);

    // A's lease expires without renewal (paused); B takes it with a new epoch.
    const epochA = cp.runtime.elector.epoch;
    depData.lease = undefined;
    await b.runtime.elector.tick();
    expect(b.runtime.isLeader()).toBe(true);
    expect(b.runtime.elector.epoch).toBe(epochA + 1);
    await converge(b);
    await advance(1_000);
    // A still believes it leads (its renewal is recent) and writes with its old epoch: refused.
    const stored = await deployments.get(deploymentIdFor(job.id, 1));
    if (stored === undefined) throw new Error("no deployment");
    const late = deployments.update(
      {
        id: stored.id,
        jobId: stored.jobId,
        state: "cancelled",
        active: false,
        createdAt: stored.createdAt,
        now: clock.now(),
        record: stored.record,
        summary: {},
      },
      { expectedRevision: stored.revision, fence: { epoch: epochA } },
    );
    await expect(late).rejects.toMatchObject({ code: "failed_precondition", metadata: { fenced: true } });
    // So are its job writes (the job's state, a rollback version): the job store checks the fence too.
    const jobNow = await jobs.getJob(job.id);
    const lateJob = jobs.updateStatus(
      job.id,
      { state: "failed", message: "late", now: clock.now() },
      { expectedRevision: jobNow?.revision, fence: { epoch: epochA } },
    );
    await expect(lateJob).rejects.toMatchObject({ code: "failed_precondition", metadata: { fenced: true } });
    expect((await jobs.getJob(job.id))?.revision).toBe(jobNow?.revision);
    // A's own next tick sees the lease taken and stops acting.
    await cp.runtime.elector.tick();
    expect(cp.runtime.isLeader()).toBe(false);
    await advance(10_000);
    await converge(b);
    expect((await deploymentOf(job)).state).toBe("succeeded");
  });

  /** The leader dies (its lease lapses; it stops acting) and `cp-b` takes over. */
  async function failOver(): Promise<ControlPlaneStub> {
    const b = await startControlPlane("cp-b");
    depData.lease = undefined;
    await b.runtime.elector.tick();
    await cp.runtime.elector.tick();
    expect(b.runtime.isLeader()).toBe(true);
    expect(cp.runtime.isLeader()).toBe(false);
    cp = b;
    return b;
  }

  /**
   * v1 rolled out on three nodes; v2 submitted, its deployment created, and the job write naming
   * it lost (`lostJobWrites` still refuses it): the job names v1's deployment.
   */
  async function v2WithJobWriteLost(): Promise<{ v1: JobRecord; d2: string }> {
    for (const id of ["n1", "n2", "n3"]) await agent(id);
    const v1 = await submit("web", rolling());
    await converge();
    await advance(10_000);
    const d2 = deploymentIdFor(v1.id, 2);
    lostJobWrites = (u) => u.deploymentId === d2;
    await submit("web", { ...rolling(), description: "v2" });
    await converge();
    expect((await jobs.getJob(v1.id))?.deploymentId).toBe(deploymentIdFor(v1.id, 1));
    return { v1, d2 };
  }

  it("a leader dying between a new version's deployment and the job write naming it: the next one finishes it", async () => {
    const { v1, d2 } = await v2WithJobWriteLost();
    expect((await deploymentOf(v1, 2)).state).not.toBe("superseded");
    lostJobWrites = undefined;
    await failOver();
    await converge();
    // Never superseded by the older deployment the job still named.
    expect((await deploymentOf(v1, 2)).state).not.toBe("superseded");
    await advance(10_000);
    expect((await deploymentOf(v1, 2)).state).toBe("succeeded");
    expect(await jobs.getJob(v1.id)).toMatchObject({ deploymentId: d2, stableVersion: 2 });
    expect(versionsHeld(v1.id)).toEqual({ n1: 2, n2: 2, n3: 2 });
  });

  it("a job write that fails after a new version's deployment was created: the same leader retries it", async () => {
    const { v1, d2 } = await v2WithJobWriteLost();
    lostJobWrites = undefined; // Redis answers again
    await advance(5_000);
    expect((await jobs.getJob(v1.id))?.deploymentId).toBe(d2);
    await advance(10_000);
    expect((await deploymentOf(v1, 2)).state).toBe("succeeded");
    expect(versionsHeld(v1.id)).toEqual({ n1: 2, n2: 2, n3: 2 });
  });

  it("a leader dying between a rollback deployment and the job write naming it: the rollback goes on, named", async () => {
    for (const id of ["n1", "n2", "n3"]) await agent(id);
    const v1 = await submit("web", rolling({ max_failed_nodes: 0 }));
    await converge();
    await advance(10_000);
    badVersions.add(2);
    const rb = deploymentIdFor(v1.id, 3);
    lostJobWrites = (u) => u.deploymentId === rb;
    await submit("web", { ...rolling({ max_failed_nodes: 0 }), description: "bad" });
    await converge();
    await advance(25_000);
    // The bad version failed; the rollback version and its deployment exist; the job still
    // names the failed deployment.
    expect((await deploymentOf(v1, 2)).rollbackDeploymentId).toBe(rb);
    expect((await jobs.getJob(v1.id))?.deploymentId).toBe(deploymentIdFor(v1.id, 2));
    lostJobWrites = undefined;
    await failOver();
    await converge();
    // The rollback deployment is not superseded by the deployment it rolls back, and the job
    // names it now.
    expect((await deploymentOf(v1, 3)).state).not.toBe("superseded");
    expect((await jobs.getJob(v1.id))?.deploymentId).toBe(rb);
    await advance(10_000);
    expect((await deploymentOf(v1, 3)).state).toBe("succeeded");
    expect((await deploymentOf(v1, 2)).state).toBe("rolled_back");
    expect(versionsHeld(v1.id)).toEqual({ n1: 3, n2: 3, n3: 3 });
    expect(await jobs.getJob(v1.id)).toMatchObject({ deploymentId: rb, stableVersion: 3, state: "running" });
  });
});
