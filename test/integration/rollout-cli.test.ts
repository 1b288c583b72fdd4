/**
 * `edgectl deployment list|get|watch|<control>` and `edgectl job plan -f` against a real control
 * plane (real Redis and nats-server, simulated agents): the commands are called in-process with
 * stdout captured.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type NatsServer, startNats, waitFor } from "@edgeplane/testkit";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { deployment, planCommand } from "../../packages/cli/src/commands/deployment.js";
import { SimFleet } from "../e2e/support/fleet.js";
import { dropPrefix, type Stack, startStack } from "../e2e/support/stack.js";

let nats: NatsServer;
let stack: Stack;
let fleet: SimFleet;
let prefix: string;
let dir: string;

beforeAll(async () => {
  nats = await startNats({ jetstream: false });
  prefix = `t${randomUUID().slice(0, 8)}:`;
  stack = await startStack({ redisUrl: inject("redisUrl"), natsUrl: nats.url, prefix });
  fleet = await SimFleet.connect(nats.url, 1, () => true);
  await fleet.add(["cli-1", "cli-2", "cli-3", "cli-4"], { site: "cli" });
  fleet.startHeartbeats(200);
  dir = await mkdtemp(join(tmpdir(), "rollout-cli-"));
  await waitFor(() => stack.rollouts.runtime.isLeader(), { message: "the stack to lead" });
});

afterAll(async () => {
  await fleet?.close();
  await stack?.stop();
  const r = new Redis(inject("redisUrl"));
  await dropPrefix(r, prefix);
  await r.quit();
  await nats?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs a command with stdout captured. */
async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  let out = "";
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    return { code: await fn(), out };
  } finally {
    process.stdout.write = write;
  }
}

function spec(description: string) {
  return {
    name: "cli-app",
    namespace: prefix.slice(0, -1),
    type: "pipeline",
    description,
    config: { input: { generate: { interval: "1s", message: {} } }, output: { discard: {} } },
    selector: { match_labels: { site: "cli" } },
    deployment: {
      strategy: "canary",
      canary_count: 1,
      auto_promote: true,
      max_parallel: 2,
      health_check: { deadline: "10s", min_healthy_time: "300ms" },
    },
  };
}

describe("edgectl deployment and job plan", () => {
  it("plan -f shows the changes, the matching nodes, the canary and the waves", async () => {
    const file = join(dir, "job.json");
    await writeFile(file, JSON.stringify(spec("first")));
    const { code, out } = await capture(() => planCommand(["-f", file, "--server", stack.grpcAddress]));
    expect(code).toBe(0);
    expect(out).toContain("a new job");
    expect(out).toContain("matching nodes (4): cli-1, cli-2, cli-3, cli-4");
    expect(out).toMatch(/canary\s+1 nodes/);
    expect(out).toMatch(/wave 1\s+2 nodes/);
    expect(out).toMatch(/wave 2\s+1 nodes/);
    const asJson = await capture(() =>
      planCommand(["-f", file, "--server", stack.grpcAddress, "-o", "json"]),
    );
    const parsed = JSON.parse(asJson.out) as { waves: Array<{ canary: boolean; node_ids: string[] }> };
    expect(parsed.waves[0]?.canary).toBe(true);
  });

  it("watch follows a rollout to its end; list and get show it; a refused control says why", async () => {
    const res = await stack.api("POST", "/api/v1/jobs", spec("first"));
    const jobId = (res.body.job as { id: string }).id;
    const id = await waitFor(async () => {
      const list = await stack.api("GET", `/api/v1/deployments?job_id=${jobId}`);
      return (list.body.items as Array<{ id: string }>)[0]?.id;
    });
    const watched = await capture(() => deployment(["watch", id, "--server", stack.grpcAddress]));
    expect(watched.code).toBe(0);
    expect(watched.out).toMatch(/\[rev \d+\] succeeded 100%/);
    expect(watched.out).toContain("promoted");
    expect(watched.out).toContain("succeeded");

    const got = await capture(() => deployment(["get", id, "--server", stack.grpcAddress]));
    expect(got.out).toContain(`deployment ${id}`);
    expect(got.out).toMatch(/canary\s+\[█+\] 1\/1 done/);
    expect(got.out).toMatch(/wave 2\s+\[█+\] 2\/2 done/);
    const listed = await capture(() => deployment(["list", "--job", jobId, "--server", stack.grpcAddress]));
    expect(listed.out).toContain(id);
    await expect(deployment(["pause", id, "--server", stack.grpcAddress])).rejects.toMatchObject({
      code: "failed_precondition",
      message: expect.stringContaining("pause is not allowed while the deployment is succeeded"),
    });
  });
});
