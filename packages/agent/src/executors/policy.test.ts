import { parseJobConfig } from "@edgeplane/core";
import { describe, expect, it } from "vitest";
import { DEFAULT_AGENT_CONFIG, type PipelineExecutorConfig } from "../config.js";
import { expandGlob, literalDir, matchGlob, pathAllowed, patternAllowed } from "./paths.js";
import { pipelinePolicyProblem } from "./pipeline/executor.js";
import {
  argsAllowed,
  commandEnv,
  envProblem,
  findOnPath,
  matchCommand,
  resolveCommandRules,
  subjectCovered,
} from "./policy.js";

const PATH = "/usr/local/bin:/usr/bin:/bin";

describe("command allow lists", () => {
  const rules = resolveCommandRules(
    [
      { command: "uname", args: ["-a"] },
      { command: "/usr/bin/df", args: "any" },
      { command: "/usr/bin/systemctl", args: { prefix: ["status"] } },
      { command: "sleep", args: [] },
    ],
    "executors.exec.allow",
    PATH,
  );

  it("resolves bare names on PATH once, and refuses a name that is not there", () => {
    expect(rules.map((r) => r.path)).toEqual([
      findOnPath("uname", PATH),
      "/usr/bin/df",
      "/usr/bin/systemctl",
      findOnPath("sleep", PATH),
    ]);
    expect(() =>
      resolveCommandRules([{ command: "no-such-tool-x", args: [] }], "executors.exec.allow", PATH),
    ).toThrow(
      /executors\.exec\.allow\[0\]\.command: "no-such-tool-x" is not an executable on the agent's PATH/,
    );
    expect(findOnPath("uname", "relative/bin")).toBeUndefined();
  });

  it("matches bare and absolute commands, and runs the rule's resolved path", () => {
    const uname = findOnPath("uname", PATH);
    expect(matchCommand(rules, "executors.exec.allow", "uname", ["-a"])).toMatchObject({
      ok: true,
      path: uname,
    });
    expect(matchCommand(rules, "executors.exec.allow", uname ?? "", ["-a"])).toMatchObject({ ok: true });
    expect(matchCommand(rules, "executors.exec.allow", "df", ["-h", "/"])).toMatchObject({
      ok: true,
      path: "/usr/bin/df",
    });
    expect(matchCommand(rules, "executors.exec.allow", "systemctl", ["status", "nginx"])).toMatchObject({
      ok: true,
    });
  });

  it("refuses with a sentence naming the rule", () => {
    expect(matchCommand(rules, "executors.exec.allow", "rm", ["-rf", "/"])).toEqual({
      ok: false,
      message:
        'command "rm" is not allowed by agent.yaml executors.exec.allow (allowed: uname, /usr/bin/df, /usr/bin/systemctl, sleep)',
    });
    expect(matchCommand(rules, "executors.exec.allow", "uname", ["-r"])).toEqual({
      ok: false,
      message:
        'command "uname" with arguments ["-r"] is not allowed by agent.yaml executors.exec.allow (allowed for uname: ["-a"])',
    });
    expect(matchCommand(rules, "executors.exec.allow", "systemctl", ["restart", "x"])).toMatchObject({
      ok: false,
      message: expect.stringContaining('arguments starting with ["status"]'),
    });
    expect(matchCommand(rules, "executors.exec.allow", "/tmp/uname", ["-a"])).toMatchObject({ ok: false });
    expect(matchCommand([], "executors.exec.allow", "uname", [])).toMatchObject({
      ok: false,
      message: expect.stringContaining("(allowed: none)"),
    });
  });

  it.each([
    ["any", ["x", "y"], true],
    [[], [], true],
    [[], ["x"], false],
    [["a", "b"], ["a", "b"], true],
    [["a", "b"], ["a"], false],
    [{ prefix: ["a"] }, ["a"], true],
    [{ prefix: ["a"] }, ["a", "z"], true],
    [{ prefix: ["a"] }, ["b", "a"], false],
  ] as const)("args rule %j with %j → %s", (rule, args, ok) => {
    expect(argsAllowed(rule, args)).toBe(ok);
  });
});

describe("environment", () => {
  it("allows names and prefixes, refuses the rest by name", () => {
    expect(envProblem(["LC_ALL", "APP_*"], { LC_ALL: "C", APP_MODE: "x" })).toBeUndefined();
    expect(envProblem(["LC_ALL"], { LD_PRELOAD: "/tmp/x.so", PATH: "/tmp" })).toBe(
      'environment variables "LD_PRELOAD", "PATH" are not allowed by agent.yaml executors.exec.env_allow (allowed: LC_ALL)',
    );
    expect(envProblem([], { A: "1" })).toMatch(/\(allowed: none\)/);
  });

  it("passes only a few of the agent's variables, then the job's", () => {
    expect(commandEnv({ PATH: "/bin", SECRET_TOKEN: "x", HOME: "/root" }, { LC_ALL: "C" })).toEqual({
      PATH: "/bin",
      HOME: "/root",
      LC_ALL: "C",
    });
  });
});

describe("data subjects", () => {
  it.each([
    ["metrics.cpu", "metrics.>", true],
    ["metrics", "metrics.>", false],
    ["metrics.cpu.x", "metrics.*", false],
    ["metrics.*", "metrics.*", true],
    ["metrics.>", "metrics.*", false],
    ["metrics.>", "metrics.>", true],
    ["metrics.>", ">", true],
    ["a.b", "a.b", true],
    ["a.b", "a.c", false],
  ])("%s within %s → %s", (subject, pattern, ok) => {
    expect(subjectCovered(subject, pattern)).toBe(ok);
  });
});

describe("paths", () => {
  it("matches globs segment by segment, hidden files only explicitly", () => {
    expect(matchGlob("/var/log/*.log", "/var/log/app.log")).toBe(true);
    expect(matchGlob("/var/log/*.log", "/var/log/a/app.log")).toBe(false);
    expect(matchGlob("/var/log/*.log", "/var/log/.hidden.log")).toBe(false);
    expect(matchGlob("/var/log/.*.log", "/var/log/.hidden.log")).toBe(true);
    expect(matchGlob("/var/log/app?.log", "/var/log/app1.log")).toBe(true);
    expect(matchGlob("/var/**/x.log", "/var/a/b/x.log")).toBe(true);
    expect(matchGlob("/var/**/x.log", "/var/x.log")).toBe(true);
    expect(matchGlob("/var/log/a+b(1).log", "/var/log/a+b(1).log")).toBe(true);
  });

  it("allows what an entry matches and everything under it", () => {
    expect(pathAllowed(["/var/log/app"], "/var/log/app/x.log")).toBe(true);
    expect(pathAllowed(["/var/log/app"], "/var/log/app")).toBe(true);
    expect(pathAllowed(["/var/log/app"], "/var/log/application/x.log")).toBe(false);
    expect(pathAllowed(["/srv/*/logs"], "/srv/a/logs/x.log")).toBe(true);
    expect(pathAllowed(["/"], "/etc/shadow")).toBe(true);
    expect(pathAllowed([], "/tmp/x")).toBe(false);
  });

  it("checks that every path a job's glob can match is allowed", () => {
    expect(patternAllowed(["/var/log/app"], "/var/log/app/*.log")).toBe(true);
    expect(patternAllowed(["/var/log/app/*.log"], "/var/log/app/*.log")).toBe(true);
    expect(patternAllowed(["/var/log/*"], "/var/log/*/x.log")).toBe(true);
    expect(patternAllowed(["/var/log/**"], "/var/log/*/x.log")).toBe(true);
    expect(patternAllowed(["/var/log/app/*.log"], "/var/log/app/*")).toBe(false);
    expect(patternAllowed(["/var/log/app"], "/var/log/*/x.log")).toBe(false);
    expect(patternAllowed(["/var/log/app"], "/var/log")).toBe(false);
    expect(patternAllowed(["/var/log/*"], "/var/log/.*")).toBe(false);
    expect(literalDir("/var/log/app/*.log")).toBe("/var/log/app");
    expect(literalDir("/var/*/app/x.log")).toBe("/var");
    expect(literalDir("/var/log/app.log")).toBe("/var/log");
  });

  it("expands globs to regular files", async () => {
    const { mkdtemp, mkdir, writeFile, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = await mkdtemp(join(tmpdir(), "glob-"));
    try {
      await mkdir(join(dir, "a"));
      await mkdir(join(dir, "b"));
      await mkdir(join(dir, "a", "sub.log"));
      for (const f of ["a/x.log", "a/y.txt", "b/z.log", "a/.h.log"]) await writeFile(join(dir, f), "");
      expect(await expandGlob(`${dir}/*/*.log`)).toEqual([join(dir, "a/x.log"), join(dir, "b/z.log")]);
      expect(await expandGlob(`${dir}/a/x.log`)).toEqual([join(dir, "a/x.log")]);
      expect(await expandGlob(`${dir}/missing/*.log`)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("pipeline policy", () => {
  const policy: PipelineExecutorConfig = {
    ...DEFAULT_AGENT_CONFIG.executors.pipeline,
    allowedInputPaths: ["/var/log/app"],
    allowedOutputPaths: ["/var/spool/edgeplane"],
    natsSubjectsAllowed: ["metrics.>"],
  };
  const config = (input: unknown, output: unknown) => parseJobConfig("pipeline", { input, output });
  const gen = { generate: { interval: "1s", message: {} } };

  it("needs nothing for generate, stdout and discard", () => {
    expect(
      pipelinePolicyProblem(config(gen, { stdout: {} }), DEFAULT_AGENT_CONFIG.executors.pipeline),
    ).toBeUndefined();
    expect(
      pipelinePolicyProblem(config(gen, { discard: {} }), DEFAULT_AGENT_CONFIG.executors.pipeline),
    ).toBeUndefined();
  });

  it("confines file and nats inputs and outputs to agent.yaml, naming the rule", () => {
    expect(
      pipelinePolicyProblem(config({ file: { paths: ["/var/log/app/*.log"] } }, { stdout: {} }), policy),
    ).toBeUndefined();
    expect(pipelinePolicyProblem(config({ file: { paths: ["/etc/*"] } }, { stdout: {} }), policy)).toBe(
      'input.file.paths[0] "/etc/*" is not allowed by agent.yaml executors.pipeline.allowed_input_paths (allowed: /var/log/app)',
    );
    expect(
      pipelinePolicyProblem(
        config({ file: { paths: ["/var/log/app/x"] } }, { stdout: {} }),
        DEFAULT_AGENT_CONFIG.executors.pipeline,
      ),
    ).toMatch(/\(allowed: none\)$/);
    expect(
      pipelinePolicyProblem(config(gen, { file: { path: "/var/spool/edgeplane/out.jsonl" } }), policy),
    ).toBeUndefined();
    expect(pipelinePolicyProblem(config(gen, { file: { path: "/etc/cron.d/x" } }), policy)).toMatch(
      /^output\.file\.path "\/etc\/cron\.d\/x" is not allowed by agent\.yaml executors\.pipeline\.allowed_output_paths/,
    );
    expect(pipelinePolicyProblem(config(gen, { nats: { subject: "metrics.cpu" } }), policy)).toBeUndefined();
    expect(pipelinePolicyProblem(config({ nats: { subject: "commands.>" } }, { stdout: {} }), policy)).toBe(
      'input.nats.subject "commands.>" is not allowed by agent.yaml executors.pipeline.nats_subjects_allowed (allowed: metrics.>)',
    );
  });
});
