/**
 * The job spec: its schema (zod), its rules, its defaults, and its canonical form.
 *
 * `validateJobSpec(input, syntax)` is the one gate every spec passes (REST body, gRPC request
 * converted to JSON, CLI file, template render): it refuses unknown and server-owned fields by
 * name, checks every rule of the Jobs API, applies the documented defaults (Kubernetes-style
 * defaulting on admission, so an omitted field and its explicit default are the same spec), and
 * returns the spec in canonical form (keys sorted), ready to compare and store. Label selector
 * grammar is supplied by the caller (`@edgeplane/selector`), which depends on this package.
 */
import { z } from "zod";
import { parseDuration } from "./duration.js";
import { EdgeplaneError, type ErrorDetail } from "./errors.js";
import { validateJobConfig } from "./job-config.js";
import { JOB_TYPES, type JobType } from "./job-state.js";
import { utf8Length, validateLabelKey, validateLabelValue } from "./labels.js";

/** Deployment strategies. */
export const STRATEGIES = ["immediate", "rolling", "canary"] as const;
export type Strategy = (typeof STRATEGIES)[number];

/** Restart policies of run-once executions. */
export const RESTART_POLICIES = ["on-failure", "always", "never"] as const;
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

/** Defaults, as the Expanso API documents them (plus edgeplane's own). */
export const SPEC_DEFAULTS = {
  namespace: "default",
  priority: 50,
  restart_policy: "on-failure",
  strategy: "immediate",
  max_failed_nodes: 10,
  max_failed_nodes_percent: 10.0,
  max_parallel: 0,
  max_error_rate: 0.1,
  min_healthy_time: "30s",
} as const;

/** The largest encoded `config` (256 KiB). */
export const MAX_CONFIG_BYTES = 256 * 1024;
/** Meta keys under this prefix belong to the system. */
export const RESERVED_META_PREFIX = "edgeplane.io/";
/** Fields of a Job that only the server sets. */
const SERVER_OWNED = ["id", "status", "version", "revision"] as const;

/** What the spec validation needs from the selector package. */
export interface SelectorSyntax {
  /** Throws an `invalid_argument` EdgeplaneError whose message names the byte position. */
  parseExpression(expression: string): unknown;
}

const NAME_RULE = "1-128 characters of letters, digits, '.', '_' and '-', starting with a letter or digit";

function isNameChar(c: number, first: boolean): boolean {
  const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  return first ? alnum : alnum || c === 0x2e || c === 0x5f || c === 0x2d;
}

function nameProblem(name: string, max: number): string | undefined {
  if (name.length === 0 || name.length > max) return `must be ${NAME_RULE.replace("128", String(max))}`;
  for (let i = 0; i < name.length; i++) {
    if (!isNameChar(name.charCodeAt(i), i === 0)) {
      return `${JSON.stringify(name[i])} at offset ${i} is not allowed; it must be ${NAME_RULE.replace("128", String(max))}`;
    }
  }
  return undefined;
}

const nonNegativeInt = (max = 2_147_483_647) => z.int().min(0).max(max);
const percent = z.number().min(0).max(100);

const labelMap = z.record(z.string(), z.string());

const healthCheckSchema = z.strictObject({
  deadline: z.string().optional(),
  max_error_rate: z.number().min(0).max(1).optional(),
  min_healthy_time: z.string().optional(),
});

const deploymentSchema = z.strictObject({
  strategy: z.enum(STRATEGIES).optional(),
  max_parallel: nonNegativeInt().optional(),
  max_parallel_percent: z.int().min(0).max(100).optional(),
  canary_count: nonNegativeInt().optional(),
  canary_percent: z.int().min(0).max(100).optional(),
  auto_promote: z.boolean().optional(),
  health_check: healthCheckSchema.optional(),
  max_failed_nodes: nonNegativeInt().optional(),
  max_failed_nodes_percent: percent.optional(),
  no_auto_rollback: z.boolean().optional(),
});

const selectorSchema = z.strictObject({
  match_labels: labelMap.optional(),
  match_ids: z.array(z.string()).max(10_000).optional(),
  match_expressions: z.array(z.string()).max(1000).optional(),
});

const timeoutsSchema = z.strictObject({
  execution_timeout: nonNegativeInt().optional(),
  queue_timeout: nonNegativeInt().optional(),
  total_timeout: nonNegativeInt().optional(),
});

const specSchema = z.strictObject({
  name: z.string(),
  namespace: z.string().optional(),
  description: z.string().max(4096).optional(),
  type: z.enum(JOB_TYPES),
  priority: z.int().min(0).max(1000).optional(),
  labels: labelMap.optional(),
  meta: labelMap.optional(),
  config: z.record(z.string(), z.unknown()).optional(),
  selector: selectorSchema.optional(),
  deployment: deploymentSchema.optional(),
  timeouts: timeoutsSchema.optional(),
  restart_policy: z.enum(RESTART_POLICIES).optional(),
});

type ParsedSpec = z.infer<typeof specSchema>;

/** A validated, defaulted job spec (the JSON form, snake_case). */
export interface JobSpec {
  readonly name: string;
  readonly namespace: string;
  readonly description?: string;
  readonly type: JobType;
  readonly priority: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly meta?: Readonly<Record<string, string>>;
  readonly config?: Readonly<Record<string, unknown>>;
  readonly selector?: {
    readonly match_labels?: Readonly<Record<string, string>>;
    readonly match_ids?: readonly string[];
    readonly match_expressions?: readonly string[];
  };
  readonly deployment: {
    readonly strategy: Strategy;
    readonly max_parallel: number;
    readonly max_parallel_percent?: number;
    readonly canary_count?: number;
    readonly canary_percent?: number;
    readonly auto_promote: boolean;
    readonly health_check: {
      readonly deadline?: string;
      readonly max_error_rate: number;
      readonly min_healthy_time: string;
    };
    readonly max_failed_nodes: number;
    readonly max_failed_nodes_percent: number;
    readonly no_auto_rollback: boolean;
  };
  readonly timeouts: {
    readonly execution_timeout: number;
    readonly queue_timeout: number;
    readonly total_timeout: number;
  };
  readonly restart_policy: RestartPolicy;
}

/** Formats a path the way error details name fields: `spec.labels["bad key"]`, `spec.selector.match_expressions[2]`. */
export function formatPath(path: readonly PropertyKey[], root = "spec"): string {
  let out = root;
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else if (typeof part === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) out += `.${part}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

function issueToDetail(issue: z.core.$ZodIssue): ErrorDetail[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => ({
      field: formatPath([...issue.path, key]),
      description: "is not a field of the job spec; check its spelling against docs/api.md",
    }));
  }
  if (issue.code === "invalid_value" && issue.values.length > 0) {
    return [
      {
        field: formatPath(issue.path),
        description: `must be one of ${issue.values.map((v) => String(v)).join(", ")}`,
      },
    ];
  }
  return [{ field: formatPath(issue.path), description: issue.message }];
}

/** Builds the error from a list of details (the first one leads the message). */
export function specError(details: readonly ErrorDetail[]): EdgeplaneError {
  const first = details[0] ?? { field: "spec", description: "is invalid" };
  const more =
    details.length > 1 ? ` (and ${details.length - 1} more problem${details.length > 2 ? "s" : ""})` : "";
  return new EdgeplaneError("invalid_argument", `${first.field}: ${first.description}${more}`, { details });
}

function checkLabels(
  map: Readonly<Record<string, string>> | undefined,
  path: readonly PropertyKey[],
  out: ErrorDetail[],
  options: { values: "label" | "any"; reservedPrefix?: string },
): void {
  if (!map) return;
  for (const [key, value] of Object.entries(map)) {
    const keyProblem = validateLabelKey(key);
    if (keyProblem) out.push({ field: formatPath([...path, key]), description: `key ${keyProblem}` });
    else if (options.reservedPrefix && key.startsWith(options.reservedPrefix)) {
      out.push({
        field: formatPath([...path, key]),
        description: `keys under "${options.reservedPrefix}" are reserved for the system; use another prefix`,
      });
    }
    if (options.values === "label") {
      const valueProblem = validateLabelValue(value);
      if (valueProblem) out.push({ field: formatPath([...path, key]), description: `value ${valueProblem}` });
    } else if (value.length > 4096) {
      out.push({ field: formatPath([...path, key]), description: "value is longer than 4096 characters" });
    }
  }
}

function checkDuration(
  value: string | undefined,
  path: readonly PropertyKey[],
  out: ErrorDetail[],
): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined) {
    out.push({
      field: formatPath(path),
      description: `${JSON.stringify(value)} is not a duration; write it like "90s", "5m" or "1h30m"`,
    });
  }
  return ms;
}

/** The rules zod cannot express as a shape: cross-field checks, label rules, selector grammar. */
function checkRules(spec: ParsedSpec, syntax: SelectorSyntax): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  const nameIssue = nameProblem(spec.name, 128);
  if (nameIssue) out.push({ field: "spec.name", description: nameIssue });
  if (spec.namespace !== undefined) {
    const nsIssue = nameProblem(spec.namespace, 63);
    if (nsIssue) out.push({ field: "spec.namespace", description: nsIssue });
  }
  checkLabels(spec.labels, ["labels"], out, { values: "label" });
  checkLabels(spec.meta, ["meta"], out, { values: "any", reservedPrefix: RESERVED_META_PREFIX });

  if (spec.config !== undefined) {
    const bytes = utf8Length(JSON.stringify(spec.config));
    if (bytes > MAX_CONFIG_BYTES) {
      out.push({
        field: "spec.config",
        description: `is ${bytes} bytes encoded; at most ${MAX_CONFIG_BYTES} bytes`,
      });
    }
  }

  // The type's own config shape (pipeline/exec/config), the same check the agent runs again.
  out.push(...validateJobConfig(spec.type, spec.config));

  const sel = spec.selector;
  if (sel) {
    checkLabels(sel.match_labels, ["selector", "match_labels"], out, { values: "label" });
    sel.match_ids?.forEach((id, i) => {
      if (id.length === 0 || id.length > 253) {
        out.push({
          field: formatPath(["selector", "match_ids", i]),
          description: "must be a node id of 1-253 characters",
        });
      }
    });
    sel.match_expressions?.forEach((expr, i) => {
      try {
        syntax.parseExpression(expr);
      } catch (err) {
        out.push({
          field: formatPath(["selector", "match_expressions", i]),
          description: err instanceof Error ? err.message : String(err),
        });
      }
    });
  }

  const d = spec.deployment ?? {};
  const strategy = d.strategy ?? SPEC_DEFAULTS.strategy;
  const hc = d.health_check ?? {};
  const deadline = checkDuration(hc.deadline, ["deployment", "health_check", "deadline"], out);
  const minHealthy = checkDuration(
    hc.min_healthy_time,
    ["deployment", "health_check", "min_healthy_time"],
    out,
  );
  if (strategy !== "immediate" && hc.deadline === undefined) {
    out.push({
      field: "spec.deployment.health_check.deadline",
      description: `is required for the ${strategy} strategy; set it like "5m" (how long a node may take to become healthy)`,
    });
  }
  if (strategy !== "immediate" && deadline !== undefined && deadline === 0) {
    out.push({ field: "spec.deployment.health_check.deadline", description: "must be longer than 0" });
  }
  const effectiveMinHealthy = minHealthy ?? parseDuration(SPEC_DEFAULTS.min_healthy_time) ?? 0;
  if (strategy !== "immediate" && deadline !== undefined && deadline > 0 && effectiveMinHealthy >= deadline) {
    out.push({
      field: "spec.deployment.health_check.min_healthy_time",
      description: `(${hc.min_healthy_time ?? `${SPEC_DEFAULTS.min_healthy_time} by default`}) must be shorter than deadline (${hc.deadline})`,
    });
  }
  const hasCanary = (d.canary_count ?? 0) > 0 || (d.canary_percent ?? 0) > 0;
  if (d.auto_promote && !hasCanary) {
    out.push({
      field: "spec.deployment.auto_promote",
      description: "needs canary_count or canary_percent: there is nothing to promote without canaries",
    });
  }
  if (strategy === "canary" && !hasCanary) {
    out.push({
      field: "spec.deployment.canary_count",
      description: "the canary strategy needs canary_count or canary_percent greater than 0",
    });
  }
  if (strategy !== "canary" && hasCanary) {
    out.push({
      field: d.canary_count ? "spec.deployment.canary_count" : "spec.deployment.canary_percent",
      description: `only applies to the canary strategy (strategy is ${strategy})`,
    });
  }

  const t = spec.timeouts ?? {};
  const total = t.total_timeout ?? 0;
  if (total > 0 && (t.execution_timeout ?? 0) + (t.queue_timeout ?? 0) > total) {
    out.push({
      field: "spec.timeouts.total_timeout",
      description: `(${total}s) must be at least execution_timeout + queue_timeout (${(t.execution_timeout ?? 0) + (t.queue_timeout ?? 0)}s)`,
    });
  }
  return out;
}

/** An object's own keys in sorted order; sorted only when they are not already (no sort's scratch arrays). */
function sortedKeys(value: object): string[] {
  const keys = Object.keys(value);
  for (let i = 1; i < keys.length; i++) if ((keys[i - 1] as string) > (keys[i] as string)) return keys.sort();
  return keys;
}

/** Returns a copy of a JSON value with object keys sorted at every level (the canonical form). */
export function canonicalize<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => canonicalize(v)) as T;
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of sortedKeys(value)) {
      const v = (value as Record<string, unknown>)[key];
      if (v === undefined) continue;
      // A "__proto__" member (JSON.parse makes an own one) stays a member, not the prototype.
      if (key === "__proto__") {
        Object.defineProperty(out, key, {
          value: canonicalize(v),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else out[key] = canonicalize(v);
    }
    return out as T;
  }
  return value;
}

/** Sets `out[key] = value` unless `value` is undefined (canonical JSON has no undefined members). */
function put(out: Record<string, unknown>, key: string, value: unknown): void {
  if (value !== undefined) out[key] = value;
}

/**
 * Applies the documented defaults and returns the spec in canonical form: the same value as
 * `canonicalize` of the defaulted spec, built directly with every fixed field inserted in sorted
 * key order, so that only the open maps (config, labels, meta, match_labels) go through the
 * generic `canonicalize`. One copy instead of a spread copy and then a canonical one, on every
 * submit. A test checks that the result is a fixed point of `canonicalize`.
 */
function withDefaults(spec: ParsedSpec): JobSpec {
  const d = spec.deployment ?? {};
  const hc = d.health_check ?? {};
  const t = spec.timeouts ?? {};
  const out: Record<string, unknown> = {};
  if (spec.config !== undefined) out.config = canonicalize(spec.config);
  const healthCheck: Record<string, unknown> = {};
  put(healthCheck, "deadline", hc.deadline);
  healthCheck.max_error_rate = hc.max_error_rate ?? SPEC_DEFAULTS.max_error_rate;
  healthCheck.min_healthy_time = hc.min_healthy_time ?? SPEC_DEFAULTS.min_healthy_time;
  const deployment: Record<string, unknown> = { auto_promote: d.auto_promote ?? false };
  put(deployment, "canary_count", d.canary_count);
  put(deployment, "canary_percent", d.canary_percent);
  deployment.health_check = healthCheck;
  deployment.max_failed_nodes = d.max_failed_nodes ?? SPEC_DEFAULTS.max_failed_nodes;
  deployment.max_failed_nodes_percent = d.max_failed_nodes_percent ?? SPEC_DEFAULTS.max_failed_nodes_percent;
  deployment.max_parallel = d.max_parallel ?? SPEC_DEFAULTS.max_parallel;
  put(deployment, "max_parallel_percent", d.max_parallel_percent);
  deployment.no_auto_rollback = d.no_auto_rollback ?? false;
  deployment.strategy = d.strategy ?? SPEC_DEFAULTS.strategy;
  out.deployment = deployment;
  put(out, "description", spec.description);
  if (spec.labels !== undefined) out.labels = canonicalize(spec.labels);
  if (spec.meta !== undefined) out.meta = canonicalize(spec.meta);
  out.name = spec.name;
  out.namespace = spec.namespace ?? SPEC_DEFAULTS.namespace;
  out.priority = spec.priority ?? SPEC_DEFAULTS.priority;
  out.restart_policy = spec.restart_policy ?? SPEC_DEFAULTS.restart_policy;
  if (spec.selector !== undefined) {
    const sel = spec.selector;
    const selector: Record<string, unknown> = {};
    if (sel.match_expressions !== undefined) selector.match_expressions = [...sel.match_expressions];
    if (sel.match_ids !== undefined) selector.match_ids = [...sel.match_ids];
    if (sel.match_labels !== undefined) selector.match_labels = canonicalize(sel.match_labels);
    out.selector = selector;
  }
  out.timeouts = {
    execution_timeout: t.execution_timeout ?? 0,
    queue_timeout: t.queue_timeout ?? 0,
    total_timeout: t.total_timeout ?? 0,
  };
  out.type = spec.type;
  return out as unknown as JobSpec;
}

/** Whether a value is "empty" as proto3 JSON sees it: omitted by toJson, so absent. */
function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === "") return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === "object" && Object.keys(v).length === 0;
}

/** Which members of an object get their own empty members pruned too (and how, one level down). */
type PruneShape = ReadonlyMap<string, PruneShape>;

const PRUNE_NOTHING_BELOW: PruneShape = new Map();

/**
 * The spec's structural fields whose empty members are pruned: `selector`, `deployment` (and its
 * `health_check`), `timeouts`. A Map, not an object literal: a member named like an
 * `Object.prototype` property (`constructor`, `toString`) must be refused by the schema as an
 * unknown field, not looked up here.
 */
const SPEC_PRUNE: PruneShape = new Map([
  ["selector", PRUNE_NOTHING_BELOW],
  ["deployment", new Map([["health_check", PRUNE_NOTHING_BELOW]])],
  ["timeouts", PRUNE_NOTHING_BELOW],
]);

/** Removes the keys of `obj` (a plain object) whose values are empty; other values are kept. */
function pruneObject(obj: unknown, nested: PruneShape): unknown {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) return obj;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    const shape = nested.get(k);
    const inner = shape === undefined ? v : pruneObject(v, shape);
    if (isEmpty(inner)) continue;
    // An own "__proto__" member (JSON.parse makes one) stays a member, for the schema to refuse.
    if (k === "__proto__")
      Object.defineProperty(out, k, { value: inner, enumerable: true, writable: true, configurable: true });
    else out[k] = inner;
  }
  return out;
}

/**
 * The REST body and the gRPC message (through proto3 JSON) must give one canonical spec: proto3
 * omits empty strings, lists and maps, so they are treated as absent here too, at the spec's own
 * structural fields only (never inside labels, match_labels or config, where `""` and `{}` mean
 * something).
 */
function prune(input: Record<string, unknown>): unknown {
  return pruneObject(input, SPEC_PRUNE);
}

/**
 * Validates a spec from outside, applies defaults and returns it canonical. Throws an
 * `invalid_argument` EdgeplaneError whose details name every offending field.
 */
export function validateJobSpec(input: unknown, syntax: SelectorSyntax): JobSpec {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    throw specError([{ field: "spec", description: "must be a JSON object (the job spec)" }]);
  }
  const record = input as Record<string, unknown>;
  const owned = SERVER_OWNED.filter((k) => k in record);
  if (owned.length > 0) {
    const whole = "spec" in record ? ' (send the "spec" object alone, not the whole job)' : "";
    throw specError(
      owned.map((k) => ({
        field: `spec.${k}`,
        description: `is set by the server and cannot be submitted${whole}`,
      })),
    );
  }
  const early = prototypeKeys(record);
  const cleaned = prune(record);
  const parsed = specSchema.safeParse(cleaned);
  if (!parsed.success) throw specError([...early, ...parsed.error.issues.flatMap(issueToDetail)]);
  const problems = [...early, ...checkRules(parsed.data, syntax)];
  if (problems.length > 0) throw specError(problems);
  return withDefaults(parsed.data);
}

/**
 * A `"__proto__"` key in labels, meta or match_labels (JSON.parse makes it an own key): zod's
 * record parsing drops it silently, so it is refused here, by name, like any other bad key.
 */
function prototypeKeys(record: Record<string, unknown>): ErrorDetail[] {
  const selector = record.selector;
  const maps: Array<[unknown, PropertyKey[]]> = [
    [record.labels, ["labels"]],
    [record.meta, ["meta"]],
    [
      selector !== null && typeof selector === "object"
        ? (selector as Record<string, unknown>).match_labels
        : undefined,
      ["selector", "match_labels"],
    ],
  ];
  const out: ErrorDetail[] = [];
  for (const [map, path] of maps) {
    if (map !== null && typeof map === "object" && Object.hasOwn(map, "__proto__"))
      out.push({
        field: formatPath([...path, "__proto__"]),
        description: `key ${validateLabelKey("__proto__") ?? "is not allowed"}`,
      });
  }
  return out;
}

/** The effective wave size of a rolling rollout over `targets` nodes (see docs/rollouts.md). */
export function waveSize(spec: Pick<JobSpec, "deployment">, targets: number): number {
  if (targets <= 0) return 0;
  const { max_parallel: count, max_parallel_percent: pct } = spec.deployment;
  const byCount = count > 0 ? count : targets;
  const byPercent = pct !== undefined && pct > 0 ? Math.max(1, Math.ceil((pct * targets) / 100)) : targets;
  return Math.min(byCount, byPercent, targets);
}
