/**
 * The built-in executors against a context double (no agent, no NATS): what they run, refuse,
 * report and log. The same executors run inside real agents over NATS in
 * test/integration/executors-*.test.ts.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { create, type JsonObject } from "@bufbuild/protobuf";
import { type Assignment, AssignmentSchema } from "@edgeplane/api";
import { MemoryBroker, subjects } from "@edgeplane/bus";
import { createLogger } from "@edgeplane/core";
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_AGENT_CONFIG, type ExecExecutorConfig, type ExecutorsConfig } from "../config.js";
import { AgentDataChannel, dataSubject } from "../data-channel.js";
import { isTerminalExecutionState } from "../execution-state.js";
import type { ExecutionContext, ExecutionHandle, ExecutionUpdate, Executor } from "../executor.js";
import { createBuiltinExecutors } from "./builtin.js";
import { createConfigExecutor, restoreConfigBackup } from "./config.js";
import { createExecExecutor } from "./exec.js";
import { createPipelineExecutor } from "./pipeline/executor.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "executors-"));
  cleanups.push(() => rm(d, { recursive: true, force: true }));
  return d;
}

const quiet = createLogger({ component: "test", level: "error", sink: () => {} });

interface Run {
  readonly handle: ExecutionHandle;
  readonly updates: ExecutionUpdate[];
  readonly logs: string[];
  readonly controller: AbortController;
  /** Resolves with the first terminal update. */
  readonly final: Promise<ExecutionUpdate>;
  state(): string | undefined;
}

async function start(
  executor: Executor,
  type: string,
  config: unknown,
  extra: { maxErrorRate?: number; data?: AgentDataChannel; timeoutS?: number } = {},
): Promise<Run> {
  const dataDir = await tempDir();
  const updates: ExecutionUpdate[] = [];
  const logs: string[] = [];
  const controller = new AbortController();
  let resolveFinal!: (u: ExecutionUpdate) => void;
  const final = new Promise<ExecutionUpdate>((r) => {
    resolveFinal = r;
  });
  const ctx: ExecutionContext = {
    nodeId: "n1",
    executionId: "e1",
    attempt: 1,
    signal: controller.signal,
    dataDir,
    clock: { now: () => Date.now() },
    logger: quiet,
    data: extra.data ?? new AgentDataChannel("n1"),
    log: (level, stream, text) => logs.push(`${level} ${stream} ${text}`),
    emit: (u) => {
      updates.push(u);
      if (u.state && isTerminalExecutionState(u.state)) resolveFinal(u);
    },
  };
  const a: Assignment = create(AssignmentSchema, {
    executionId: "e1",
    jobId: "job-1",
    jobVersion: 3,
    type,
    config: config as JsonObject,
    desiredState: "running",
    maxErrorRate: extra.maxErrorRate ?? 0.1,
  });
  const handle = executor.start(a, ctx);
  cleanups.push(async () => {
    controller.abort();
    await handle.stop("canceled");
  });
  return {
    handle,
    updates,
    logs,
    controller,
    final,
    state: () => updates.filter((u) => u.state).at(-1)?.state,
  };
}

async function until<T>(fn: () => T | undefined | false, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 5));
  }
}

const execConfig = (over: Partial<ExecExecutorConfig> = {}): ExecExecutorConfig => ({
  ...DEFAULT_AGENT_CONFIG.executors.exec,
  enabled: true,
  allow: [
    { command: "uname", args: ["-a"] },
    { command: "sh", args: "any" },
  ],
  killGraceMs: 200,
  ...over,
});

describe("exec executor", () => {
  it("runs an allowed query and returns stdout as its result", async () => {
    const r = await start(createExecExecutor({ config: execConfig() }), "query", {
      command: "uname",
      args: ["-a"],
    });
    const final = await r.final;
    expect(final).toMatchObject({ state: "finished", exitCode: 0, resultTruncated: false });
    expect(typeof final.result).toBe("string");
    expect(final.result).toMatch(/\S/);
    expect(r.updates[0]).toEqual({ state: "running" });
    expect(r.logs.some((l) => l.startsWith("INFO stdout "))).toBe(true);
  });

  it("parses JSON output, caps a large result and reports the cap", async () => {
    const json = await start(createExecExecutor({ config: execConfig() }), "query", {
      command: "sh",
      args: ["-c", "echo '{\"disk\": 42}'"],
    });
    expect((await json.final).result).toEqual({ disk: 42 });
    const big = await start(createExecExecutor({ config: execConfig({ maxResultBytes: 1000 }) }), "query", {
      command: "sh",
      args: ["-c", "head -c 100000 /dev/zero | tr '\\0' x"],
      result_max_bytes: 5000,
    });
    const final = await big.final;
    expect(final).toMatchObject({ state: "finished", resultTruncated: true, resultBytes: 100_000 });
    expect((final.result as string).length).toBe(1000);
    expect(big.logs.join("\n")).toMatch(/cut at 1000 bytes of 100000/);
  });

  it("refuses what agent.yaml does not allow, naming the rule", async () => {
    const exec = createExecExecutor({ config: execConfig() });
    expect(await (await start(exec, "query", { command: "rm", args: ["-rf", "/"] })).final).toEqual({
      state: "error",
      exception: 'command "rm" is not allowed by agent.yaml executors.exec.allow (allowed: uname, sh)',
    });
    expect((await (await start(exec, "query", { command: "uname", args: ["-r"] })).final).exception).toMatch(
      /with arguments \["-r"\] is not allowed/,
    );
    expect(
      (await (await start(exec, "update", { command: "sh", env: { LD_PRELOAD: "x" } })).final).exception,
    ).toBe(
      'environment variable "LD_PRELOAD" is not allowed by agent.yaml executors.exec.env_allow (allowed: none)',
    );
    expect((await (await start(exec, "query", { command: "uname -a" })).final).exception).toMatch(
      /^the job config is invalid: spec\.config\.command: must be a program, not a shell line/,
    );
  });

  it("passes allowed env, runs in working_dir, and fails with the exit code and last stderr line", async () => {
    const dir = await tempDir();
    const exec = createExecExecutor({ config: execConfig({ envAllow: ["APP_*"] }) });
    const ok = await start(exec, "query", {
      command: "sh",
      args: ["-c", "echo $APP_MODE $(pwd) $SECRET"],
      env: { APP_MODE: "fast" },
      working_dir: dir,
    });
    expect((await ok.final).result).toBe(`fast ${dir}`);
    const bad = await start(exec, "update", {
      command: "sh",
      args: ["-c", "echo working; echo oops >&2; exit 4"],
    });
    expect(await bad.final).toEqual({ state: "error", exception: "exited with code 4: oops", exitCode: 4 });
    const missing = await start(exec, "update", { command: "sh", working_dir: "/nonexistent/dir" });
    expect((await missing.final).exception).toBe("working_dir /nonexistent/dir does not exist on this node");
  });

  it("stops the process group when stopped", async () => {
    const r = await start(createExecExecutor({ config: execConfig() }), "update", {
      command: "sh",
      args: ["-c", "sleep 30"],
    });
    await until(() => r.logs.some((l) => l.includes("(pid ")));
    r.controller.abort("timed_out");
    await r.handle.stop("timed_out");
    expect(r.state()).toBe("canceled"); // the agent turns it into timed_out
    expect(r.logs.join("\n")).toMatch(/its process group was terminated/);
  });

  it("refuses to start with a bare rule name that is not on PATH", () => {
    expect(() =>
      createExecExecutor({ config: execConfig({ allow: [{ command: "no-such-tool-y", args: [] }] }) }),
    ).toThrow(/executors\.exec\.allow\[0\]\.command: "no-such-tool-y" is not an executable/);
  });
});

describe("config executor", () => {
  async function setup(reloadAllow = [{ command: "sh", args: "any" as const }]) {
    const root = await tempDir();
    const backupDir = join(await tempDir(), "config-backups");
    const executor = createConfigExecutor({
      config: { enabled: true, rootDir: root, reloadAllow, killGraceMs: 200 },
      backupDir,
    });
    return { root, backupDir, executor };
  }

  it("writes files atomically with their modes, keeps the previous content, and reloads", async () => {
    const { root, backupDir, executor } = await setup();
    await mkdir(join(root, "app"));
    await writeFile(join(root, "app", "a.conf"), "old a\n", { mode: 0o600 });
    const marker = join(root, "reloaded");
    const r = await start(executor, "config", {
      files: [
        { path: "app/a.conf", content: "new a\n" },
        { path: "app/sub/b.conf", content: "b\n", mode: "0640" },
      ],
      reload: { command: "sh", args: ["-c", `echo ok > ${marker}`] },
    });
    expect(await r.final).toEqual({ state: "finished", exitCode: 0, progress: 1 });
    expect(await readFile(join(root, "app", "a.conf"), "utf8")).toBe("new a\n");
    expect((await stat(join(root, "app", "a.conf"))).mode & 0o777).toBe(0o600); // kept
    expect((await stat(join(root, "app", "sub", "b.conf"))).mode & 0o777).toBe(0o640);
    expect(await readFile(marker, "utf8")).toBe("ok\n");

    // The previous content is kept and can be put back.
    expect(await restoreConfigBackup({ backupDir, rootDir: root, jobId: "job-1" })).toEqual([
      "app/a.conf",
      "app/sub/b.conf",
    ]);
    expect(await readFile(join(root, "app", "a.conf"), "utf8")).toBe("old a\n");
    await expect(stat(join(root, "app", "sub", "b.conf"))).rejects.toThrow(/ENOENT/);
  });

  it("restores the previous content when the reload fails", async () => {
    const { root, executor } = await setup();
    await writeFile(join(root, "a.conf"), "good\n");
    const r = await start(executor, "config", {
      files: [{ path: "a.conf", content: "broken\n" }],
      reload: { command: "sh", args: ["-c", "echo 'config test failed' >&2; exit 1"] },
    });
    expect(await r.final).toEqual({
      state: "error",
      exitCode: 1,
      exception:
        "the reload command exited with code 1: config test failed; the previous content of 1 file(s) was restored",
    });
    expect(await readFile(join(root, "a.conf"), "utf8")).toBe("good\n");
  });

  it("skips unchanged files and the reload when nothing changed", async () => {
    const { root, executor } = await setup();
    await writeFile(join(root, "a.conf"), "same\n", { mode: 0o644 });
    await chmod(join(root, "a.conf"), 0o644);
    const r = await start(executor, "config", {
      files: [{ path: "a.conf", content: "same\n" }],
      reload: { command: "sh", args: ["-c", "exit 1"] },
    });
    expect((await r.final).state).toBe("finished");
    expect(r.logs.join("\n")).toMatch(/nothing changed; the reload command was not run/);
  });

  it("refuses symlinks under the root, reloads not allowed, and invalid configs", async () => {
    const { root, executor } = await setup([]);
    const outside = await tempDir();
    await symlink(outside, join(root, "link"));
    const r = await start(executor, "config", { files: [{ path: "link/passwd", content: "x" }] });
    expect((await r.final).exception).toMatch(
      /link is a symbolic link; config jobs never write through links/,
    );
    const reload = await start(executor, "config", {
      files: [{ path: "a", content: "x" }],
      reload: { command: "systemctl", args: ["reload", "x"] },
    });
    expect((await reload.final).exception).toBe(
      'command "systemctl" is not allowed by agent.yaml executors.config.reload_allow (allowed: none)',
    );
    const bad = await start(executor, "config", { files: [{ path: "../escape", content: "x" }] });
    expect((await bad.final).exception).toMatch(
      /spec\.config\.files\[0\]\.path: must not contain "\.\." segments/,
    );
  });
});

describe("pipeline executor", () => {
  const policy = { ...DEFAULT_AGENT_CONFIG.executors.pipeline, healthWindowMs: 40 };

  it("runs generate → mapping → stdout, counting and healthy", async () => {
    const stdout = new PassThrough();
    let text = "";
    stdout.on("data", (c: Buffer) => {
      text += c.toString();
    });
    const r = await start(createPipelineExecutor({ config: policy, stdout }), "pipeline", {
      input: { generate: { interval: "1ms", message: { v: 1 }, count: 20, seq_field: "seq" } },
      pipeline: { processors: [{ mapping: '{"seq": seq, "double": v * 2}' }, { filter: "seq % 2 = 0" }] },
      output: { stdout: {} },
    });
    const final = await r.final;
    expect(final).toMatchObject({
      state: "finished",
      counters: { messagesIn: 20, messagesOut: 10, messagesFiltered: 10, messagesErrored: 0 },
    });
    expect(text.trim().split("\n")[0]).toBe('{"seq":2,"double":2}');
    expect(r.updates[0]).toMatchObject({ state: "running", health: { healthy: true, errorRate: 0 } });
  });

  it("goes unhealthy when every message errors, logs a sample, and keeps running", async () => {
    const r = await start(
      createPipelineExecutor({ config: policy, errorLogsPerWindow: 2 }),
      "pipeline",
      {
        input: { generate: { interval: "1ms", message: { v: 1 } } },
        pipeline: { processors: [{ mapping: '$error("boom")' }] },
        output: { discard: {} },
      },
      { maxErrorRate: 0.1 },
    );
    const unhealthy = await until(() => r.updates.find((u) => u.health?.healthy === false));
    expect(unhealthy.health?.errorRate).toBe(1);
    expect(r.handle.status()).toMatchObject({ health: { healthy: false, errorRate: 1 } });
    expect(r.state()).toBe("running");
    const warns = r.logs.filter((l) => l.includes("failed: boom"));
    expect(warns[0]).toBe(
      "WARN agent processors[0] (mapping) failed: boom at position 7 (D3137); the message was dropped",
    );
    await until(() => r.logs.some((l) => /more messages errored in the last window/.test(l)));
    await until(() => r.logs.some((l) => l.startsWith("WARN agent unhealthy: error rate 1.00")));
  });

  it("refuses what agent.yaml does not allow, and fails on a missing directory", async () => {
    const exec = createPipelineExecutor({ config: policy });
    expect(
      (
        await (
          await start(exec, "pipeline", { input: { file: { paths: ["/etc/*"] } }, output: { stdout: {} } })
        ).final
      ).exception,
    ).toBe(
      'input.file.paths[0] "/etc/*" is not allowed by agent.yaml executors.pipeline.allowed_input_paths (allowed: none)',
    );
    const dir = await tempDir();
    const allowed = createPipelineExecutor({ config: { ...policy, allowedInputPaths: [dir] } });
    const missing = await start(allowed, "pipeline", {
      input: { file: { paths: [join(dir, "nope", "*.log")] } },
      output: { discard: {} },
    });
    expect((await missing.final).exception).toMatch(
      /input\.file\.paths\[0\]: directory .*nope .* does not exist on this node/,
    );
    const invalid = await start(exec, "pipeline", {
      input: { generate: { interval: "1s", message: {} } },
      pipeline: { processors: [{ mapping: "{ a: (" }] },
      output: { stdout: {} },
    });
    expect((await invalid.final).exception).toMatch(
      /^the job config is invalid: spec\.config\.pipeline\.processors\[0\]\.mapping: is not valid JSONata: .* at position 6 \(S0203\)$/,
    );
  });

  it("publishes to and reads from the node's data subjects", async () => {
    const broker = new MemoryBroker();
    const bus = broker.connect();
    const data = new AgentDataChannel("n1");
    data.attach(bus);
    const seen: string[] = [];
    bus.subscribe(dataSubject("n1", "out", ">"), (m) =>
      seen.push(`${m.subject} ${new TextDecoder().decode(m.data)}`),
    );
    const exec = createPipelineExecutor({
      config: { ...policy, natsSubjectsAllowed: ["metrics.>", "cmd.*"] },
    });
    const r = await start(
      exec,
      "pipeline",
      {
        input: { nats: { subject: "cmd.*" } },
        pipeline: { processors: [{ mapping: '{"got": x}' }] },
        output: { nats: { subject: "metrics.out" } },
      },
      { data },
    );
    await until(() => r.state() === "running");
    bus.publish(`${subjects.nodeInbound("n1").slice(0, -1)}data.cmd.a`, new TextEncoder().encode('{"x": 7}'));
    await until(() => seen.length === 1);
    expect(seen).toEqual(['ep.node.n1.out.data.metrics.out {"got":7}']);
  });
});

describe("built-in executors", () => {
  it("enables only what agent.yaml enables", () => {
    const names = (config: ExecutorsConfig) =>
      createBuiltinExecutors({ config, dataDir: "/tmp/x" }).map((e) => `${e.name}:${e.types.join("+")}`);
    expect(names(DEFAULT_AGENT_CONFIG.executors)).toEqual(["pipeline:pipeline"]);
    expect(
      names({
        pipeline: { ...DEFAULT_AGENT_CONFIG.executors.pipeline, enabled: false },
        exec: execConfig(),
        config: { enabled: true, rootDir: "/tmp", reloadAllow: [], killGraceMs: 1 },
      }),
    ).toEqual(["exec:query+update", "config:config"]);
  });
});
