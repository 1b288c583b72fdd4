/**
 * The agent as a real process (`node packages/agent/dist/main.js`, what `edgectl agent` runs):
 * flags and agent.yaml, registration on a real nats-server, and a graceful SIGTERM that sends a
 * final heartbeat and exits 0. Builds the agent package first (incremental, fast when up to date).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { AssignmentSchema } from "@edgeplane/api";
import { waitFor } from "@edgeplane/testkit";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { natsConfig } from "../../packages/cli/src/commands/nats-config.js";
import { uid } from "../support/agent.js";
import { tempDir as tempDirIn, useCleanups } from "../support/cleanups.js";
import { connectControlPlane } from "../support/control-plane.js";
import { useOwnNats } from "../support/nats.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const main = join(repo, "packages/agent/dist/main.js");
const cleanups = useCleanups();
afterEach(() => {
  vi.restoreAllMocks();
});

const nats = useOwnNats();

beforeAll(() => {
  execFileSync(process.execPath, [join(repo, "node_modules/typescript/bin/tsc"), "-b", "packages/agent"], {
    cwd: repo,
    stdio: "inherit",
  });
}, 120_000);

const tempDir = (): Promise<string> => tempDirIn(cleanups, "agent-proc-");

interface Run {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stderr(): string;
}

function runAgent(args: readonly string[]): Run {
  const child = spawn(process.execPath, [main, ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  cleanups.push(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  return { child, exited, stderr: () => err };
}

describe("the agent process", () => {
  it("registers, applies its desired state, and on SIGTERM sends a final heartbeat and exits 0", async () => {
    const url = nats.server.url;
    const node = `proc-${uid()}`;
    const cp = await connectControlPlane(cleanups, { url }, { nodes: [node] });
    cp.set(
      node,
      1,
      [create(AssignmentSchema, { executionId: "q1", jobId: "j1", type: "query", desiredState: "running" })],
      false,
    );
    const beats = cp.heartbeats;

    const dir = await tempDir();
    const config = join(dir, "agent.yaml");
    // A long heartbeat period: the only heartbeats are the one after applying and the final one.
    await writeFile(
      config,
      "heartbeat_interval: 1m\nlabels: { site: lab }\nexecutors: { exec: { enabled: false } }\n",
    );
    const run = runAgent([
      "--node-id",
      node,
      "--nats",
      url,
      "--data-dir",
      join(dir, "data"),
      "--config",
      config,
    ]);
    const applied = await waitFor(
      () => beats.find((b) => b.appliedRevision === 1 && b.executions[0]?.state === "error"),
      { timeoutMs: 15_000, message: `a heartbeat at revision 1; agent stderr:\n${run.stderr()}` },
    );
    expect(applied.executions[0]?.exception).toBe(
      'no executor for type "query" is enabled in agent.yaml (executors.exec.enabled)',
    );
    const before = beats.length;

    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
    await waitFor(() => beats.length > before, { message: "the final heartbeat" });
    const final = beats.at(-1);
    expect(final?.instanceId).toBe(applied.instanceId);
    expect(final?.seq).toBeGreaterThan(applied.seq);
    expect(final?.appliedRevision).toBe(1);
    expect(run.stderr()).toMatch(/received SIGTERM, stopping/);
    expect(run.stderr()).toMatch(/agent stopped/);
    const state = JSON.parse(await readFile(join(dir, "data", "state.json"), "utf8"));
    expect(state).toMatchObject({ node_id: node, applied_revision: 1, finished: { q1: { state: "error" } } });
  });

  it("refuses bad flags and reserved labels with exit code 2 and a message naming them", async () => {
    const dir = await tempDir();
    const reserved = runAgent(["--node-id", "n1", "--data-dir", dir, "--labels", "edgeplane.io/os=plan9"]);
    expect(await reserved.exited).toBe(2);
    expect(reserved.stderr()).toMatch(/labels\.edgeplane\.io\/os: .*set by the agent itself/);
    const missing = runAgent(["--data-dir", dir]);
    expect(await missing.exited).toBe(2);
    expect(missing.stderr()).toMatch(/--node-id is required/);
    const dotted = runAgent(["--node-id", "a.b", "--data-dir", dir]);
    expect(await dotted.exited).toBe(2);
    expect(dotted.stderr()).toMatch(/--node-id: "a.b"/);
  });
});

describe("edgectl nats-config", () => {
  it("writes the config and 0600 seeds, keeping existing seeds on a second run", async () => {
    const out = await tempDir();
    const lines: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    expect(await natsConfig(["--nodes", "edge-01,edge-02", "--nodes", "edge-03", "--out", out])).toBe(0);
    for (const f of ["edge-01.nk", "edge-02.nk", "edge-03.nk", "control-plane.nk"]) {
      expect((await stat(join(out, f))).mode & 0o777).toBe(0o600);
    }
    const conf = await readFile(join(out, "nats-server.conf"), "utf8");
    expect(conf).toContain('publish: { allow: ["ep.node.edge-03.out.>"] }');
    const seed = await readFile(join(out, "edge-01.nk"), "utf8");
    expect(await natsConfig(["--nodes", "edge-01", "--out", out, "--port", "4333"])).toBe(0);
    expect(await readFile(join(out, "edge-01.nk"), "utf8")).toBe(seed);
    expect(lines.join("")).toMatch(/kept node edge-01/);
    expect(lines.join("")).toMatch(/stale: .*edge-02\.nk/);
    await expect(natsConfig(["--nodes", "a.b", "--out", out])).rejects.toMatchObject({
      code: "invalid_argument",
    });
    await expect(natsConfig(["--nodes", "n1"])).rejects.toThrow(/--out DIR is required/);
  });
});
