/**
 * A fleet against a real control plane (startControlPlane with NATS and Redis): 3 real agent
 * processes (`edgectl agent`) and 50 in-process agents register and appear ready with their
 * labels; the Nodes API selects exactly the matching ones; the processes stop gracefully.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Agent, createAgent } from "@edgeplane/agent";
import { type ControlPlane, startControlPlane } from "@edgeplane/control-plane";
import { createLogger } from "@edgeplane/core";
import { type NatsServer, startNats, waitFor } from "@edgeplane/testkit";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const bin = join(root, "packages/cli/dist/main.js");
const quiet = createLogger({ component: "test", level: "error", sink: () => {} });

interface NodeJson {
  id: string;
  state: string;
  labels: Record<string, string>;
}

describe("a fleet of real agents", () => {
  let nats: NatsServer;
  let cp: ControlPlane;
  let dir: string;
  const processes: ChildProcess[] = [];
  const agents: Agent[] = [];
  const expected = new Map<string, Record<string, string>>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "edgeplane-fleet-"));
    nats = await startNats({ jetstream: false });
    cp = await startControlPlane({
      grpcAddr: "127.0.0.1:0",
      httpAddr: "127.0.0.1:0",
      store: inject("redisUrl"),
      redisPrefix: `fleet${randomUUID().slice(0, 6)}`,
      nats: [nats.url],
      logger: quiet,
      nodes: { registry: { heartbeatIntervalMs: 500 } },
    });
    for (let i = 1; i <= 3; i++) {
      const id = `proc-${i}`;
      const labels = { tier: "edge", site: `s${i}` };
      expected.set(id, labels);
      processes.push(
        spawn(
          process.execPath,
          [
            bin,
            "agent",
            "--node-id",
            id,
            "--labels",
            `tier=edge,site=s${i}`,
            "--nats",
            nats.url,
            "--data-dir",
            join(dir, id),
          ],
          { stdio: ["ignore", "ignore", "pipe"] },
        ),
      );
    }
    for (let i = 1; i <= 50; i++) {
      const id = `mem-${String(i).padStart(2, "0")}`;
      const labels: Record<string, string> = { tier: i % 2 === 0 ? "edge" : "gateway", site: `s${i % 4}` };
      if (i % 5 === 0) labels.maintenance = "true";
      expected.set(id, labels);
      const agent = createAgent({
        nodeId: id,
        dataDir: join(dir, id),
        labels,
        nats: { servers: [nats.url] },
        heartbeatIntervalMs: 500,
        logger: quiet,
      });
      agents.push(agent);
    }
    await Promise.all(agents.map((a) => a.start()));
  }, 120_000);

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop({ graceMs: 500 })));
    for (const p of processes) if (p.exitCode === null) p.kill("SIGKILL");
    await cp?.stop({ graceMs: 1000 });
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function nodes(query = ""): Promise<NodeJson[]> {
    const res = await fetch(`${cp.httpUrl}/api/v1/nodes?limit=1000${query}`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { items: NodeJson[] }).items;
  }

  it("registers every agent as ready with its labels and the discovered ones", async () => {
    await waitFor(async () => (await nodes()).filter((n) => n.state === "ready").length === 53, {
      timeoutMs: 60_000,
      message: "53 ready nodes",
    });
    const all = await nodes();
    for (const n of all) {
      expect(n.labels).toMatchObject(expected.get(n.id) ?? {});
      expect(n.labels["edgeplane.io/agent-version"]).toBe("0.1.0");
    }
  });

  it("selects exactly the matching nodes through the Nodes API", async () => {
    const selector = "tier=edge,!maintenance";
    const got = (await nodes(`&selector=${encodeURIComponent(selector)}`)).map((n) => n.id).sort();
    const want = [...expected]
      .filter(([, l]) => l.tier === "edge" && l.maintenance === undefined)
      .map(([id]) => id)
      .sort();
    expect(got).toEqual(want);
    expect(got).toContain("proc-1");
    const bad = await fetch(`${cp.httpUrl}/api/v1/nodes?selector=${encodeURIComponent("tier in (x")}`);
    expect(bad.status).toBe(400);
  });

  it("stops an agent process gracefully on SIGTERM", async () => {
    const p = processes[0] as ChildProcess;
    p.kill("SIGTERM");
    const code = await new Promise<number | null>((resolve) =>
      p.exitCode !== null ? resolve(p.exitCode) : p.once("exit", resolve),
    );
    expect(code).toBe(0);
  });
});
