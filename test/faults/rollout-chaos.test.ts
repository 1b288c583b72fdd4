/**
 * Chaos soak (`npm run test:faults`): rolling (and auto-promoting canary) deployments across 12
 * real agents while, in each round, one process is killed mid-rollout: the control plane
 * (`kill -9`, then a new one), redis-server (`kill -9`, then a restart on its AOF), nats-server
 * (`kill -9`, then a restart), an agent (stopped with no grace, then restarted from its data dir),
 * all three servers at once (a host's reboot, as far as the control plane can tell), or
 * redis-server or nats-server hung (SIGSTOP) for 3 s, longer than the leader's lease. After every
 * round:
 *
 * - the round's version is stored (every acknowledged submit is readable, the version history
 *   complete), its deployment ended `succeeded`, and every agent runs it;
 * - nothing ran twice: each node got exactly one execution of each version, and an execution was
 *   started again only on an agent that was itself restarted (it resumes what it ran);
 * - every node appears in exactly one `dispatched` event of the deployment.
 *
 * A second test submits job versions from four writers through the API while the control plane
 * and redis-server are killed again and again (also the control plane while Redis is paused, so
 * that scripts it sent run after it died and their retries meet them applied): each writer
 * retries a failed submit with the same `Idempotency-Key` (and `expected_version`, so a retry of
 * a submit that was applied but not answered only succeeds through its key), and every
 * acknowledged submit must be stored exactly once (no version lost, none made twice by a retry).
 *
 * A third rolls out bad versions (a mapping that fails every message) and kills the control
 * plane as the deployment halts, or Redis while it runs: each is rolled back exactly once, to a
 * version carrying the good spec.
 *
 * A fourth submits a newer version while a rollout is half-way and kills the control plane right
 * after: the half-way deployment ends superseded and the newer one succeeds, once.
 *
 * A fifth runs two control planes and kills the leader mid-rollout, round after round (a new
 * replica joins each time): the other takes the lease and finishes each rollout.
 *
 * A sixth stops or deletes a job mid-rollout and kills the control plane right after: the
 * rollout ends cancelled, every agent stops the job, and nothing starts it again.
 *
 * A seventh sends the controls a person uses (pause, resume, promote, a manual rollback), each
 * followed by a kill of the control plane: each applies once (one event, one rollback version).
 *
 * An eighth rolls out three jobs on the same nodes at once while processes are killed: each
 * ends on its own new version, every execution started once.
 *
 * `CHAOS_ROUNDS` (default 14) sets the first test's rounds; the faults cycle in the order above.
 * Needs the built packages (`npx tsc -b`): the control plane runs from dist/.
 */
import { deploymentIdFor } from "@edgeplane/orchestrator";
import { type NatsServer, type RedisServer, startNats, startRedis, waitFor } from "@edgeplane/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { pipelineConfig, RealFleet } from "../e2e/support/agents.js";
import { api, type ControlPlaneProcess, startControlPlaneProcess } from "../e2e/support/process.js";

type Json = Record<string, unknown>;
interface DeploymentJson {
  id: string;
  state: string;
  job_version: number;
  message?: string;
  counters: { targets: number; updated: number; healthy: number; failed: number };
  events: Array<{ kind: string; nodes: string[]; reason: string }>;
}

const NODES = Array.from({ length: 12 }, (_, i) => `chaos-${String(i + 1).padStart(2, "0")}`);
const ROUNDS = Number(process.env.CHAOS_ROUNDS ?? 14);
const FAULTS = [
  "control-plane",
  "redis",
  "nats",
  "agent",
  "everything",
  "redis-pause",
  "nats-pause",
] as const;
type Fault = (typeof FAULTS)[number];
const PREFIX = "ep:";

let nats: NatsServer;
let redis: RedisServer;
let fleet: RealFleet;
let cp: ControlPlaneProcess | undefined;
const dead: ControlPlaneProcess[] = [];

beforeAll(async () => {
  [nats, redis] = await Promise.all([startNats({ jetstream: false }), startRedis()]);
  fleet = new RealFleet(nats.url, { site: "chaos" });
  await fleet.start(NODES);
}, 60_000);

afterEach(async (ctx) => {
  if (ctx.task.result?.state === "fail") {
    for (const p of [...dead, ...(cp ? [cp] : [])])
      process.stderr.write(`--- control plane ${p.pid} ---\n${p.output().slice(-20_000)}\n`);
    process.stderr.write(`--- redis ---\n${redis.logs(30)}\n--- nats ---\n${nats.logs(30)}\n`);
  }
});

afterAll(async () => {
  if (cp !== undefined) {
    cp.signal("SIGKILL");
    await cp.exited();
  }
  await fleet?.close();
  await redis?.stop();
  await nats?.stop();
});

async function startCp(): Promise<ControlPlaneProcess> {
  return startControlPlaneProcess({ redisUrl: redis.url, natsUrl: nats.url, prefix: PREFIX });
}

function current(): ControlPlaneProcess {
  if (cp === undefined) throw new Error("no control plane");
  return cp;
}

function spec(version: number): Json {
  return {
    name: "soak",
    type: "pipeline",
    description: `version ${version}`,
    config: pipelineConfig(false, `v${version}`),
    selector: { match_labels: { site: "chaos" } },
    // Every third version is a canary that promotes itself.
    deployment: {
      ...(version % 3 === 0
        ? { strategy: "canary", canary_count: 2, auto_promote: true }
        : { strategy: "rolling" }),
      max_parallel: 3,
      health_check: { deadline: "90s", min_healthy_time: "1s" },
    },
  };
}

/** GET through the current control plane; undefined while it cannot answer (a fault is on). */
async function tryGet(path: string): Promise<Json | undefined> {
  try {
    const res = await api(current().httpUrl, "GET", path);
    return res.status === 200 ? res.body : undefined;
  } catch {
    return undefined;
  }
}

async function deploymentOf(jobId: string, version: number): Promise<DeploymentJson> {
  return waitFor(
    async () =>
      ((await tryGet(`/api/v1/deployments?job_id=${jobId}`))?.items as DeploymentJson[] | undefined)?.find(
        (d) => d.job_version === version,
      ),
    { timeoutMs: 30_000, message: `the deployment of version ${version}` },
  );
}

async function deployment(id: string): Promise<DeploymentJson | undefined> {
  return (await tryGet(`/api/v1/deployments/${id}`))?.deployment as DeploymentJson | undefined;
}

/** Waits until deployment `id` is in one of `states`; resolves it. */
async function untilState(
  id: string,
  states: readonly string[],
  message: string,
  timeoutMs = 90_000,
): Promise<DeploymentJson> {
  return waitFor(
    async () => {
      const now = await deployment(id);
      return now !== undefined && states.includes(now.state) ? now : undefined;
    },
    { timeoutMs, intervalMs: 200, message },
  );
}

/** Waits until deployment `id` has updated at least `nodes` nodes (a rollout under way). */
async function underWay(id: string, nodes: number, message: string): Promise<DeploymentJson> {
  return waitFor(
    async () => {
      const now = await deployment(id);
      return now !== undefined && now.counters.updated >= nodes ? now : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 20, message },
  );
}

/** No agent was restarted: every execution of `jobId` started once, one per node and version. */
function eachRanOnce(jobId: string): void {
  const runs = fleet.runs.filter((r) => r.jobId === jobId);
  expect(runs.every((r) => r.attempt === 1)).toBe(true);
  const keys = runs.map((r) => `${r.node}@${r.version}`);
  expect(new Set(keys).size).toBe(keys.length);
}

async function killControlPlane(): Promise<void> {
  const old = current();
  old.signal("SIGKILL");
  await old.exited();
  dead.push(old);
}

/** `kill -9` of a server, a pause, and a restart on the same port and data dir (a new pid). */
async function bounce(server: NatsServer | RedisServer): Promise<void> {
  const pid = server.pid;
  await server.kill("SIGKILL");
  await new Promise((r) => setTimeout(r, 700));
  await server.restart();
  expect(server.pid).not.toBe(pid);
}

/** Kills one process mid-rollout and brings it back. Returns the agent restarted, if any. */
async function inject(fault: Fault, round: number): Promise<string | undefined> {
  switch (fault) {
    case "control-plane":
      await killControlPlane();
      cp = await startCp();
      return undefined;
    case "redis":
      await bounce(redis);
      return undefined;
    case "nats":
      await bounce(nats);
      return undefined;
    case "everything":
      await killControlPlane();
      await Promise.all([bounce(redis), bounce(nats)]);
      cp = await startCp();
      return undefined;
    case "redis-pause":
    case "nats-pause": {
      // Hung, not dead (SIGSTOP), for longer than the leader's lease (2 s): the leader loses it.
      const server = fault === "redis-pause" ? redis : nats;
      await server.pause();
      await new Promise((r) => setTimeout(r, 3000));
      await server.resume();
      return undefined;
    }
    case "agent": {
      const id = NODES[(round * 5) % NODES.length] as string;
      await fleet.stopOne(id);
      await new Promise((r) => setTimeout(r, 1000));
      await fleet.startOne(id);
      return id;
    }
  }
}

/** A control plane (started unless one runs) that knows every agent as ready. */
async function ready(): Promise<void> {
  cp ??= await startCp();
  await waitFor(
    async () =>
      ((await tryGet("/api/v1/nodes?selector=site%3Dchaos&states=ready&limit=100"))?.items as unknown[])
        ?.length === NODES.length,
    { timeoutMs: 30_000, message: "every agent to be ready" },
  );
}

describe("chaos: kill -9 of any process during rollouts", () => {
  it(`${ROUNDS} rollouts, each with a process killed mid-way: nothing lost, nothing run twice`, async () => {
    await ready();
    let jobId = "";
    const restarted = new Set<string>();
    for (let round = 0; round < ROUNDS; round++) {
      const version = round + 1;
      const fault = FAULTS[round % FAULTS.length] as Fault;
      const res = await api(current().httpUrl, "POST", "/api/v1/jobs", spec(version));
      expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
      jobId = (res.body.job as { id: string }).id;
      expect((res.body.job as { status: { version: number } }).status.version).toBe(version);

      // Mid-rollout: the first wave is out, some nodes are still to come.
      const d = await deploymentOf(jobId, version);
      if (version > 1) {
        const mid = await waitFor(
          async () => {
            const now = await deployment(d.id);
            return now !== undefined && now.counters.updated >= 3 && now.state === "running"
              ? now
              : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 20, message: `round ${round}: the first wave of v${version}` },
        );
        // The fault lands mid-way: nodes are still to be updated.
        expect(mid.counters.healthy, `round ${round}: healthy when the fault hit`).toBeLessThan(NODES.length);
      }
      const agent = await inject(fault, round);
      if (agent !== undefined) restarted.add(agent);

      const done = await untilState(
        d.id,
        ["succeeded", "failed"],
        `round ${round} (${fault}): v${version} to end`,
        120_000,
      );
      expect(done.state, `round ${round} (${fault}): ${done.message ?? ""}`).toBe("succeeded");
      expect(done.counters).toMatchObject({ targets: NODES.length, healthy: NODES.length, failed: 0 });
      const dispatched = done.events.filter((e) => e.kind === "dispatched").flatMap((e) => e.nodes);
      expect(dispatched.sort(), `round ${round}: each node dispatched once`).toEqual([...NODES].sort());
      await waitFor(() => fleet.allRun(jobId, version), {
        timeoutMs: 30_000,
        message: `round ${round}: every agent to run v${version}`,
      });

      // Every acknowledged version is stored, in order.
      const job = (await tryGet(`/api/v1/jobs/${jobId}`))?.job as { status: { version: number } } | undefined;
      expect(job?.status.version).toBe(version);
      const versions = (await tryGet(`/api/v1/jobs/${jobId}/versions?limit=100`))?.items as
        | Array<{ version: number }>
        | undefined;
      expect(versions?.map((v) => v.version).sort((a, b) => a - b)).toEqual(
        Array.from({ length: version }, (_, i) => i + 1),
      );

      // Nothing ran twice: one execution per node and version; an execution started again only
      // on an agent that was restarted.
      const byNodeVersion = new Map<string, Set<string>>();
      for (const r of fleet.runs.filter((x) => x.jobId === jobId)) {
        const key = `${r.node}@${r.version}`;
        const ids = byNodeVersion.get(key) ?? new Set<string>();
        ids.add(r.executionId);
        byNodeVersion.set(key, ids);
        if (r.attempt > 1)
          expect(restarted.has(r.node), `${r.node} started ${r.executionId} again`).toBe(true);
      }
      for (const [key, ids] of byNodeVersion) expect(ids.size, `${key}: executions ${[...ids]}`).toBe(1);
      expect(byNodeVersion.size).toBe(NODES.length * version);
    }
  });

  it("submits retried through kills of the control plane and Redis: each acknowledged once, none lost", async () => {
    await ready();
    const writers = ["w1", "w2", "w3", "w4"];
    let chaos = true;
    /** Per writer: the version each acknowledged submit answered, in order. */
    const acked = new Map<string, number[]>(writers.map((w) => [w, []]));
    let retries = 0;

    /** POST until acknowledged: a refused connection, a timeout or a 5xx is retried, same key. */
    async function submit(name: string, k: number): Promise<number> {
      // No node matches: this test is about the API's writes, not about rollouts.
      const body = { ...spec(k), name, selector: { match_labels: { site: "nowhere" } } };
      const deadline = Date.now() + 120_000;
      for (;;) {
        try {
          // Check-and-set on the version before: a retry of a submit that was applied but not
          // answered fails with 409 unless its Idempotency-Key answers the first outcome.
          const cas = k > 1 ? `?expected_version=${k - 1}` : "";
          const res = await fetch(`${current().httpUrl}/api/v1/jobs${cas}`, {
            method: "POST",
            headers: { "content-type": "application/json", "idempotency-key": `${name}-${k}` },
            body: JSON.stringify(body),
            signal: AbortSignal.timeout(5_000),
          });
          const json = (await res.json()) as { job?: { status: { version: number } } };
          if (res.status < 300 && json.job !== undefined) return json.job.status.version;
          if (res.status < 500)
            throw new Error(`submit ${name} #${k}: ${res.status} ${JSON.stringify(json)}`);
        } catch (err) {
          if (err instanceof Error && err.message.startsWith(`submit ${name}`)) throw err;
        }
        retries++;
        if (Date.now() > deadline) throw new Error(`submit ${name} #${k} was never acknowledged`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    const writing = writers.map(async (name) => {
      for (let k = 1; chaos || k <= 5; k++) {
        const version = await submit(name, k);
        acked.get(name)?.push(version);
        if (!chaos && k >= 5) break;
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    for (let i = 0; i < 9; i++) {
      await new Promise((r) => setTimeout(r, 800));
      if (i % 3 === 0) {
        await killControlPlane();
        cp = await startCp();
      } else if (i % 3 === 1) await bounce(redis);
      else {
        // The control plane dies with its scripts sent but not yet run: Redis (paused) runs them
        // when it resumes, after their caller is gone, so the retries find them applied.
        await redis.pause();
        await new Promise((r) => setTimeout(r, 300));
        await killControlPlane();
        await redis.resume();
        cp = await startCp();
      }
    }
    chaos = false;
    await Promise.all(writing);
    expect(retries, "the faults made some submits fail and be retried").toBeGreaterThan(0);

    for (const name of writers) {
      const versions = acked.get(name) ?? [];
      // Each acknowledged submit made the next version: 1, 2, 3, ... with no gap and no repeat.
      expect(versions, name).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));
      const job = await waitFor(
        async () =>
          (
            (await tryGet(`/api/v1/jobs?namespace=default&limit=100`))?.items as
              | Array<{ id: string; spec: { name: string }; status: { version: number } }>
              | undefined
          )?.find((j) => j.spec.name === name),
        { message: `job ${name}` },
      );
      expect(job.status.version, name).toBe(versions.length);
      const stored = (await tryGet(`/api/v1/jobs/${job.id}/versions?limit=1000`))?.items as Array<{
        version: number;
        spec: { description: string };
      }>;
      // Version k carries submit k's spec: a retry never made a version of its own. (The store
      // keeps a job's last 50 versions.)
      expect(
        stored.map((v) => [v.version, v.spec.description]).sort((a, b) => Number(a[0]) - Number(b[0])),
        name,
      ).toEqual(versions.slice(-50).map((v) => [v, `version ${v}`]));
    }
  });

  it("a bad version rolls back exactly once while the control plane or Redis is killed mid-way", async () => {
    await ready();
    const base = {
      name: "rb",
      type: "pipeline",
      selector: { match_labels: { site: "chaos" } },
    };
    const good = { ...base, description: "good", config: pipelineConfig(false, "good") };
    const first = await api(current().httpUrl, "POST", "/api/v1/jobs", {
      ...good,
      deployment: { strategy: "immediate" },
    });
    expect(first.status, JSON.stringify(first.body)).toBeLessThan(300);
    const jobId = (first.body.job as { id: string }).id;
    await untilState((await deploymentOf(jobId, 1)).id, ["succeeded"], "v1 to succeed");
    let version = 1;
    for (let round = 0; round < 4; round++) {
      const bad = {
        ...base,
        description: `bad ${round}`,
        config: pipelineConfig(true, `bad-${round}`),
        deployment: {
          strategy: "rolling",
          max_parallel: 3,
          max_failed_nodes: 0,
          // A node of the bad version fails when its deadline passes without it being healthy.
          health_check: { deadline: "4s", min_healthy_time: "1s" },
        },
      };
      const res = await api(current().httpUrl, "POST", "/api/v1/jobs", bad);
      expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
      const badVersion = (res.body.job as { status: { version: number } }).status.version;
      expect(badVersion).toBe(version + 1);
      const d = await deploymentOf(jobId, badVersion);
      // Kill when the deployment halts (the rollback is being written), or while it runs.
      await waitFor(
        async () => {
          const now = await deployment(d.id);
          return round % 2 === 0
            ? now?.state === "failed" || now?.state === "rolling_back"
            : now !== undefined && now.counters.updated >= 1;
        },
        { timeoutMs: 30_000, intervalMs: 10, message: `round ${round}: the bad version to be out` },
      );
      if (round % 2 === 0) {
        await killControlPlane();
        cp = await startCp();
      } else await bounce(redis);

      await untilState(d.id, ["rolled_back"], `round ${round}: v${badVersion} to be rolled back`);
      // Exactly one rollback version, carrying the good spec; nothing after it.
      const versions = (await tryGet(`/api/v1/jobs/${jobId}/versions?limit=100`))?.items as Array<{
        version: number;
        kind: string;
        rollback_to_version?: number;
        spec: { description: string };
      }>;
      const after = versions.filter((v) => v.version > badVersion);
      expect(
        after.map((v) => [v.kind, v.spec.description]),
        `round ${round}`,
      ).toEqual([["rollback", "good"]]);
      version = badVersion + 1;
      await waitFor(() => fleet.allRun(jobId, version), {
        timeoutMs: 30_000,
        message: `round ${round}: every agent to run the rollback version ${version}`,
      });
    }
    // One execution per node and version, none started twice (no agent was restarted here).
    eachRanOnce(jobId);
  });

  it("a newer version submitted mid-rollout, the control plane killed right after: the newer one takes over", async () => {
    await ready();
    const body = (version: number, tag: string) => ({
      name: "supersede",
      type: "pipeline",
      description: `${tag} ${version}`,
      config: pipelineConfig(false, `${tag}-${version}`),
      selector: { match_labels: { site: "chaos" } },
      deployment: {
        strategy: "rolling",
        max_parallel: 2,
        health_check: { deadline: "60s", min_healthy_time: "2s" },
      },
    });
    const post = async (version: number) => {
      const res = await api(current().httpUrl, "POST", "/api/v1/jobs", body(version, "s"));
      expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
      return res.body.job as { id: string; status: { version: number } };
    };
    const first = await post(1);
    const jobId = first.id;
    await untilState((await deploymentOf(jobId, 1)).id, ["succeeded"], "v1 to succeed");
    let version = 1;
    for (let round = 0; round < 4; round++) {
      const mid = (await post(version + 1)).status.version;
      const d = await deploymentOf(jobId, mid);
      await underWay(d.id, 2, `round ${round}: v${mid} under way`);
      const newer = (await post(mid + 1)).status.version;
      // Killed with the newer version stored and its deployment being started (or not yet).
      await new Promise((r) => setTimeout(r, (round % 2) * 150));
      await killControlPlane();
      cp = await startCp();
      const done = await untilState(
        deploymentIdFor(jobId, newer),
        ["succeeded"],
        `round ${round}: v${newer} to succeed`,
      );
      expect(done.counters).toMatchObject({ targets: NODES.length, healthy: NODES.length });
      expect((await deployment(d.id))?.state, `round ${round}: v${mid}`).toBe("superseded");
      const job = (await tryGet(`/api/v1/jobs/${jobId}`))?.job as {
        status: { version: number; deployment_id: string; stable_version: number };
      };
      expect(job.status).toMatchObject({ version: newer, deployment_id: done.id, stable_version: newer });
      await waitFor(() => fleet.allRun(jobId, newer), {
        timeoutMs: 30_000,
        message: `round ${round}: every agent to run v${newer}`,
      });
      version = newer;
    }
    eachRanOnce(jobId);
  });

  it("two control planes: the leader killed mid-rollout again and again, the other takes over", async () => {
    await ready();
    const pair = [current(), await startCp()];
    /** The pid in the leader lease (`<epoch>|<host>-<pid>-<random>`). */
    const leaderPid = async (): Promise<number> => {
      const { Redis } = await import("ioredis");
      const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await client.connect();
        const holder = ((await client.get(`${PREFIX}leader`)) ?? "0|").split("|")[1] ?? "";
        return Number(holder.split("-").at(-2));
      } finally {
        client.disconnect();
      }
    };
    const body = (version: number) => ({
      ...spec(version),
      name: "ha",
      deployment: {
        strategy: "rolling",
        max_parallel: 3,
        health_check: { deadline: "90s", min_healthy_time: "1s" },
      },
    });
    let jobId = "";
    for (let round = 0; round < 4; round++) {
      const version = round + 1;
      // Submit through the follower: any replica serves the API.
      const leader = await waitFor(
        async () => {
          const pid = await leaderPid();
          return pair.find((p) => p.pid === pid);
        },
        { timeoutMs: 15_000, message: `round ${round}: a leader among the pair` },
      );
      const follower = pair.find((p) => p !== leader) as ControlPlaneProcess;
      const res = await api(follower.httpUrl, "POST", "/api/v1/jobs", body(version));
      expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
      jobId = (res.body.job as { id: string }).id;
      cp = follower;
      const d = await deploymentOf(jobId, version);
      if (version > 1) await underWay(d.id, 3, `round ${round}: the first wave of v${version}`);
      // The leader dies; a new replica joins, so there are two again.
      leader.signal("SIGKILL");
      await leader.exited();
      dead.push(leader);
      pair.splice(pair.indexOf(leader), 1, await startCp());
      const done = await untilState(d.id, ["succeeded"], `round ${round}: v${version} to succeed`);
      const dispatched = done.events.filter((e) => e.kind === "dispatched").flatMap((e) => e.nodes);
      expect(dispatched.sort(), `round ${round}: each node dispatched once`).toEqual([...NODES].sort());
      await waitFor(() => fleet.allRun(jobId, version), {
        timeoutMs: 30_000,
        message: `round ${round}: every agent to run v${version}`,
      });
    }
    eachRanOnce(jobId);
    // Leave one control plane for the tests after this one.
    const extra = pair.find((p) => p !== cp);
    if (extra !== undefined) {
      extra.signal("SIGKILL");
      await extra.exited();
      dead.push(extra);
    }
  });

  it("a job stopped or deleted mid-rollout, the control plane killed right after: it ends, nothing keeps running", async () => {
    await ready();
    for (let round = 0; round < 4; round++) {
      const name = `ending-${round}`;
      const v1 = await api(current().httpUrl, "POST", "/api/v1/jobs", { ...spec(1), name });
      expect(v1.status, JSON.stringify(v1.body)).toBeLessThan(300);
      const jobId = (v1.body.job as { id: string }).id;
      await untilState((await deploymentOf(jobId, 1)).id, ["succeeded"], `round ${round}: v1 to succeed`);
      await api(current().httpUrl, "POST", "/api/v1/jobs", { ...spec(2), name });
      const d2 = await deploymentOf(jobId, 2);
      await underWay(d2.id, 3, `round ${round}: v2 under way`);
      const ending =
        round % 2 === 0
          ? await api(current().httpUrl, "POST", `/api/v1/jobs/${jobId}/stop`, {})
          : await api(current().httpUrl, "DELETE", `/api/v1/jobs/${jobId}`);
      expect(ending.status, JSON.stringify(ending.body)).toBeLessThan(300);
      await new Promise((r) => setTimeout(r, (round % 2) * 100));
      await killControlPlane();
      cp = await startCp();
      const ended = await untilState(
        d2.id,
        ["cancelled", "superseded"],
        `round ${round}: the rollout to end`,
      );
      expect(ended.state).toBe("cancelled");
      const job = (await tryGet(`/api/v1/jobs/${jobId}`))?.job as {
        status: { state: { state_type: string } };
      };
      expect(job.status.state.state_type).toBe(round % 2 === 0 ? "stopped" : "deleted");
      // Every agent stops running it, and it is not started again anywhere.
      await waitFor(() => Object.values(fleet.versions(jobId)).every((v) => v === 0), {
        timeoutMs: 30_000,
        message: `round ${round}: no agent to run ${name}`,
      });
      const started = fleet.runs.filter((r) => r.jobId === jobId).length;
      await new Promise((r) => setTimeout(r, 1500));
      expect(fleet.runs.filter((r) => r.jobId === jobId).length, `round ${round}: started again`).toBe(
        started,
      );
    }
  });

  it("controls a person sends (pause, resume, promote, manual rollback), each followed by a kill: each applies once", async () => {
    await ready();
    const control = async (id: string, what: string) => {
      const res = await waitFor(
        async () => {
          try {
            const r = await api(current().httpUrl, "POST", `/api/v1/deployments/${id}/${what}`, {});
            return r.status < 500 ? r : undefined;
          } catch {
            return undefined;
          }
        },
        { timeoutMs: 30_000, message: `${what} to be answered` },
      );
      expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBeLessThan(300);
    };
    const crash = async () => {
      await killControlPlane();
      cp = await startCp();
    };
    const rollout = {
      max_parallel: 2,
      health_check: { deadline: "90s", min_healthy_time: "1s" },
    };
    const post = async (version: number, deployment: Json) => {
      const res = await api(current().httpUrl, "POST", "/api/v1/jobs", {
        ...spec(version),
        name: "controls",
        deployment,
      });
      expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
      return (res.body.job as { id: string }).id;
    };
    const jobId = await post(1, { strategy: "immediate" });
    await untilState((await deploymentOf(jobId, 1)).id, ["succeeded"], "v1 to succeed");

    // Pause, a kill: still paused, nothing more dispatched; resume, a kill: it finishes.
    await post(2, { strategy: "rolling", ...rollout });
    const d2 = await deploymentOf(jobId, 2);
    await underWay(d2.id, 2, "v2 under way");
    await control(d2.id, "pause");
    await crash();
    const paused = await untilState(d2.id, ["paused"], "v2 paused", 30_000);
    await new Promise((r) => setTimeout(r, 3000));
    expect((await deployment(d2.id))?.counters.updated, "no dispatch while paused").toBe(
      paused.counters.updated,
    );
    await control(d2.id, "resume");
    await crash();
    const done2 = await untilState(d2.id, ["succeeded"], "v2 to succeed after resume");
    for (const kind of ["paused", "resumed"])
      expect(
        done2.events.filter((e) => e.kind === kind),
        kind,
      ).toHaveLength(1);

    // A canary waits for a person; promote, a kill: promoted once, then it finishes.
    await post(3, { strategy: "canary", canary_count: 2, ...rollout });
    const d3 = await deploymentOf(jobId, 3);
    await untilState(d3.id, ["awaiting_promotion"], "v3 awaiting promotion");
    await control(d3.id, "promote");
    await crash();
    const done3 = await untilState(d3.id, ["succeeded"], "v3 to succeed after promote");
    expect(done3.events.filter((e) => e.kind === "promoted")).toHaveLength(1);

    // A manual rollback of a healthy rollout, a kill: one rollback version, to v3's spec.
    await post(4, { strategy: "rolling", ...rollout });
    const d4 = await deploymentOf(jobId, 4);
    await underWay(d4.id, 2, "v4 under way");
    await control(d4.id, "rollback");
    await crash();
    await untilState(d4.id, ["rolled_back"], "v4 to be rolled back");
    const versions = (await tryGet(`/api/v1/jobs/${jobId}/versions?limit=100`))?.items as Array<{
      version: number;
      kind: string;
      spec: { description: string };
    }>;
    expect(versions.filter((v) => v.version > 4).map((v) => [v.version, v.kind, v.spec.description])).toEqual(
      [[5, "rollback", "version 3"]],
    );
    await waitFor(() => fleet.allRun(jobId, 5), { timeoutMs: 30_000, message: "every agent to run v5" });
    eachRanOnce(jobId);
  });

  it("three jobs rolling out at once on the same nodes while processes are killed: each ends on its version", async () => {
    await ready();
    const names = ["multi-a", "multi-b", "multi-c"];
    const submitAll = async (version: number) => {
      const ids: string[] = [];
      for (const name of names) {
        const res = await api(current().httpUrl, "POST", "/api/v1/jobs", { ...spec(version), name });
        expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
        ids.push((res.body.job as { id: string }).id);
      }
      return ids;
    };
    let ids = await submitAll(1);
    for (const id of ids) await untilState((await deploymentOf(id, 1)).id, ["succeeded"], `${id}: v1`);
    const faults: Fault[] = ["control-plane", "redis", "everything", "nats"];
    for (let round = 0; round < faults.length; round++) {
      const version = round + 2;
      ids = await submitAll(version);
      const deployments = await Promise.all(ids.map((id) => deploymentOf(id, version)));
      await underWay(deployments[0]?.id ?? "", 3, `round ${round}: v${version} under way`);
      await inject(faults[round] as Fault, round);
      for (const d of deployments) {
        const done = await untilState(
          d.id,
          ["succeeded", "failed"],
          `round ${round}: ${d.id} to end`,
          120_000,
        );
        expect(done.state, `round ${round}: ${d.id} ${done.message ?? ""}`).toBe("succeeded");
      }
      for (const id of ids)
        await waitFor(() => fleet.allRun(id, version), {
          timeoutMs: 30_000,
          message: `round ${round}: every agent to run ${id} v${version}`,
        });
    }
    for (const id of ids) eachRanOnce(id);
  });
});
