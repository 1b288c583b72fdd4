import { describe, expect, it } from "vitest";
import { EdgeplaneError } from "./errors.js";
import { canonicalize, MAX_CONFIG_BYTES, type SelectorSyntax, validateJobSpec, waveSize } from "./spec.js";

/**
 * The selector grammar lives in @edgeplane/selector (which depends on core); these unit tests
 * only check that core calls it per expression and reports its message under the right field.
 */
const syntax: SelectorSyntax = {
  parseExpression(expr) {
    if (expr.includes("(("))
      throw new EdgeplaneError("invalid_argument", `at byte ${expr.indexOf("((")}: expected a value`);
    return expr;
  },
};

const config = { input: { generate: { interval: "1s", message: {} } }, output: { stdout: {} } };
const base = { name: "log-processor", type: "pipeline", config };

function problems(input: unknown): Array<{ field: string; description: string }> {
  try {
    validateJobSpec(input, syntax);
  } catch (err) {
    expect(err).toBeInstanceOf(EdgeplaneError);
    expect((err as EdgeplaneError).code).toBe("invalid_argument");
    return [...(err as EdgeplaneError).details];
  }
  throw new Error("expected the spec to be refused");
}

function fields(input: unknown): string[] {
  return problems(input).map((p) => p.field);
}

describe("validateJobSpec: defaults", () => {
  it("applies the documented defaults and returns canonical key order", () => {
    const spec = validateJobSpec(base, syntax);
    expect(spec).toEqual({
      name: "log-processor",
      namespace: "default",
      type: "pipeline",
      config,
      priority: 50,
      restart_policy: "on-failure",
      deployment: {
        strategy: "immediate",
        max_parallel: 0,
        auto_promote: false,
        no_auto_rollback: false,
        max_failed_nodes: 10,
        max_failed_nodes_percent: 10,
        health_check: { max_error_rate: 0.1, min_healthy_time: "30s" },
      },
      timeouts: { execution_timeout: 0, queue_timeout: 0, total_timeout: 0 },
    });
    expect(Object.keys(spec)).toEqual([...Object.keys(spec)].sort());
  });

  it("treats an omitted field and its explicit default as the same spec", () => {
    const explicit = validateJobSpec(
      {
        ...base,
        namespace: "default",
        priority: 50,
        description: "",
        labels: {},
        deployment: {
          strategy: "immediate",
          max_failed_nodes: 10,
          health_check: { min_healthy_time: "30s" },
        },
        timeouts: { execution_timeout: 0 },
      },
      syntax,
    );
    expect(JSON.stringify(explicit)).toBe(JSON.stringify(validateJobSpec(base, syntax)));
  });

  it("returns the canonical form at every level, every optional field set or not", () => {
    const full = validateJobSpec(
      {
        type: "pipeline",
        name: "full",
        namespace: "edge",
        description: "all of it",
        priority: 7,
        restart_policy: "never",
        labels: { tier: "edge", app: "x", "10": "numeric-key" },
        meta: { "example.com/owner": "team-a", a: "b" },
        config: {
          output: { stdout: {} },
          input: { generate: { message: { z: 1, a: [{ y: 2, b: 3 }] }, interval: "1s" } },
        },
        selector: {
          match_labels: { zone: "a", app: "x" },
          match_ids: ["n2", "n1"],
          match_expressions: ["!b", "a"],
        },
        deployment: {
          strategy: "canary",
          canary_percent: 10,
          canary_count: 2,
          auto_promote: true,
          max_parallel_percent: 20,
          max_parallel: 5,
          max_failed_nodes_percent: 5,
          max_failed_nodes: 3,
          no_auto_rollback: true,
          health_check: { min_healthy_time: "1m", max_error_rate: 0.05, deadline: "5m" },
        },
        timeouts: { total_timeout: 120, queue_timeout: 30, execution_timeout: 60 },
      },
      syntax,
    );
    for (const spec of [full, validateJobSpec(base, syntax)]) {
      expect(JSON.stringify(spec)).toBe(JSON.stringify(canonicalize(spec)));
    }
    // Lists keep their order; only object keys are sorted.
    expect(full.selector?.match_ids).toEqual(["n2", "n1"]);
    expect(full.deployment).toMatchObject({ canary_count: 2, canary_percent: 10, max_parallel_percent: 20 });
  });

  it("keeps empty values where they mean something: label values and config", () => {
    const spec = validateJobSpec(
      {
        ...base,
        labels: { gpu: "" },
        selector: { match_labels: { x: "" } },
      },
      syntax,
    );
    expect(spec.labels).toEqual({ gpu: "" });
    expect(spec.selector?.match_labels).toEqual({ x: "" });
    expect(spec.config).toEqual(config);
  });
});

describe("validateJobSpec: rules, each naming the field", () => {
  it.each([
    [{ type: "pipeline" }, "spec.name"],
    [{ ...base, name: "" }, "spec.name"],
    [{ ...base, name: "-lead" }, "spec.name"],
    [{ ...base, name: "a b" }, "spec.name"],
    [{ ...base, name: "x".repeat(129) }, "spec.name"],
    [{ ...base, namespace: "bad ns" }, "spec.namespace"],
    [{ name: "x" }, "spec.type"],
    [{ ...base, type: "batch" }, "spec.type"],
    [{ ...base, deployment: { strategy: "blue-green" } }, "spec.deployment.strategy"],
    [{ ...base, deployment: { strategy: "rolling" } }, "spec.deployment.health_check.deadline"],
    [
      { ...base, deployment: { strategy: "canary", canary_count: 1 } },
      "spec.deployment.health_check.deadline",
    ],
    [
      { ...base, deployment: { strategy: "rolling", health_check: { deadline: "30s" } } },
      "spec.deployment.health_check.min_healthy_time",
    ],
    [
      {
        ...base,
        deployment: { strategy: "rolling", health_check: { deadline: "5m", min_healthy_time: "5m" } },
      },
      "spec.deployment.health_check.min_healthy_time",
    ],
    [
      { ...base, deployment: { strategy: "rolling", health_check: { deadline: "5 m" } } },
      "spec.deployment.health_check.deadline",
    ],
    [
      { ...base, deployment: { health_check: { min_healthy_time: "forever" } } },
      "spec.deployment.health_check.min_healthy_time",
    ],
    [{ ...base, deployment: { auto_promote: true } }, "spec.deployment.auto_promote"],
    [
      { ...base, deployment: { strategy: "canary", health_check: { deadline: "5m" } } },
      "spec.deployment.canary_count",
    ],
    [{ ...base, deployment: { canary_count: 2 } }, "spec.deployment.canary_count"],
    [{ ...base, deployment: { canary_percent: 101, strategy: "canary" } }, "spec.deployment.canary_percent"],
    [{ ...base, deployment: { max_parallel_percent: -1 } }, "spec.deployment.max_parallel_percent"],
    [
      { ...base, deployment: { max_failed_nodes_percent: 100.5 } },
      "spec.deployment.max_failed_nodes_percent",
    ],
    [{ ...base, deployment: { max_parallel: 1.5 } }, "spec.deployment.max_parallel"],
    [
      { ...base, deployment: { health_check: { max_error_rate: 1.1 } } },
      "spec.deployment.health_check.max_error_rate",
    ],
    [{ ...base, timeouts: { execution_timeout: -1 } }, "spec.timeouts.execution_timeout"],
    [{ ...base, timeouts: { execution_timeout: 1.5 } }, "spec.timeouts.execution_timeout"],
    [
      { ...base, timeouts: { execution_timeout: 60, queue_timeout: 30, total_timeout: 60 } },
      "spec.timeouts.total_timeout",
    ],
    [{ ...base, labels: { "bad key": "x" } }, 'spec.labels["bad key"]'],
    [{ ...base, labels: { env: "has space" } }, "spec.labels.env"],
    [{ ...base, meta: { "edgeplane.io/owner": "me" } }, 'spec.meta["edgeplane.io/owner"]'],
    [{ ...base, meta: { "a/b/c": "x" } }, 'spec.meta["a/b/c"]'],
    [{ ...base, selector: { match_labels: { "bad key": "v" } } }, 'spec.selector.match_labels["bad key"]'],
    [
      { ...base, selector: { match_expressions: ["ok", "ok", "x in ((a)"] } },
      "spec.selector.match_expressions[2]",
    ],
    [{ ...base, selector: { match_ids: [""] } }, "spec.selector.match_ids[0]"],
    [{ ...base, priority: 1001 }, "spec.priority"],
    [{ ...base, restart_policy: "sometimes" }, "spec.restart_policy"],
    [{ ...base, config: "not an object" }, "spec.config"],
    [{ name: "x", type: "pipeline" }, "spec.config"],
    [
      { ...base, config: { ...config, pipeline: { processors: [{ mapping: "$$$(" }] } } },
      "spec.config.pipeline.processors[0].mapping",
    ],
    [{ name: "x", type: "query", config: { args: ["-a"] } }, "spec.config.command"],
    [{ ...base, colour: "blue" }, "spec.colour"],
    [{ ...base, deployment: { stratgey: "rolling" } }, "spec.deployment.stratgey"],
  ])("%j → %s", (input, field) => {
    expect(fields(input)).toContain(field);
  });

  it("refuses server-owned fields by name and hints at sending the spec alone", () => {
    expect(fields({ ...base, id: "job-1", version: 3 })).toEqual(["spec.id", "spec.version"]);
    const p = problems({ id: "job-1", spec: base, status: {} });
    expect(p.map((x) => x.field)).toEqual(["spec.id", "spec.status"]);
    expect(p[0]?.description).toContain('send the "spec" object alone');
  });

  it("reports every problem at once, the first in the message", () => {
    let error: EdgeplaneError | undefined;
    try {
      validateJobSpec({ name: "", type: "nope", labels: { "bad key": "x" } }, syntax);
    } catch (err) {
      error = err as EdgeplaneError;
    }
    expect(error?.details.length).toBeGreaterThanOrEqual(2);
    expect(error?.message).toMatch(/and \d+ more problem/);
  });

  it("refuses config over 256 KiB encoded", () => {
    expect(fields({ ...base, config: { ...config, blob: "x".repeat(MAX_CONFIG_BYTES) } })).toContain(
      "spec.config",
    );
  });

  it("refuses members named like Object.prototype properties as unknown fields", () => {
    for (const key of ["constructor", "toString", "__proto__"]) {
      const top = JSON.parse(`{"${key}": {"priority": 5}}`) as Record<string, unknown>;
      expect(fields({ ...base, ...top })).toEqual([`spec.${key}`]);
      expect(fields({ ...base, deployment: JSON.parse(`{"${key}": 1}`) })).toEqual([
        `spec.deployment.${key}`,
      ]);
    }
  });

  it("refuses a __proto__ key in labels, meta and match_labels instead of dropping it", () => {
    const map = JSON.parse('{"__proto__": "x", "ok": "y"}') as Record<string, string>;
    expect(fields({ ...base, labels: map })).toEqual(["spec.labels.__proto__"]);
    expect(fields({ ...base, meta: map })).toEqual(["spec.meta.__proto__"]);
    expect(fields({ ...base, selector: { match_labels: map } })).toEqual([
      "spec.selector.match_labels.__proto__",
    ]);
    // Inside config it is the user's data and is kept.
    const config2 = JSON.parse(
      '{"input": {"generate": {"interval": "1s", "message": {"__proto__": 1}}}, "output": {"discard": {}}}',
    );
    expect(() => validateJobSpec({ ...base, config: config2 }, syntax)).not.toThrow();
  });

  it("refuses what is not an object", () => {
    for (const input of [null, "x", 3, []]) expect(fields(input)).toEqual(["spec"]);
  });

  it("accepts a full canary spec", () => {
    const spec = validateJobSpec(
      {
        ...base,
        deployment: {
          strategy: "canary",
          canary_count: 2,
          auto_promote: true,
          max_parallel: 5,
          max_parallel_percent: 20,
          health_check: { deadline: "5m", min_healthy_time: "1m", max_error_rate: 0.05 },
        },
        selector: { match_expressions: ["tier in (premium,standard)", "!debug"], match_ids: ["n1"] },
        timeouts: { execution_timeout: 60, queue_timeout: 30, total_timeout: 120 },
        meta: { "example.com/owner": "team-a" },
      },
      syntax,
    );
    expect(spec.deployment.canary_count).toBe(2);
  });
});

describe("waveSize", () => {
  const d = (max_parallel: number, max_parallel_percent?: number) => ({
    deployment: {
      strategy: "rolling" as const,
      max_parallel,
      max_parallel_percent,
      auto_promote: false,
      no_auto_rollback: false,
      max_failed_nodes: 10,
      max_failed_nodes_percent: 10,
      health_check: { max_error_rate: 0.1, min_healthy_time: "30s" },
    },
  });
  it.each([
    [0, undefined, 10, 10],
    [3, undefined, 10, 3],
    [0, 25, 10, 3],
    [5, 25, 10, 3],
    [2, 25, 10, 2],
    [0, 1, 10, 1],
    [50, undefined, 10, 10],
    [0, 100, 7, 7],
    [3, undefined, 0, 0],
  ])("max_parallel %d, percent %s over %d targets → %d", (mp, pct, targets, expected) => {
    expect(waveSize(d(mp, pct), targets)).toBe(expected);
  });
});
