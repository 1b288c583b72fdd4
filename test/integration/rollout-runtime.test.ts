/**
 * The rollout runtime end to end on a real Redis and nats-server, with simulated agents over
 * NATS: a rolling rollout to success wave by wave, a bad version halting and rolling back to a new
 * version carrying the old spec, and the Deployments API around them (REST and gRPC: list, get,
 * controls refused with 409 and the reason, the dry run).
 *
 * Subjects are global (`ep.node.*`), so this file starts its own nats-server.
 */
import { randomUUID } from "node:crypto";
import { type NatsServer, startNats, waitFor } from "@edgeplane/testkit";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type DeploymentJson, deploymentApi, type Json } from "../e2e/support/deployments.js";
import { SimFleet } from "../e2e/support/fleet.js";
import { dropPrefix, type Stack, startStack } from "../e2e/support/stack.js";

let nats: NatsServer;
let stack: Stack;
let fleet: SimFleet;
let prefix: string;
const bad = new Set<number>();
const NODES = Array.from({ length: 6 }, (_, i) => `edge-${i + 1}`);

beforeAll(async () => {
  nats = await startNats({ jetstream: false });
  prefix = `t${randomUUID().slice(0, 8)}:`;
  stack = await startStack({ redisUrl: inject("redisUrl"), natsUrl: nats.url, prefix });
  fleet = await SimFleet.connect(nats.url, 2, (version) => !bad.has(version));
  await fleet.add(NODES, { site: "lab" });
  await fleet.add(["elsewhere-1"], { site: "other" });
  fleet.startHeartbeats(200);
  await waitFor(() => stack.rollouts.runtime.isLeader(), { message: "the stack to lead" });
});

afterAll(async () => {
  await fleet?.close();
  await stack?.stop();
  if (stack) {
    const { Redis } = await import("ioredis");
    const r = new Redis(inject("redisUrl"));
    await dropPrefix(r, prefix);
    await r.quit();
  }
  await nats?.stop();
});

function spec(extra: Json = {}, deployment: Json = {}): Json {
  return {
    name: "web",
    namespace: prefix.slice(0, -1),
    type: "pipeline",
    config: { input: { generate: { interval: "1s", message: {} } }, output: { discard: {} } },
    selector: { match_labels: { site: "lab" } },
    deployment: {
      strategy: "rolling",
      max_parallel: 2,
      max_failed_nodes: 0,
      health_check: { deadline: "4s", min_healthy_time: "300ms" },
      ...deployment,
    },
    ...extra,
  };
}

const {
  submit,
  get: deployment,
  deploymentOf: deploymentOfVersion,
  until: untilState,
} = deploymentApi(() => stack, { untilTimeoutMs: 20_000, intervalMs: 50 });

describe("rollouts on real Redis and NATS", () => {
  let jobId = "";

  it("deploys a new job, then rolls a new version out wave by wave to success", async () => {
    const v1 = await submit(spec({ description: "v1" }, { strategy: "immediate" }));
    jobId = v1.id;
    const d1 = await deploymentOfVersion(jobId, 1);
    await untilState(d1.id, ["succeeded"]);
    expect(fleet.versions(jobId)).toMatchObject(Object.fromEntries(NODES.map((n) => [n, 1])));
    expect(fleet.versions(jobId)["elsewhere-1"]).toBe(0);

    const v2 = await submit(spec({ description: "v2" }));
    expect(v2.version).toBe(2);
    const d2 = await deploymentOfVersion(jobId, 2);
    const seen = new Set<number>();
    const done = await waitFor(
      async () => {
        const d = await deployment(d2.id);
        seen.add(d.counters.updated - d.counters.healthy - d.counters.failed);
        return d.state === "succeeded" ? d : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 20, message: "the rolling deployment to succeed" },
    );
    // Never more than max_parallel updating at once.
    expect(Math.max(...seen)).toBeLessThanOrEqual(2);
    expect(done).toMatchObject({ strategy: "rolling", progress: 1, next_steps: [] });
    expect(done.counters).toMatchObject({ targets: 6, waves: 3, updated: 6, healthy: 6, failed: 0 });
    const dispatched = done.events.filter((e) => e.kind === "dispatched");
    expect(dispatched.flatMap((e) => e.nodes).sort()).toEqual([...NODES].sort());
    expect(fleet.versions(jobId)).toMatchObject(Object.fromEntries(NODES.map((n) => [n, 2])));
    const job = (await stack.api("GET", `/api/v1/jobs/${jobId}`)).body.job as {
      status: { stable_version: number; deployment_id: string; state: { state_type: string } };
    };
    expect(job.status).toMatchObject({
      stable_version: 2,
      deployment_id: d2.id,
      state: { state_type: "running" },
    });
    expect((await deployment(d1.id)).state).toBe("succeeded");
  });

  it("halts a bad version at its deadline and rolls back to a new version carrying the old spec", async () => {
    bad.add(3);
    await submit(spec({ description: "v3 (bad)" }));
    const d3 = await deploymentOfVersion(jobId, 3);
    const ended = await untilState(d3.id, ["rolled_back"], 30_000);
    const kinds = ended.events.map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(["halted", "failed", "rollback_started", "rolled_back"]));
    const halted = ended.events.find((e) => e.kind === "halted");
    // The wave's two nodes fail at the same deadline.
    expect(halted?.reason).toMatch(/^failed_nodes [12] > max_failed_nodes 0/);
    expect(halted?.details.rule).toBe("failure_budget");
    expect(ended.rollback_deployment_id).not.toBe("");
    const rb = await deployment(ended.rollback_deployment_id);
    expect(rb).toMatchObject({
      state: "succeeded",
      is_rollback: true,
      job_version: 4,
      rollback_of_deployment_id: d3.id,
    });
    // Version 4 carries version 2's spec.
    const v4 = (await stack.api("GET", `/api/v1/jobs/${jobId}/versions/4`)).body.version as Json;
    const v2 = (await stack.api("GET", `/api/v1/jobs/${jobId}/versions/2`)).body.version as Json;
    expect(v4).toMatchObject({ kind: "rollback", rollback_to_version: 2 });
    expect(v4.spec).toEqual(v2.spec);
    // Only max_parallel nodes ever got the bad version; every node runs version 4 now.
    const gotBad = ended.counters.updated;
    expect(gotBad).toBeLessThanOrEqual(2);
    expect(fleet.versions(jobId)).toMatchObject(Object.fromEntries(NODES.map((n) => [n, 4])));
    const job = (await stack.api("GET", `/api/v1/jobs/${jobId}`)).body.job as {
      status: { stable_version: number; version: number };
    };
    expect(job.status).toMatchObject({ version: 4, stable_version: 4 });
  });

  it("refuses controls the state does not allow with 409 and the reason; lists and reads over gRPC", async () => {
    const list = await stack.api("GET", `/api/v1/deployments?job_id=${jobId}&limit=2`);
    expect(list.status).toBe(200);
    expect((list.body.items as DeploymentJson[]).map((d) => d.job_version)).toEqual([4, 3]);
    expect(list.body.next_token).not.toBe("");
    const latest = (list.body.items as DeploymentJson[])[0] as DeploymentJson;
    const promote = await stack.api("POST", `/api/v1/deployments/${latest.id}/promote`, {});
    expect(promote.status).toBe(409);
    expect((promote.body.error as Json).code).toBe("failed_precondition");
    expect((promote.body.error as Json).message).toContain(
      "promote is not allowed while the deployment is succeeded",
    );
    const missing = await stack.api("POST", "/api/v1/deployments/dep-nope/pause", {});
    expect(missing.status).toBe(404);

    // REST watch (server-sent events): one event for a deployment that already ended, then the end.
    const sse = await fetch(`${stack.httpUrl}/api/v1/deployments/${latest.id}/watch`);
    expect(sse.headers.get("content-type")).toContain("text/event-stream");
    const text = await sse.text();
    expect(text.match(/^event: deployment$/gm)).toHaveLength(1);
    expect(JSON.parse(text.split("data: ")[1]?.split("\n")[0] ?? "{}")).toMatchObject({
      id: latest.id,
      state: "succeeded",
    });

    const got = await stack.deploymentsClient.getDeployment({ id: latest.id });
    expect(got.deployment).toMatchObject({ id: latest.id, state: "succeeded", jobVersion: 4 });
    const page = await stack.deploymentsClient.listDeployments({ jobId, limit: 10 });
    expect(page.items.map((d) => d.jobVersion)).toEqual([4, 3, 2, 1]);
    await expect(stack.deploymentsClient.cancelDeployment({ id: latest.id })).rejects.toMatchObject({
      code: "failed_precondition",
    });
  });

  it("pauses and resumes a running rollout through the API", async () => {
    const v5 = await submit(
      spec(
        { description: "v5" },
        { max_parallel: 1, health_check: { deadline: "10s", min_healthy_time: "1s" } },
      ),
    );
    const d5 = await deploymentOfVersion(v5.id, 5);
    await untilState(d5.id, ["running"]);
    const tooLong = await stack.api("POST", `/api/v1/deployments/${d5.id}/pause`, {
      reason: "x".repeat(1025),
    });
    expect(tooLong.status).toBe(400);
    expect(JSON.stringify(tooLong.body)).toContain("reason");
    const paused = await stack.api("POST", `/api/v1/deployments/${d5.id}/pause`, { reason: "look first" });
    expect(paused.status).toBe(200);
    expect((paused.body.deployment as DeploymentJson).state).toBe("paused");
    const pausedEvent = (paused.body.deployment as DeploymentJson).events.find((e) => e.kind === "paused");
    expect(pausedEvent).toMatchObject({ details: { control: "pause", user_reason: "look first" } });
    expect(pausedEvent?.reason).toContain('(reason given: "look first")');
    expect((paused.body.deployment as DeploymentJson).next_steps).toEqual(["resume", "cancel", "rollback"]);
    const again = await stack.api("POST", `/api/v1/deployments/${d5.id}/pause`, {});
    expect(again.status).toBe(409);
    const resumed = await stack.deploymentsClient.resumeDeployment({ id: d5.id, reason: "looked" });
    expect(resumed.deployment?.state).toBe("running");
    expect(resumed.deployment?.events.find((e) => e.kind === "resumed")?.details).toMatchObject({
      user_reason: "looked",
    });
    await untilState(d5.id, ["succeeded"], 30_000);
  });

  it("plans a spec without submitting it: diff, matching nodes, waves", async () => {
    const body = spec({ description: "v6" }, { strategy: "canary", canary_count: 1, max_parallel: 2 });
    const res = await stack.api("POST", "/api/v1/jobs/plan", body);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ job_id: jobId, current_version: 5, changed: true });
    expect(res.body.matching_node_ids).toEqual([...NODES].sort());
    const waves = res.body.waves as Array<{ index: number; canary: boolean; node_ids: string[] }>;
    expect(waves.map((w) => [w.index, w.canary, w.node_ids.length])).toEqual([
      [0, true, 1],
      [1, false, 2],
      [2, false, 2],
      [3, false, 1],
    ]);
    expect((res.body.changes as Array<{ path: string }>).map((c) => c.path)).toEqual(
      expect.arrayContaining(["deployment.strategy", "description"]),
    );
    expect(res.body.warnings).toEqual(expect.arrayContaining([expect.stringContaining("waits for promote")]));
    const { fromJson } = await import("@bufbuild/protobuf");
    const { JobSpecSchema } = await import("@edgeplane/api");
    const viaGrpc = await stack.jobsClient.planJob({
      spec: fromJson(JobSpecSchema, (await stack.jobs.validate(body)) as never),
    });
    expect(viaGrpc.waves.map((w) => w.nodeIds)).toEqual(waves.map((w) => w.node_ids));
    // Nothing was submitted.
    const job = (await stack.api("GET", `/api/v1/jobs/${jobId}`)).body.job as { status: { version: number } };
    expect(job.status.version).toBe(5);
  });
});
