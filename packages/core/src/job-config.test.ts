import { describe, expect, it } from "vitest";
import { EdgeplaneError } from "./errors.js";
import {
  compileJsonata,
  dataSubjectProblem,
  describeJsonataError,
  parseJobConfig,
  parseOctalMode,
  validateJobConfig,
} from "./job-config.js";

const pipeline = (over: Record<string, unknown> = {}) => ({
  input: { generate: { interval: "100ms", message: { metric: "cpu" } } },
  pipeline: { processors: [{ mapping: '$merge([$, {"at": $now()}])' }] },
  output: { stdout: {} },
  ...over,
});

function fields(type: string, config: unknown): string[] {
  return validateJobConfig(type, config).map((d) => d.field);
}

function describe1(type: string, config: unknown, field: string): string {
  const d = validateJobConfig(type, config).find((x) => x.field === field);
  if (!d)
    throw new Error(`no problem reported at ${field}: ${JSON.stringify(validateJobConfig(type, config))}`);
  return d.description;
}

describe("validateJobConfig: pipeline", () => {
  it("accepts the Expanso log-processor shape in JSONata form, and every input and output", () => {
    expect(
      validateJobConfig("pipeline", {
        input: { file: { paths: ["/var/log/app/*.log"] } },
        pipeline: { processors: [{ mapping: '$merge([$, {"processed_at": $now()}])' }] },
        output: { stdout: {} },
      }),
    ).toEqual([]);
    for (const input of [
      { generate: { interval: "1ms", message: {}, count: 5, batch_size: 100, seq_field: "seq" } },
      { file: { paths: ["/var/log/a?.log", "/srv/*/x.log"] } },
      { nats: { subject: "sensors.*.temp" } },
      { nats: { subject: "commands.>" } },
    ]) {
      for (const output of [{ stdout: {} }, { discard: {} }, { file: { path: "/var/spool/out.jsonl" } }]) {
        expect(validateJobConfig("pipeline", pipeline({ input, output }))).toEqual([]);
      }
    }
    expect(validateJobConfig("pipeline", pipeline({ output: { nats: { subject: "metrics.cpu" } } }))).toEqual(
      [],
    );
    expect(validateJobConfig("pipeline", { input: pipeline().input, output: { discard: {} } })).toEqual([]);
  });

  it("refuses invalid JSONata at submit, with jsonata's position and code", () => {
    const config = pipeline({ pipeline: { processors: [{ filter: "level = 'x'" }, { mapping: "{ a: (" }] } });
    expect(describe1("pipeline", config, "spec.config.pipeline.processors[1].mapping")).toBe(
      'is not valid JSONata: Expected ")" before end of expression at position 6 (S0203)',
    );
    expect(fields("pipeline", config)).toEqual(["spec.config.pipeline.processors[1].mapping"]);
  });

  it.each([
    [{}, ["spec.config.input", "spec.config.output"]],
    [{ input: {}, output: { stdout: {} } }, ["spec.config.input"]],
    [{ input: { kafka: {} }, output: { stdout: {} } }, ["spec.config.input.kafka", "spec.config.input"]],
    [
      {
        input: { generate: { interval: "1s", message: {} }, nats: { subject: "a" } },
        output: { stdout: {} },
      },
      ["spec.config.input"],
    ],
    [
      { input: { generate: { interval: "soon", message: {} } }, output: { stdout: {} } },
      ["spec.config.input.generate.interval"],
    ],
    [
      { input: { generate: { interval: "0s", message: {} } }, output: { stdout: {} } },
      ["spec.config.input.generate.interval"],
    ],
    [
      { input: { generate: { interval: "1s", message: [] } }, output: { stdout: {} } },
      ["spec.config.input.generate.message"],
    ],
    [
      { input: { generate: { interval: "1s" } }, output: { stdout: {} } },
      ["spec.config.input.generate.message"],
    ],
    [{ input: { file: {} }, output: { stdout: {} } }, ["spec.config.input.file.paths"]],
    [{ input: { file: { paths: [] } }, output: { stdout: {} } }, ["spec.config.input.file.paths"]],
    [
      { input: { file: { paths: ["logs/*.log"] } }, output: { stdout: {} } },
      ["spec.config.input.file.paths[0]"],
    ],
    [
      { input: { file: { paths: ["/var/../etc/shadow"] } }, output: { stdout: {} } },
      ["spec.config.input.file.paths[0]"],
    ],
    [
      { input: { file: { paths: ["/var/log/**/*.log"] } }, output: { stdout: {} } },
      ["spec.config.input.file.paths[0]"],
    ],
    [{ input: { nats: { subject: "a..b" } }, output: { stdout: {} } }, ["spec.config.input.nats.subject"]],
    [{ input: { nats: { subject: "a.>.b" } }, output: { stdout: {} } }, ["spec.config.input.nats.subject"]],
    [
      { input: { generate: { interval: "1s", message: {} } }, output: { nats: { subject: "a.*" } } },
      ["spec.config.output.nats.subject"],
    ],
    [
      { input: { generate: { interval: "1s", message: {} } }, output: { file: { path: "/tmp/*.log" } } },
      ["spec.config.output.file.path"],
    ],
    [
      { input: { generate: { interval: "1s", message: {} } }, output: { stdout: { codec: "lines" } } },
      ["spec.config.output.stdout.codec"],
    ],
    [
      {
        input: { generate: { interval: "1s", message: {} } },
        pipeline: { processors: [{}] },
        output: { discard: {} },
      },
      ["spec.config.pipeline.processors[0]"],
    ],
    [
      {
        input: { generate: { interval: "1s", message: {} } },
        pipeline: { processors: [{ mapping: "$", filter: "true" }] },
        output: { discard: {} },
      },
      ["spec.config.pipeline.processors[0]"],
    ],
    [
      {
        input: { generate: { interval: "1s", message: {} } },
        pipeline: { steps: [] },
        output: { discard: {} },
      },
      ["spec.config.pipeline.steps"],
    ],
    [{ ...pipeline(), colour: "blue" }, ["spec.config.colour"]],
  ])("%j is refused at %j", (config, expected) => {
    expect(fields("pipeline", config)).toEqual(expected);
  });

  it("says what it expected", () => {
    expect(describe1("pipeline", {}, "spec.config.input")).toBe("is required");
    expect(
      describe1("pipeline", { input: { kafka: {} }, output: { stdout: {} } }, "spec.config.input.kafka"),
    ).toBe("is not a known input; use exactly one of generate, file, nats");
    expect(describe1("pipeline", undefined, "spec.config")).toMatch(/is required for a pipeline job/);
    expect(describe1("pipeline", [], "spec.config")).toBe("must be a JSON object");
  });

  it("normalizes for the agent", () => {
    expect(
      parseJobConfig("pipeline", {
        input: { generate: { interval: "1m30s", message: { a: 1 }, count: 3 } },
        pipeline: { processors: [{ mapping: "$" }, { filter: "a > 0" }] },
        output: { file: { path: "/var/spool/x.jsonl" } },
      }),
    ).toEqual({
      input: {
        kind: "generate",
        intervalMs: 90_000,
        message: { a: 1 },
        count: 3,
        batchSize: 1,
        seqField: undefined,
      },
      processors: [
        { kind: "mapping", expression: "$" },
        { kind: "filter", expression: "a > 0" },
      ],
      output: { kind: "file", path: "/var/spool/x.jsonl" },
    });
    expect(
      parseJobConfig("pipeline", {
        input: { file: { paths: ["/var/log/*.log"] } },
        output: { nats: { subject: "logs" } },
      }),
    ).toEqual({
      input: { kind: "file", paths: ["/var/log/*.log"] },
      processors: [],
      output: { kind: "nats", subject: "logs" },
    });
  });
});

describe("validateJobConfig: query and update (exec)", () => {
  it("accepts a command with args, env, working dir and a result cap", () => {
    for (const type of ["query", "update"]) {
      expect(
        validateJobConfig(type, {
          command: "/usr/bin/df",
          args: ["-h", "/"],
          env: { LC_ALL: "C" },
          working_dir: "/tmp",
          result_max_bytes: 4096,
        }),
      ).toEqual([]);
    }
    expect(parseJobConfig("query", { command: "uname", args: ["-a"] })).toEqual({
      command: "uname",
      args: ["-a"],
      env: {},
      workingDir: undefined,
      resultMaxBytes: undefined,
    });
  });

  it.each([
    [{}, "spec.config.command", "is required"],
    [{ command: "uname -a" }, "spec.config.command", "must be a program, not a shell line"],
    [{ command: "bin/tool" }, "spec.config.command", "not a relative path"],
    [{ command: "uname", args: "-a" }, "spec.config.args", "must be an array, not a string"],
    [{ command: "uname", env: { "1x": "a" } }, 'spec.config.env["1x"]', "environment variable name"],
    [{ command: "uname", working_dir: "tmp" }, "spec.config.working_dir", "absolute"],
    [{ command: "uname", result_max_bytes: 10 * 1024 * 1024 }, "spec.config.result_max_bytes", "524288"],
    [{ command: "uname", shell: true }, "spec.config.shell", "is not a field of a query/update config"],
  ])("%j is refused at %s", (config, field, text) => {
    expect(describe1("query", config, field)).toContain(text);
  });
});

describe("validateJobConfig: config", () => {
  it("accepts files with modes and a reload command", () => {
    const config = {
      files: [
        { path: "fluent-bit/outputs.conf", content: "[OUTPUT]\n", mode: "0640" },
        { path: "app.env", content: "A=1\n" },
      ],
      reload: { command: "systemctl", args: ["reload", "fluent-bit"] },
    };
    expect(validateJobConfig("config", config)).toEqual([]);
    expect(parseJobConfig("config", config)).toEqual({
      files: [
        { path: "fluent-bit/outputs.conf", content: "[OUTPUT]\n", mode: 0o640 },
        { path: "app.env", content: "A=1\n", mode: undefined },
      ],
      reload: { command: "systemctl", args: ["reload", "fluent-bit"] },
    });
  });

  it.each([
    [{ files: [] }, "spec.config.files", "at least one file"],
    [{ files: [{ path: "/etc/passwd", content: "" }] }, "spec.config.files[0].path", "relative"],
    [{ files: [{ path: "a/../../etc/passwd", content: "" }] }, "spec.config.files[0].path", '".."'],
    [{ files: [{ path: "a//b", content: "" }] }, "spec.config.files[0].path", "empty segments"],
    [{ files: [{ path: "a", content: "", mode: "rwx" }] }, "spec.config.files[0].mode", "octal"],
    [{ files: [{ path: "a", content: "", mode: "4755" }] }, "spec.config.files[0].mode", "setuid"],
    [{ files: [{ path: "a" }] }, "spec.config.files[0].content", "is required"],
    [
      {
        files: [
          { path: "a", content: "" },
          { path: "a", content: "" },
        ],
      },
      "spec.config.files[1].path",
      "repeats files[0].path",
    ],
    [
      { files: [{ path: "a", content: "" }], reload: { command: "sh -c reload" } },
      "spec.config.reload.command",
      "shell",
    ],
  ])("%j is refused at %s", (config, field, text) => {
    expect(describe1("config", config, field)).toContain(text);
  });
});

describe("parseJobConfig", () => {
  it("throws invalid_argument naming every field, the first in the message", () => {
    let err: unknown;
    try {
      parseJobConfig("query", { command: "", args: [1] }, "config");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EdgeplaneError);
    const e = err as EdgeplaneError;
    expect(e.code).toBe("invalid_argument");
    expect(e.message).toMatch(/^config\.command: must not be empty \(and 1 more problem\)$/);
    expect(e.details.map((d) => d.field)).toEqual(["config.command", "config.args[0]"]);
  });

  it("refuses an unknown type", () => {
    expect(validateJobConfig("shell", {})).toEqual([
      { field: "spec.type", description: '"shell" is not a job type' },
    ]);
  });
});

describe("helpers", () => {
  it("compiles JSONata with guardrails against runaway expressions", async () => {
    const loop = compileJsonata("($f := function($x){ $f($x) + 1 }; $f(1))");
    await expect(loop.evaluate({})).rejects.toMatchObject({ code: expect.stringMatching(/^D101[12]$/) });
    await expect(compileJsonata('$error("boom")').evaluate({})).rejects.toMatchObject({ message: "boom" });
    expect(await compileJsonata("a + 1").evaluate({ a: 1 })).toBe(2);
  });

  it("describes jsonata errors with position and code", () => {
    let err: unknown;
    try {
      compileJsonata("{ a: (");
    } catch (e) {
      err = e;
    }
    expect(describeJsonataError(err)).toBe('Expected ")" before end of expression at position 6 (S0203)');
    expect(describeJsonataError(new Error("x"))).toBe("x");
    expect(describeJsonataError("plain")).toBe("plain");
  });

  it("parses octal modes and checks data subjects", () => {
    expect(parseOctalMode("0644")).toBe(0o644);
    expect(parseOctalMode("600")).toBe(0o600);
    expect(parseOctalMode("0o755")).toBe(0o755);
    expect(parseOctalMode("rw-")).toBeUndefined();
    expect(parseOctalMode("12")).toBeUndefined();
    expect(dataSubjectProblem("a.b_c.d-e", false)).toBeUndefined();
    expect(dataSubjectProblem("a.*.>", true)).toBeUndefined();
    expect(dataSubjectProblem("a.*", false)).toMatch(/no wildcards/);
    expect(dataSubjectProblem(">.a", true)).toMatch(/token ">"/);
    expect(dataSubjectProblem("", true)).toMatch(/1-200/);
  });
});
