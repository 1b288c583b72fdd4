/**
 * The exec executor (query, update) and the config executor inside real agents on a real
 * nats-server. A control-plane double (test/support) answers register/desired requests and records
 * heartbeats, events (with query results) and logs: this tests the agent and its executors, not
 * the node registry. Each agent's agent.yaml decides what it may run.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { type as osType } from "node:os";
import { join } from "node:path";
import { create, type JsonObject, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { type Agent, DEFAULT_AGENT_CONFIG, type ExecutorsConfig, parseAgentConfig } from "@edgeplane/agent";
import { type Assignment, AssignmentSchema, type ExecutionEvent } from "@edgeplane/api";
import { processGroupGone as groupGone, waitFor } from "@edgeplane/testkit";
import { describe, expect, it } from "vitest";
import { validateJobConfig } from "../../packages/core/src/job-config.js";
import { startTestAgent, uid as uidOf } from "../support/agent.js";
import { tempDir as tempDirIn, useCleanups } from "../support/cleanups.js";
import { connectControlPlane, type TestControlPlane } from "../support/control-plane.js";
import { useOwnNats } from "../support/nats.js";

const cleanups = useCleanups();
const nats = useOwnNats();

const uid = (): string => uidOf(3);
const tempDir = (): Promise<string> => tempDirIn(cleanups, "executors-exec-");
const controlPlane = (): Promise<TestControlPlane> => connectControlPlane(cleanups, { url: nats.server.url });

/** An agent whose executors come from an agent.yaml text, as `edgectl agent --config` would load it. */
async function startAgent(nodeId: string, agentYaml: string): Promise<Agent> {
  const config: ExecutorsConfig = parseAgentConfig(agentYaml).executors;
  return startTestAgent(cleanups, {
    nodeId,
    dataDir: await tempDir(),
    nats: { servers: [nats.server.url], pingIntervalMs: 1000 },
    heartbeatIntervalMs: 100,
    executorConfig: config,
  });
}

function job(executionId: string, type: string, config: Record<string, unknown>, timeoutS = 0): Assignment {
  expect(validateJobConfig(type, config)).toEqual([]); // what the control plane accepts at submit
  return create(AssignmentSchema, {
    executionId,
    jobId: `job-${executionId}`,
    jobVersion: 1,
    type,
    config: config as JsonObject,
    desiredState: "running",
    timeouts: { executionTimeout: timeoutS },
  });
}

const EXEC_YAML = `
executors:
  exec:
    enabled: true
    allow:
      - { command: uname, args: [-a] }
      - { command: sh, args: any }
    kill_grace: 300ms
`;

const resultOf = (e: ExecutionEvent): unknown => (e.result ? toJson(ValueSchema, e.result) : undefined);

describe("exec executor on real NATS", () => {
  it("runs an allowed `uname -a` query on 3 agents: one result per node", async () => {
    const cp = await controlPlane();
    const nodes = [`q1-${uid()}`, `q2-${uid()}`, `q3-${uid()}`];
    for (const n of nodes) {
      await startAgent(n, EXEC_YAML);
      cp.set(n, 1, [job("uname", "query", { command: "uname", args: ["-a"] }, 30)]);
    }
    for (const n of nodes) {
      const e = await cp.final(n, "uname");
      expect(e.status).toMatchObject({ state: "finished", exitCode: 0, exception: "" });
      expect(e.status?.startTime).toBeDefined();
      expect(e.status?.finishTime).toBeDefined();
      expect(resultOf(e)).toEqual(expect.stringMatching(new RegExp(`^${osType()} `)));
      expect(e.resultTruncated).toBe(false);
      await cp.logLine("uname", new RegExp(`^INFO stdout ${osType()} `));
    }
    const withResult = cp.events.filter((e) => e.result !== undefined && nodes.includes(e.nodeId));
    expect(withResult.map((e) => e.nodeId).sort()).toEqual([...nodes].sort());
  });

  it("refuses a command agent.yaml does not allow, naming the rule", async () => {
    const cp = await controlPlane();
    const n = `deny-${uid()}`;
    await startAgent(n, EXEC_YAML);
    cp.set(n, 1, [
      job("rm", "update", { command: "rm", args: ["-rf", "/tmp/x"] }),
      job("uname-r", "query", { command: "uname", args: ["-r"] }),
    ]);
    expect((await cp.final(n, "rm")).status).toMatchObject({
      state: "error",
      exception: 'command "rm" is not allowed by agent.yaml executors.exec.allow (allowed: uname, sh)',
    });
    expect((await cp.final(n, "uname-r")).status?.exception).toBe(
      'command "uname" with arguments ["-r"] is not allowed by agent.yaml executors.exec.allow (allowed for uname: ["-a"])',
    );
    // With exec disabled (the default), the switch is named instead.
    const off = `off-${uid()}`;
    await startAgent(off, "labels: { site: lab }\n");
    cp.set(off, 1, [job("uname", "query", { command: "uname", args: ["-a"] })]);
    expect((await cp.final(off, "uname")).status?.exception).toBe(
      'no executor for type "query" is enabled in agent.yaml (executors.exec.enabled)',
    );
  });

  it("ends a command that outruns execution_timeout as timed_out, with its process group gone", async () => {
    const cp = await controlPlane();
    const n = `slow-${uid()}`;
    const dir = await tempDir();
    const pidFile = join(dir, "pid");
    await startAgent(n, EXEC_YAML);
    cp.set(n, 1, [
      job(
        "slow",
        "update",
        { command: "sh", args: ["-c", `echo $$ > ${pidFile}; sleep 30 & sleep 30; wait`] },
        1,
      ),
    ]);
    const pgid = await waitFor(async () => Number((await readFile(pidFile, "utf8").catch(() => "")).trim()), {
      message: "the command's pid",
    });
    expect(groupGone(pgid)).toBe(false);
    const e = await cp.final(n, "slow");
    expect(e.status).toMatchObject({
      state: "timed_out",
      exception: "ran longer than its execution_timeout of 1 s; the agent stopped it",
    });
    expect(groupGone(pgid)).toBe(true);
    await cp.logLine("slow", new RegExp(`\\(pid ${pgid}, process group ${pgid}\\)`));
  });

  it("caps a 10 MB result and reports the cap; the agent stays alive", async () => {
    const cp = await controlPlane();
    const n = `big-${uid()}`;
    await startAgent(n, EXEC_YAML);
    cp.set(n, 1, [
      job("big", "query", { command: "sh", args: ["-c", "yes 0123456789 | head -c 10485760"] }, 30),
    ]);
    const e = await cp.final(n, "big", 20_000);
    expect(e.status?.state).toBe("finished");
    expect(e.resultTruncated).toBe(true);
    expect(e.resultBytes).toBe(10_485_760n);
    const result = resultOf(e) as string;
    expect(result.length).toBe(DEFAULT_AGENT_CONFIG.executors.exec.maxResultBytes);
    expect(result.startsWith("0123456789\n0123456789\n")).toBe(true);
    await cp.logLine("big", /the result was cut at 65536 bytes of 10485760/);
    await cp.logLine("big", /output beyond 10000 lines or 1048576 bytes is not logged/);
    // Still serving: heartbeats go on and the next job runs.
    const beats = cp.heartbeats.length;
    cp.set(n, 2, [job("after", "query", { command: "sh", args: ["-c", "echo '{\"ok\": true}'"] })]);
    expect(resultOf(await cp.final(n, "after"))).toEqual({ ok: true });
    await waitFor(
      () => cp.heartbeats.filter((h) => h.nodeId === n).length > 0 && cp.heartbeats.length > beats,
    );
  });
});

describe("config executor on real NATS", () => {
  it("writes files atomically under root_dir, keeps the old content, and runs the reload command", async () => {
    const cp = await controlPlane();
    const n = `cfg-${uid()}`;
    const root = await tempDir();
    const marker = join(root, "reloads");
    await writeFile(join(root, "big.conf"), "A".repeat(200_000));
    const agent = await startAgent(
      n,
      `
executors:
  config:
    enabled: true
    root_dir: ${root}
    reload_allow: [{ command: sh, args: any }]
`,
    );
    expect(agent.labels).toBeDefined();

    // A reader that must only ever see the whole old or the whole new content.
    let torn = 0;
    let reads = 0;
    let reading = true;
    const reader = (async () => {
      while (reading) {
        const text = await readFile(join(root, "big.conf"), "utf8");
        reads++;
        if (!(text === "A".repeat(200_000) || text === "B".repeat(200_000))) torn++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    cp.set(n, 1, [
      job("push", "config", {
        files: [
          { path: "big.conf", content: "B".repeat(200_000) },
          { path: "conf.d/app.env", content: "MODE=fast\n", mode: "0640" },
        ],
        reload: { command: "sh", args: ["-c", `echo reloaded >> ${marker}`] },
      }),
    ]);
    const e = await cp.final(n, "push");
    reading = false;
    await reader;
    expect(e.status).toMatchObject({ state: "finished", exitCode: 0 });
    expect(torn).toBe(0);
    expect(reads).toBeGreaterThan(0);
    expect(await readFile(join(root, "big.conf"), "utf8")).toBe("B".repeat(200_000));
    expect(await readFile(join(root, "conf.d", "app.env"), "utf8")).toBe("MODE=fast\n");
    expect(await readFile(marker, "utf8")).toBe("reloaded\n");
    expect((await readdir(root)).filter((f) => f.includes(".tmp"))).toEqual([]); // no temp files left
    await cp.logLine("push", /previous contents kept in .*config-backups/);

    // A file outside root_dir, and a reload that is not allowed, are refused by name.
    cp.set(n, 2, [
      create(AssignmentSchema, {
        executionId: "escape",
        jobId: "job-escape",
        type: "config",
        config: { files: [{ path: "../outside", content: "x" }] },
        desiredState: "running",
      }),
      job("reload-denied", "config", {
        files: [{ path: "x.conf", content: "x" }],
        reload: { command: "systemctl", args: ["reload", "x"] },
      }),
    ]);
    expect((await cp.final(n, "escape")).status?.exception).toMatch(
      /^the job config is invalid: spec\.config\.files\[0\]\.path: must not contain "\.\." segments/,
    );
    expect((await cp.final(n, "reload-denied")).status?.exception).toBe(
      'command "systemctl" is not allowed by agent.yaml executors.config.reload_allow (allowed: sh)',
    );
  });
});
