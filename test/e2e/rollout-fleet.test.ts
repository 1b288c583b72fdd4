/**
 * Rollouts end to end: 20 real agents (`createAgent`, the built-in pipeline executor with a
 * `generate` input; a "bad version" is one whose mapping fails every message) on a real
 * nats-server, a control plane on a real Redis, driven through its REST and gRPC APIs:
 * immediate; rolling to success; a bad version halting and rolling back to a new version that
 * carries the old spec; `no_auto_rollback` (then a manual rollback); a canary waiting for promote;
 * a node disconnected during its wave receiving the assignment when it reconnects.
 */
import { randomUUID } from "node:crypto";
import { type NatsServer, startNats, waitFor } from "@edgeplane/testkit";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { pipelineConfig, RealFleet } from "./support/agents.js";
import { deploymentApi, type Json } from "./support/deployments.js";
import { dropPrefix, type Stack, startStack } from "./support/stack.js";

const NODES = Array.from({ length: 20 }, (_, i) => `e2e-${String(i + 1).padStart(2, "0")}`);
let nats: NatsServer;
let stack: Stack;
let fleet: RealFleet;
let prefix: string;

beforeAll(async () => {
  nats = await startNats({ jetstream: false });
  prefix = `e2e${randomUUID().slice(0, 8)}:`;
  stack = await startStack({ redisUrl: inject("redisUrl"), natsUrl: nats.url, prefix });
  await waitFor(() => stack.rollouts.runtime.isLeader(), { message: "the control plane to lead" });
  fleet = new RealFleet(nats.url, { site: "e2e" });
  await fleet.start(NODES);
  await waitFor(
    async () => {
      const res = await stack.api("GET", "/api/v1/nodes?selector=site%3De2e&limit=100");
      return (res.body.items as unknown[]).length === NODES.length;
    },
    { timeoutMs: 20_000, message: "every agent to register" },
  );
}, 60_000);

afterAll(async () => {
  await fleet?.close();
  await stack?.stop();
  const r = new Redis(inject("redisUrl"));
  await dropPrefix(r, prefix);
  await r.quit();
  await nats?.stop();
});

function spec(name: string, deployment: Json, extra: Json = {}): Json {
  return {
    name,
    namespace: prefix.slice(0, -1),
    type: "pipeline",
    config: pipelineConfig(false, name),
    selector: { match_labels: { site: "e2e" } },
    deployment: {
      strategy: "rolling",
      max_parallel: 5,
      health_check: { deadline: "10s", min_healthy_time: "1s" },
      ...deployment,
    },
    ...extra,
  };
}

const { submit, get, deploymentOf, until } = deploymentApi(() => stack, {
  untilTimeoutMs: 40_000,
  intervalMs: 100,
});

async function jobStatus(id: string) {
  const res = await stack.api("GET", `/api/v1/jobs/${id}`);
  return (
    res.body.job as { status: { version: number; stable_version: number; state: { state_type: string } } }
  ).status;
}

describe("rollouts over 20 real agents", () => {
  let web = "";

  it("immediate: every matching node runs the first version at once", async () => {
    const v1 = await submit(spec("web", { strategy: "immediate" }));
    web = v1.id;
    const d = await until((await deploymentOf(web, 1)).id, ["succeeded"]);
    expect(d.counters).toMatchObject({ targets: 20, waves: 1, healthy: 20, failed: 0 });
    await waitFor(() => fleet.allRun(web, 1), { timeoutMs: 10_000, message: "every agent to run v1" });
    expect(await jobStatus(web)).toMatchObject({ stable_version: 1, state: { state_type: "running" } });
  });

  it("rolling: five nodes at a time, each healthy for min_healthy_time, to success", async () => {
    await submit({ ...spec("web", {}), description: "v2" });
    const d2 = await deploymentOf(web, 2);
    let maxUpdating = 0;
    const done = await waitFor(
      async () => {
        const d = await get(d2.id);
        maxUpdating = Math.max(maxUpdating, d.counters.updated - d.counters.healthy - d.counters.failed);
        return d.state === "succeeded" ? d : undefined;
      },
      { timeoutMs: 40_000, intervalMs: 50, message: "the rolling deployment to succeed" },
    );
    expect(maxUpdating).toBeLessThanOrEqual(5);
    expect(done.counters).toMatchObject({ targets: 20, waves: 4, healthy: 20, failed: 0 });
    await waitFor(() => fleet.allRun(web, 2), { timeoutMs: 10_000, message: "every agent to run v2" });
    expect(await jobStatus(web)).toMatchObject({ stable_version: 2 });
  });

  it("a bad version halts at its deadline and rolls back to a new version carrying the old spec", async () => {
    await submit({ ...spec("web", { max_failed_nodes: 0 }), config: pipelineConfig(true, "web") });
    const d3 = await deploymentOf(web, 3);
    const failed = await until(d3.id, ["rolled_back", "failed"], 60_000);
    expect(failed.state).toBe("rolled_back");
    const halted = failed.events.find((e) => e.kind === "halted");
    expect(halted?.details.rule).toBe("failure_budget");
    expect(halted?.reason).toMatch(/not done within deadline|failed_nodes/);
    const nodeFailed = failed.events.find((e) => e.kind === "node_failed");
    expect(nodeFailed?.reason).toMatch(/not done within (the )?deadline/);
    expect(nodeFailed?.details.cause).toBe("deadline");
    // Only the first wave ever got the bad version.
    expect(failed.counters.updated).toBe(5);
    const rb = await get(failed.rollback_deployment_id);
    expect(rb).toMatchObject({ state: "succeeded", job_version: 4 });
    const versions = (await stack.api("GET", `/api/v1/jobs/${web}/versions/4`)).body.version as Json;
    expect(versions).toMatchObject({ kind: "rollback", rollback_to_version: 2 });
    await waitFor(() => fleet.allRun(web, 4), { timeoutMs: 10_000, message: "every agent to run v4" });
    expect(await jobStatus(web)).toMatchObject({ version: 4, stable_version: 4 });
  });

  it("no_auto_rollback: the failure leaves nodes as they are; a person rolls back", async () => {
    await submit({
      ...spec("web", { max_failed_nodes: 0, no_auto_rollback: true }),
      config: pipelineConfig(true, "web"),
      description: "bad, no auto rollback",
    });
    const d5 = await deploymentOf(web, 5);
    const failed = await until(d5.id, ["failed"], 40_000);
    expect(failed.events.find((e) => e.kind === "rollback_skipped")?.details.code).toBe("no_auto_rollback");
    expect(failed.next_steps).toEqual(["rollback"]);
    expect((await jobStatus(web)).state.state_type).toBe("failed");
    // Nodes stay as they are: the first wave runs v5, the others still v4.
    const held = Object.values(fleet.versions(web));
    expect(held.filter((v) => v === 5)).toHaveLength(5);
    expect(held.filter((v) => v === 4)).toHaveLength(15);

    const res = await stack.api("POST", `/api/v1/deployments/${d5.id}/rollback`, { reason: "bad mapping" });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const rolled = await until(d5.id, ["rolled_back"], 40_000);
    const rb = await get(rolled.rollback_deployment_id);
    expect(rb.job_version).toBe(6);
    await waitFor(() => fleet.allRun(web, 6), { timeoutMs: 10_000, message: "every agent to run v6" });
    const again = await stack.api("POST", `/api/v1/deployments/${d5.id}/rollback`, {});
    expect(again.status).toBe(409);
  });

  it("canary: two canaries first, then it waits for a person; promoted, it rolls out the rest", async () => {
    const job = await submit(spec("canary-app", { strategy: "canary", canary_count: 2, max_parallel: 6 }));
    const d = await deploymentOf(job.id, 1);
    const waiting = await until(d.id, ["awaiting_promotion"], 30_000);
    expect(waiting.next_steps).toEqual(["promote"]);
    expect(waiting.counters).toMatchObject({ canaries: 2, healthy: 2, updated: 2 });
    expect(Object.values(fleet.versions(job.id)).filter((v) => v === 1)).toHaveLength(2);
    const refused = await stack.api("POST", `/api/v1/deployments/${d.id}/cancel`, {});
    expect(refused.status).toBe(409);
    expect(((refused.body.error as Json).message as string).includes("promote to finish the rollout")).toBe(
      true,
    );
    const promoted = await stack.deploymentsClient.promoteDeployment({ id: d.id });
    expect(promoted.deployment?.state).toBe("running");
    const done = await until(d.id, ["succeeded"], 30_000);
    expect(done.events.find((e) => e.kind === "promoted")?.details.by).toBe("user");
    await waitFor(() => fleet.allRun(job.id, 1), { timeoutMs: 10_000, message: "every agent to run it" });
  });

  it("a node disconnected during its wave gets the assignment when it reconnects", async () => {
    const base = spec("edge-app", { strategy: "immediate" });
    const job = await submit(base);
    await until((await deploymentOf(job.id, 1)).id, ["succeeded"]);
    const v2 = {
      ...spec("edge-app", { max_parallel: 4, health_check: { deadline: "20s", min_healthy_time: "1s" } }),
    };
    // The dry run names the waves: take a node of the last wave offline before it comes.
    const plan = await stack.api("POST", "/api/v1/jobs/plan", v2);
    const waves = plan.body.waves as Array<{ node_ids: string[] }>;
    const offline = waves[waves.length - 1]?.node_ids[0] as string;
    await fleet.stopOne(offline);
    await waitFor(
      async () =>
        ((await stack.api("GET", `/api/v1/nodes/${offline}`)).body.node as Json).state === "disconnected",
      { timeoutMs: 10_000, message: `${offline} to be disconnected` },
    );
    await submit(v2);
    const d2 = await deploymentOf(job.id, 2);
    await waitFor(
      async () => {
        const d = await get(d2.id);
        return d.events.some((e) => e.kind === "dispatched" && e.nodes.includes(offline));
      },
      { timeoutMs: 30_000, message: `the wave of ${offline} to be dispatched` },
    );
    expect((await get(d2.id)).state).toBe("running");
    await fleet.startOne(offline);
    const done = await until(d2.id, ["succeeded"], 30_000);
    expect(done.counters).toMatchObject({ healthy: 20, failed: 0 });
    await waitFor(() => fleet.versions(job.id)[offline] === 2, {
      timeoutMs: 10_000,
      message: "it to run v2",
    });
  });
});
