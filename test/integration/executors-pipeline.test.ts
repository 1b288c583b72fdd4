/**
 * The pipeline executor inside real agents on a real nats-server that enforces the per-node
 * credentials `edgectl nats-config` generates (so pipeline data on `ep.node.<id>.out.data.>` /
 * `in.data.>` is proven to fit a node's permissions). A control-plane double (test/support) answers
 * register/desired requests and records heartbeats, events and logs: this tests the agent and its
 * executors, not the node registry.
 */
import { appendFile, mkdtemp, readFile, rename, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type JsonObject } from "@bufbuild/protobuf";
import {
  type Agent,
  createBuiltinExecutors,
  DEFAULT_AGENT_CONFIG,
  type ExecutorsConfig,
  type WriteNatsConfigResult,
  writeNatsConfig,
} from "@edgeplane/agent";
import { type Assignment, AssignmentSchema } from "@edgeplane/api";
import { type NatsServer, startNats, waitFor } from "@edgeplane/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateJobConfig } from "../../packages/core/src/job-config.js";
import { startTestAgent } from "../support/agent.js";
import { tempDir as tempDirIn, useCleanups } from "../support/cleanups.js";
import { connectControlPlane, type TestControlPlane } from "../support/control-plane.js";

const NODES = ["pipe-1", "pipe-2", "pipe-3", "tail-1", "mixed-1", "bad-1"] as const;

const cleanups = useCleanups();

let dir: string;
let nats: NatsServer;
let creds: WriteNatsConfigResult;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "executors-pipeline-"));
  creds = await writeNatsConfig({ nodes: [...NODES], outDir: join(dir, "nats") });
  nats = await startNats({ config: await readFile(creds.configFile, "utf8"), jetstream: false });
});
afterAll(async () => {
  await nats?.stop({ graceMs: 1000 });
  if (dir) await rm(dir, { recursive: true, force: true });
});

const seed = (name: string): string => creds.credentials.find((c) => c.name === name)?.file ?? "";
const tempDir = (): Promise<string> => tempDirIn(cleanups, "executors-pipeline-");

/** The control-plane double, with the control plane's credentials; log lines read `LEVEL text`. */
const controlPlane = (): Promise<TestControlPlane> =>
  connectControlPlane(cleanups, { url: nats.url, credsFile: seed("control-plane") }, { logStream: false });

function executorConfig(pipeline: Partial<ExecutorsConfig["pipeline"]>): ExecutorsConfig {
  return {
    ...DEFAULT_AGENT_CONFIG.executors,
    pipeline: { ...DEFAULT_AGENT_CONFIG.executors.pipeline, healthWindowMs: 200, ...pipeline },
  };
}

async function startAgent(
  nodeId: string,
  config: ExecutorsConfig,
  fastFiles = false,
): Promise<{ agent: Agent; dataDir: string }> {
  const dataDir = await tempDir();
  const agent = await startTestAgent(cleanups, {
    nodeId,
    dataDir,
    nats: { servers: [nats.url], credsFile: seed(nodeId), pingIntervalMs: 1000 },
    heartbeatIntervalMs: 100,
    executorConfig: config,
    // Without `executors` the agent builds its built-in ones from `executorConfig`; the file
    // tests pass them explicitly only to poll files faster than the 250 ms default.
    ...(fastFiles
      ? {
          executors: createBuiltinExecutors({
            config,
            dataDir,
            pipeline: { file: { pollIntervalMs: 20, scanIntervalMs: 100, rotateWaitMs: 300 } },
          }),
        }
      : {}),
  });
  return { agent, dataDir };
}

function pipeline(executionId: string, config: Record<string, unknown>, maxErrorRate = 0.1): Assignment {
  expect(validateJobConfig("pipeline", config)).toEqual([]); // what the control plane accepts at submit
  return create(AssignmentSchema, {
    executionId,
    jobId: `job-${executionId}`,
    jobVersion: 1,
    type: "pipeline",
    config: config as JsonObject,
    desiredState: "running",
    maxErrorRate,
  });
}

/** Collects pipeline output messages a node publishes on its data subjects. */
function dataOf(
  cp: TestControlPlane,
  pattern: string,
): Array<{ node: string; subject: string; body: unknown }> {
  const got: Array<{ node: string; subject: string; body: unknown }> = [];
  const off = cp.bus.subscribe(pattern, (m) => {
    const node = m.subject.split(".")[2] ?? "";
    got.push({ node, subject: m.subject, body: JSON.parse(new TextDecoder().decode(m.data)) });
  });
  cleanups.push(off);
  return got;
}

describe("pipeline executor on real NATS", () => {
  it("runs a generate → JSONata → nats pipeline on 3 agents: messages flow, counters rise, health is reported", async () => {
    const cp = await controlPlane();
    const nodes = ["pipe-1", "pipe-2", "pipe-3"];
    const out = dataOf(cp, "ep.node.*.out.data.metrics.>");
    await cp.bus.flush();
    const config = {
      input: { generate: { interval: "20ms", message: { metric: "cpu", value: 21 }, seq_field: "seq" } },
      pipeline: {
        processors: [{ mapping: '{"metric": $uppercase(metric), "seq": seq, "value": value * 2}' }],
      },
      output: { nats: { subject: "metrics.cpu" } },
    };
    for (const node of nodes) {
      await startAgent(node, executorConfig({ natsSubjectsAllowed: ["metrics.>"] }));
      cp.set(node, 1, [pipeline(`p-${node}`, config)]);
    }
    await waitFor(() => nodes.every((n) => out.filter((m) => m.node === n).length >= 5), {
      timeoutMs: 10_000,
      message: "5 mapped messages from every node",
    });
    for (const n of nodes) {
      const mine = out.filter((m) => m.node === n);
      expect(mine[0]).toEqual({
        node: n,
        subject: `ep.node.${n}.out.data.metrics.cpu`,
        body: { metric: "CPU", seq: 1, value: 42 },
      });
    }
    for (const n of nodes) {
      const first = await waitFor(
        () => (cp.status(n, `p-${n}`)?.counters?.messagesOut ?? 0n) > 0n && cp.status(n, `p-${n}`),
      );
      const later = await waitFor(
        () => {
          const s = cp.status(n, `p-${n}`);
          return s && (s.counters?.messagesIn ?? 0n) > (first.counters?.messagesIn ?? 0n) + 5n && s;
        },
        { message: `counters of ${n} rising` },
      );
      expect(later.state).toBe("running");
      expect(later.health).toMatchObject({ healthy: true, errorRate: 0 });
      expect(later.health?.since).toBeDefined();
      expect(later.counters?.messagesErrored).toBe(0n);
      expect(later.counters?.messagesOut).toBe(later.counters?.messagesIn);
    }
    const running = cp.events.find((e) => e.nodeId === "pipe-1" && e.status?.state === "running");
    expect(running?.status?.health?.healthy).toBe(true);
    expect(cp.logLines("p-pipe-1").join("\n")).toMatch(
      /pipeline running: generate every 20 ms → 1 processor\(s\) → nats out\.data\.metrics\.cpu/,
    );
  });

  it("tails a file through appends, rotation by rename and copytruncate", async () => {
    const cp = await controlPlane();
    const logs = await tempDir();
    const file = join(logs, "app.log");
    await writeFile(file, "before the pipeline started (not read)\n");
    const out = dataOf(cp, "ep.node.tail-1.out.data.logs.>");
    await cp.bus.flush();
    await startAgent(
      "tail-1",
      executorConfig({ allowedInputPaths: [logs], natsSubjectsAllowed: ["logs.>"] }),
      true,
    );
    cp.set("tail-1", 1, [
      pipeline("tail", {
        input: { file: { paths: [join(logs, "*.log")] } },
        pipeline: { processors: [{ mapping: '$merge([$, {"seen": true}])' }] },
        output: { nats: { subject: "logs.app" } },
      }),
    ]);
    await waitFor(() => cp.status("tail-1", "tail")?.state === "running", { message: "the tail running" });
    const lines = () =>
      out.map((m) => (m.body as { line?: string; msg?: string }).line ?? (m.body as { msg: string }).msg);

    await appendFile(file, "one\n");
    await appendFile(file, '{"msg": "two", "level": "info"}\n');
    await waitFor(() => out.length === 2, { message: "two appended lines" });
    expect(out[0]?.body).toEqual({ line: "one", path: file, seen: true });
    expect(out[1]?.body).toEqual({ msg: "two", level: "info", seen: true });

    // logrotate's default: rename, then a new file; the writer still has the old one open briefly.
    await rename(file, join(logs, "app.log.1"));
    await appendFile(join(logs, "app.log.1"), "three (late, to the rotated file)\n");
    await writeFile(file, "four (new file)\n");
    await waitFor(() => out.length === 4, { message: "lines around a rename rotation" });

    // logrotate's copytruncate: the file is truncated in place.
    await truncate(file, 0);
    await waitFor(() => cp.logLines("tail").some((l) => l.includes("was truncated")), {
      message: "the truncation noticed",
    });
    await appendFile(file, "five (after truncate)\n");
    await waitFor(() => out.length === 5, { message: "the line after copytruncate" });
    expect(lines().sort()).toEqual([
      "five (after truncate)",
      "four (new file)",
      "one",
      "three (late, to the rotated file)",
      "two",
    ]);
    await waitFor(() => cp.status("tail-1", "tail")?.counters?.messagesOut === 5n);
  });

  it('goes unhealthy with error rate 1.0 on $error("boom") while the agent keeps serving another execution', async () => {
    const cp = await controlPlane();
    const out = dataOf(cp, "ep.node.mixed-1.out.data.ok.>");
    await cp.bus.flush();
    await startAgent("mixed-1", executorConfig({ natsSubjectsAllowed: ["ok.>"] }));
    cp.set("mixed-1", 1, [
      pipeline("bad", {
        input: { generate: { interval: "10ms", message: { v: 1 } } },
        pipeline: { processors: [{ mapping: '$error("boom")' }] },
        output: { discard: {} },
      }),
      pipeline("good", {
        input: { generate: { interval: "10ms", message: { v: 1 } } },
        pipeline: { processors: [{ mapping: '{"v": v + 1}' }] },
        output: { nats: { subject: "ok.v" } },
      }),
    ]);
    const bad = await waitFor(
      () => {
        const s = cp.status("mixed-1", "bad");
        return s?.health?.healthy === false && s;
      },
      { timeoutMs: 5000, message: "the bad pipeline unhealthy" },
    );
    expect(bad.state).toBe("running"); // errored messages are dropped, the pipeline goes on
    expect(bad.health?.errorRate).toBe(1);
    expect(bad.counters?.messagesErrored).toBeGreaterThan(0n);
    expect(bad.counters?.messagesOut).toBe(0n);

    const before = out.length;
    await waitFor(() => out.length > before + 10, { message: "the good pipeline still flowing" });
    const good = cp.status("mixed-1", "good");
    expect(good?.health).toMatchObject({ healthy: true, errorRate: 0 });
    expect(out.at(-1)?.body).toEqual({ v: 2 });
    await waitFor(() => cp.logLines("bad").some((l) => l.startsWith("WARN unhealthy: error rate 1.00")));
    expect(cp.logLines("bad")).toContain(
      "WARN processors[0] (mapping) failed: boom at position 7 (D3137); the message was dropped",
    );
  });

  it("rejects bad inputs at submit where it can, and otherwise fails the execution without hurting the agent", async () => {
    // Submit time: invalid JSONata (with jsonata's position), a config that fails zod, a missing path.
    expect(
      validateJobConfig("pipeline", {
        input: { generate: { interval: "1s", message: {} } },
        pipeline: { processors: [{ mapping: '{"a": $uppercase(name}' }] },
        output: { stdout: {} },
      }),
    ).toEqual([
      {
        field: "spec.config.pipeline.processors[0].mapping",
        description: expect.stringMatching(/^is not valid JSONata: .* at position \d+ \(S\d{4}\)$/),
      },
    ]);
    expect(validateJobConfig("pipeline", { input: { file: {} }, output: { stdout: {} } })).toEqual([
      { field: "spec.config.input.file.paths", description: "is required" },
    ]);
    expect(
      validateJobConfig("pipeline", {
        input: { generate: { interval: "fast", message: {} } },
        output: { kafka: {} },
      }).map((d) => d.field),
    ).toEqual(["spec.config.input.generate.interval", "spec.config.output.kafka", "spec.config.output"]);

    // On the node: a control plane of another version sends them anyway; a directory that does not
    // exist can only be found out there.
    const cp = await controlPlane();
    const logs = await tempDir();
    await startAgent("bad-1", executorConfig({ allowedInputPaths: [logs] }));
    const raw = (executionId: string, config: Record<string, unknown>) =>
      create(AssignmentSchema, {
        executionId,
        jobId: `job-${executionId}`,
        type: "pipeline",
        config: config as JsonObject,
        desiredState: "running",
        maxErrorRate: 0.1,
      });
    cp.set("bad-1", 1, [
      raw("jsonata", {
        input: { generate: { interval: "1s", message: {} } },
        pipeline: { processors: [{ mapping: '{"a": $uppercase(name}' }] },
        output: { discard: {} },
      }),
      raw("zod", { input: { generate: { interval: "fast", message: {} } }, output: { discard: {} } }),
      raw("missing-dir", {
        input: { file: { paths: [join(logs, "no-such-dir", "*.log")] } },
        output: { discard: {} },
      }),
      raw("not-allowed", { input: { file: { paths: ["/etc/*.conf"] } }, output: { discard: {} } }),
      raw("fine", { input: { generate: { interval: "10ms", message: {} } }, output: { discard: {} } }),
    ]);
    const final = async (id: string) =>
      waitFor(
        () => cp.events.find((e) => e.status?.executionId === id && e.status.state === "error")?.status,
        {
          message: `execution ${id} in error`,
        },
      );
    expect((await final("jsonata")).exception).toMatch(
      /^the job config is invalid: spec\.config\.pipeline\.processors\[0\]\.mapping: is not valid JSONata: .* at position \d+/,
    );
    expect((await final("zod")).exception).toBe(
      'the job config is invalid: spec.config.input.generate.interval: "fast" is not a duration such as "100ms" or "1s"',
    );
    expect((await final("missing-dir")).exception).toMatch(
      /^input\.file\.paths\[0\]: directory .*no-such-dir of .* does not exist on this node$/,
    );
    expect((await final("not-allowed")).exception).toBe(
      `input.file.paths[0] "/etc/*.conf" is not allowed by agent.yaml executors.pipeline.allowed_input_paths (allowed: ${logs})`,
    );
    // The agent is fine: it keeps heartbeating and the valid execution keeps running.
    const n = cp.heartbeats.length;
    await waitFor(
      () => cp.heartbeats.length > n + 2 && (cp.status("bad-1", "fine")?.counters?.messagesIn ?? 0n) > 5n,
    );
    expect(cp.status("bad-1", "fine")?.state).toBe("running");
  });
});
