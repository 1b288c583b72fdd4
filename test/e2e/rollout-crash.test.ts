/**
 * Crashes and failover of the control plane during a rollout, with 20 real agents on a real
 * nats-server and the control plane as its own process over a real Redis:
 *
 * - `kill -9` mid-rollout, then a restart: the rollout resumes where it stopped, no node runs
 *   anything twice, the deadlines stored before the crash are unchanged;
 * - two control planes: only the lease holder acts; the leader is paused (SIGSTOP), the other
 *   takes the lease with a new epoch and finishes the rollout; when the old one resumes it stops
 *   acting, and a write with its old epoch is refused (fencing).
 *
 * Needs the built packages (`npx tsc -b`): the control plane runs from dist/.
 */
import { createRedisDeploymentStore, type RedisDeploymentStore } from "@edgeplane/store";
import { type NatsServer, type RedisServer, startNats, startRedis, waitFor } from "@edgeplane/testkit";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { pipelineConfig, RealFleet } from "./support/agents.js";
import { api, type ControlPlaneProcess, startControlPlaneProcess } from "./support/process.js";

type Json = Record<string, unknown>;
interface DeploymentJson {
  id: string;
  state: string;
  job_version: number;
  counters: { targets: number; updated: number; healthy: number; failed: number };
  events: Array<{ kind: string; nodes: string[] }>;
}
interface NodeRollout {
  state: string;
  assignedAt?: number;
  deadlineAt?: number;
}

const NODES = Array.from({ length: 20 }, (_, i) => `crash-${String(i + 1).padStart(2, "0")}`);
const PREFIX = "ep:";
let nats: NatsServer;
let redisServer: RedisServer;
let redis: Redis;
let store: RedisDeploymentStore;
let fleet: RealFleet;
const processes: ControlPlaneProcess[] = [];

beforeAll(async () => {
  [nats, redisServer] = await Promise.all([startNats({ jetstream: false }), startRedis()]);
  redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  store = createRedisDeploymentStore({ redis, prefix: PREFIX });
  fleet = new RealFleet(nats.url, { site: "crash" });
  await fleet.start(NODES);
}, 60_000);

afterEach(async (ctx) => {
  if (ctx.task.result?.state === "fail")
    for (const p of processes) process.stderr.write(`--- control plane ${p.pid} ---\n${p.output()}\n`);
  for (const p of processes.splice(0)) {
    p.signal("SIGCONT");
    p.signal("SIGKILL");
    await p.exited();
  }
});

afterAll(async () => {
  await fleet?.close();
  await redis?.quit();
  await redisServer?.stop();
  await nats?.stop();
});

async function start(): Promise<ControlPlaneProcess> {
  const p = await startControlPlaneProcess({ redisUrl: redisServer.url, natsUrl: nats.url, prefix: PREFIX });
  processes.push(p);
  return p;
}

function spec(name: string, deployment: Json, description = ""): Json {
  return {
    name,
    type: "pipeline",
    description,
    config: pipelineConfig(false, name),
    selector: { match_labels: { site: "crash" } },
    deployment: { strategy: "rolling", ...deployment },
  };
}

async function submit(cp: ControlPlaneProcess, body: Json): Promise<string> {
  const res = await api(cp.httpUrl, "POST", "/api/v1/jobs", body);
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
  return (res.body.job as { id: string }).id;
}

async function deploymentOf(
  cp: ControlPlaneProcess,
  jobId: string,
  version: number,
): Promise<DeploymentJson> {
  return waitFor(
    async () => {
      const res = await api(cp.httpUrl, "GET", `/api/v1/deployments?job_id=${jobId}`);
      return (res.body.items as DeploymentJson[] | undefined)?.find((d) => d.job_version === version);
    },
    { timeoutMs: 15_000, message: `the deployment of version ${version}` },
  );
}

async function get(cp: ControlPlaneProcess, id: string): Promise<DeploymentJson> {
  return (await api(cp.httpUrl, "GET", `/api/v1/deployments/${id}`)).body.deployment as DeploymentJson;
}

async function lease(): Promise<{ epoch: number; pid: number }> {
  const value = (await redis.get(`${PREFIX}leader`)) ?? "0|";
  const [epoch, holder = ""] = value.split("|");
  return { epoch: Number(epoch), pid: Number(holder.split("-").at(-2)) };
}

async function allRegistered(cp: ControlPlaneProcess): Promise<void> {
  await waitFor(
    async () => {
      const res = await api(cp.httpUrl, "GET", "/api/v1/nodes?selector=site%3Dcrash&states=ready&limit=100");
      return (res.body.items as unknown[] | undefined)?.length === NODES.length;
    },
    { timeoutMs: 30_000, message: "every agent to be ready" },
  );
}

/** Every node appears in exactly one `dispatched` event. */
function dispatchedOnce(d: DeploymentJson): void {
  const nodes = d.events.filter((e) => e.kind === "dispatched").flatMap((e) => e.nodes);
  expect(nodes.sort()).toEqual([...NODES].sort());
  expect(d.events.filter((e) => e.kind === "started")).toHaveLength(1);
}

describe("control plane crashes and failover during a rollout", () => {
  it("kill -9 mid-rollout and a restart: resumes where it stopped, nothing runs twice, deadlines unchanged", async () => {
    const cp1 = await start();
    await waitFor(async () => (await lease()).pid === cp1.pid, { message: "the control plane to lead" });
    await allRegistered(cp1);
    const jobId = await submit(cp1, spec("web", { strategy: "immediate" }));
    const d1 = await deploymentOf(cp1, jobId, 1);
    await waitFor(async () => (await get(cp1, d1.id)).state === "succeeded", {
      timeoutMs: 20_000,
      message: "v1 to be deployed",
    });
    await waitFor(() => fleet.allRun(jobId, 1), { timeoutMs: 10_000, message: "every agent to run v1" });

    await submit(
      cp1,
      spec("web", { max_parallel: 4, health_check: { deadline: "20s", min_healthy_time: "1s" } }, "v2"),
    );
    const d2 = await deploymentOf(cp1, jobId, 2);
    await waitFor(
      async () => {
        const d = await get(cp1, d2.id);
        return d.state === "running" && d.counters.healthy >= 4 && d.counters.healthy <= 12;
      },
      { timeoutMs: 30_000, intervalMs: 20, message: "the rollout to be half-way" },
    );
    const before = (await store.get(d2.id))?.nodes as unknown as Record<string, NodeRollout>;
    cp1.signal("SIGKILL");
    await cp1.exited();
    const assignedBefore = Object.entries(before).filter(([, n]) => n.assignedAt !== undefined);
    expect(assignedBefore.length).toBeGreaterThanOrEqual(8);
    expect(assignedBefore.length).toBeLessThan(20);

    const cp2 = await start();
    await waitFor(async () => (await lease()).pid === cp2.pid, {
      timeoutMs: 15_000,
      message: "the restart to lead",
    });
    const done = await waitFor(
      async () => {
        const d = await get(cp2, d2.id);
        return d.state === "succeeded" ? d : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, message: "the rollout to finish after the restart" },
    );
    expect(done.counters).toMatchObject({ targets: 20, healthy: 20, failed: 0 });
    dispatchedOnce(done);
    const after = (await store.get(d2.id))?.nodes as unknown as Record<string, NodeRollout>;
    for (const [id, n] of assignedBefore) {
      expect(after[id]?.assignedAt, id).toBe(n.assignedAt);
      expect(after[id]?.deadlineAt, id).toBe(n.deadlineAt);
    }
    await waitFor(() => fleet.allRun(jobId, 2), { timeoutMs: 10_000, message: "every agent to run v2" });
    // No execution was started twice (v1 and v2 on every node, once each).
    const starts = [...fleet.starts.values()];
    expect(starts.length).toBeGreaterThanOrEqual(40);
    expect(starts.every((n) => n === 1)).toBe(true);
    expect((await lease()).epoch).toBe(2);
  });

  it("two control planes: only the lease holder acts; a paused leader is deposed and its writes refused", async () => {
    const a = await start();
    const b = await start();
    const first = await waitFor(
      async () => {
        const l = await lease();
        return l.pid === a.pid || l.pid === b.pid ? l : undefined;
      },
      { message: "one of them to lead" },
    );
    const leader = first.pid === a.pid ? a : b;
    const follower = leader === a ? b : a;
    await allRegistered(follower);
    // The follower serves the API; the leader acts.
    const jobId = await submit(follower, spec("svc", { strategy: "immediate" }));
    const d1 = await deploymentOf(follower, jobId, 1);
    await waitFor(async () => (await get(follower, d1.id)).state === "succeeded", {
      timeoutMs: 20_000,
      message: "v1 to be deployed",
    });
    await submit(
      follower,
      spec("svc", { max_parallel: 2, health_check: { deadline: "20s", min_healthy_time: "1s" } }, "v2"),
    );
    const d2 = await deploymentOf(follower, jobId, 2);
    await waitFor(async () => (await get(follower, d2.id)).counters.healthy >= 2, {
      timeoutMs: 30_000,
      intervalMs: 20,
      message: "the first wave to be done",
    });
    expect(leader.output()).toContain("deployment created");
    expect(follower.output()).not.toContain("deployment created");
    expect(follower.output()).not.toContain("became the leader");

    leader.signal("SIGSTOP");
    const taken = await waitFor(
      async () => {
        const l = await lease();
        return l.pid === follower.pid ? l : undefined;
      },
      { timeoutMs: 15_000, message: "the other control plane to take the lease" },
    );
    expect(taken.epoch).toBe(first.epoch + 1);
    const progressed = (await get(follower, d2.id)).counters.updated;
    await waitFor(async () => (await get(follower, d2.id)).counters.updated > progressed, {
      timeoutMs: 20_000,
      message: "the new leader to continue the rollout",
    });

    leader.signal("SIGCONT");
    await waitFor(() => leader.output().includes("stopped acting as the leader"), {
      timeoutMs: 10_000,
      message: "the resumed old leader to stop acting",
    });
    // Its late writes carry its old epoch: the store refuses them.
    const stored = await store.get(d2.id);
    if (stored === undefined) throw new Error("no deployment");
    const late = store.update(
      {
        id: stored.id,
        jobId: stored.jobId,
        state: "cancelled",
        active: false,
        createdAt: stored.createdAt,
        now: Date.now(),
        record: stored.record,
        summary: {},
      },
      { expectedRevision: stored.revision, fence: { epoch: first.epoch } },
    );
    await expect(late).rejects.toMatchObject({ code: "failed_precondition", metadata: { fenced: true } });

    const done = await waitFor(
      async () => {
        const d = await get(follower, d2.id);
        return d.state === "succeeded" ? d : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, message: "the rollout to finish under the new leader" },
    );
    dispatchedOnce(done);
    expect((await lease()).pid).toBe(follower.pid);
    await waitFor(() => fleet.allRun(jobId, 2), { timeoutMs: 10_000, message: "every agent to run v2" });
    expect([...fleet.starts.values()].every((n) => n === 1)).toBe(true);
  });
});
