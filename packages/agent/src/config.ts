/**
 * `agent.yaml`: what an agent may do on its machine (which executors are enabled and what they may
 * run, read, write and publish) and, optionally, how it connects. Validated with zod; every error
 * names the field (`executors.exec.allow[0].command`). Flags given on the command line win over the
 * file. Without a file (or without an `executors` section) the pipeline executor is enabled with
 * nothing to touch but its own `generate` input and `stdout`/`discard` outputs, and `exec` and
 * `config` are disabled: secure by default. See docs/executors.md.
 *
 * ```yaml
 * node_id: edge-01
 * data_dir: /var/lib/edgeplane-agent
 * nats:
 *   servers: [nats://nats.example.com:4222]
 *   creds: /etc/edgeplane/edge-01.nk
 * heartbeat_interval: 5s
 * shutdown_grace: 10s
 * labels: { site: berlin, example.com/tier: edge }
 * executors:
 *   pipeline:
 *     enabled: true
 *     health_window: 10s
 *     max_buffer: 1000
 *     allowed_input_paths: [/var/log/app]
 *     allowed_output_paths: [/var/spool/edgeplane]
 *     nats_subjects_allowed: [metrics.>]
 *   exec:
 *     enabled: true
 *     allow:
 *       - { command: uname, args: [-a] }
 *       - { command: /usr/bin/systemctl, args: { prefix: [status] } }
 *     env_allow: [LC_ALL]
 *     max_result_bytes: 65536
 *     kill_grace: 5s
 *   config: { enabled: true, root_dir: /etc/myapp, reload_allow: [{ command: /usr/bin/systemctl, args: [reload, myapp] }] }
 * ```
 */
import { readFile } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { EdgeplaneError, type ErrorDetail, type JobType, parseDuration } from "@edgeplane/core";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { z } from "zod";
import type { ExecutorName } from "./execution-state.js";
import { labelProblems } from "./labels.js";

/**
 * Which arguments a {@link CommandRule} allows: `"any"`, exactly this list (an empty list: none),
 * or any list that starts with `prefix`.
 */
export type ArgsRule = "any" | readonly string[] | { readonly prefix: readonly string[] };

/**
 * A command an executor may run: `command` is an absolute path or a bare program name, which the
 * agent resolves on its PATH once, at start; `args` says which arguments are allowed (absent: none).
 */
export interface CommandRule {
  readonly command: string;
  readonly args: ArgsRule;
}

/** `executors.pipeline`. */
export interface PipelineExecutorConfig {
  readonly enabled: boolean;
  /** Length of a health window (default 10 s): the error rate is computed per window. */
  readonly healthWindowMs: number;
  /** Messages one batch may hold, and one nats input may queue (default 1000). */
  readonly maxBuffer: number;
  /** Absolute directories or globs (`*`, `?`, `**`) that `file` inputs may read. Default: none. */
  readonly allowedInputPaths: readonly string[];
  /** Absolute directories or globs that `file` outputs may write. Default: none. */
  readonly allowedOutputPaths: readonly string[];
  /** NATS subject patterns (relative to the node's data subjects) `nats` inputs/outputs may use. Default: none. */
  readonly natsSubjectsAllowed: readonly string[];
}

/** `executors.exec`. */
export interface ExecExecutorConfig {
  readonly enabled: boolean;
  readonly allow: readonly CommandRule[];
  /** Environment variables a job may set: names, or prefixes ending in `*` (`APP_*`). Default: none. */
  readonly envAllow: readonly string[];
  /** The largest query result kept (default 64 KiB, at most 512 KiB); more is cut and reported. */
  readonly maxResultBytes: number;
  /** Between SIGTERM and SIGKILL of a stopped command's process group (default 5 s). */
  readonly killGraceMs: number;
}

/** `executors.config`. */
export interface ConfigExecutorConfig {
  readonly enabled: boolean;
  /** The only directory the config executor may write under. */
  readonly rootDir: string | undefined;
  readonly reloadAllow: readonly CommandRule[];
  /** Between SIGTERM and SIGKILL of a stopped reload command (default 5 s). */
  readonly killGraceMs: number;
}

/** The executors section, with defaults filled in. */
export interface ExecutorsConfig {
  readonly pipeline: PipelineExecutorConfig;
  readonly exec: ExecExecutorConfig;
  readonly config: ConfigExecutorConfig;
}

/** A validated agent.yaml. */
export interface AgentConfig {
  readonly nodeId: string | undefined;
  readonly dataDir: string | undefined;
  readonly nats: { readonly servers: readonly string[]; readonly creds: string | undefined };
  readonly heartbeatIntervalMs: number | undefined;
  readonly shutdownGraceMs: number | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly executors: ExecutorsConfig;
}

/** Defaults of the executors section (also what an agent without agent.yaml runs with). */
export const EXECUTOR_DEFAULTS = {
  healthWindowMs: 10_000,
  maxBuffer: 1000,
  maxResultBytes: 64 * 1024,
  /** The cap of `max_result_bytes`: a result travels in one NATS message (1 MiB). */
  maxResultBytesLimit: 512 * 1024,
  killGraceMs: 5000,
} as const;

/**
 * The config of an agent with no agent.yaml: the pipeline executor enabled with no paths or
 * subjects allowed (generate input; stdout and discard outputs), exec and config disabled.
 */
export const DEFAULT_AGENT_CONFIG: AgentConfig = {
  nodeId: undefined,
  dataDir: undefined,
  nats: { servers: [], creds: undefined },
  heartbeatIntervalMs: undefined,
  shutdownGraceMs: undefined,
  labels: {},
  executors: {
    pipeline: {
      enabled: true,
      healthWindowMs: EXECUTOR_DEFAULTS.healthWindowMs,
      maxBuffer: EXECUTOR_DEFAULTS.maxBuffer,
      allowedInputPaths: [],
      allowedOutputPaths: [],
      natsSubjectsAllowed: [],
    },
    exec: {
      enabled: false,
      allow: [],
      envAllow: [],
      maxResultBytes: EXECUTOR_DEFAULTS.maxResultBytes,
      killGraceMs: EXECUTOR_DEFAULTS.killGraceMs,
    },
    config: {
      enabled: false,
      rootDir: undefined,
      reloadAllow: [],
      killGraceMs: EXECUTOR_DEFAULTS.killGraceMs,
    },
  },
};

const commandRule = z.strictObject({
  command: z.string().min(1),
  args: z
    .union([z.literal("any"), z.array(z.string()), z.strictObject({ prefix: z.array(z.string()) })], {
      error: 'must be "any", a list of the exact arguments, or { prefix: [...] }',
    })
    .optional(),
});

/** The shape of agent.yaml. New executor sections are added here (strict: unknown keys are errors). */
const fileSchema = z.strictObject({
  node_id: z.string().min(1).optional(),
  data_dir: z.string().min(1).optional(),
  nats: z
    .strictObject({
      servers: z.array(z.string().min(1)).min(1).optional(),
      creds: z.string().min(1).optional(),
    })
    .optional(),
  heartbeat_interval: z.string().optional(),
  shutdown_grace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  executors: z
    .strictObject({
      pipeline: z
        .strictObject({
          enabled: z.boolean().optional(),
          health_window: z.string().optional(),
          max_buffer: z.int().min(1).max(100_000).optional(),
          allowed_input_paths: z.array(z.string().min(1)).optional(),
          allowed_output_paths: z.array(z.string().min(1)).optional(),
          nats_subjects_allowed: z.array(z.string().min(1)).optional(),
        })
        .optional(),
      exec: z
        .strictObject({
          enabled: z.boolean().optional(),
          allow: z.array(commandRule).optional(),
          env_allow: z
            .array(
              z
                .string()
                .regex(/^[A-Za-z_][A-Za-z0-9_]*\*?$/, "must be a variable name, or a prefix ending in *"),
            )
            .optional(),
          max_result_bytes: z.int().min(1).max(EXECUTOR_DEFAULTS.maxResultBytesLimit).optional(),
          kill_grace: z.string().optional(),
        })
        .optional(),
      config: z
        .strictObject({
          enabled: z.boolean().optional(),
          root_dir: z.string().min(1).optional(),
          reload_allow: z.array(commandRule).optional(),
          kill_grace: z.string().optional(),
        })
        .optional(),
    })
    .optional(),
});

/** Bounds of `heartbeat_interval`. */
export const HEARTBEAT_INTERVAL_BOUNDS_MS = { min: 50, max: 300_000 } as const;

function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out || "(top level)";
}

function issueDetails(issue: z.core.$ZodIssue): ErrorDetail[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => ({
      field: fieldPath([...issue.path, key]),
      description: "is not a field of agent.yaml; check its spelling against docs/agent.md",
    }));
  }
  return [{ field: fieldPath(issue.path), description: issue.message }];
}

function configError(source: string, details: readonly ErrorDetail[]): EdgeplaneError {
  const first = details[0] ?? { field: "(top level)", description: "is invalid" };
  const more =
    details.length > 1 ? ` (and ${details.length - 1} more problem${details.length > 2 ? "s" : ""})` : "";
  return new EdgeplaneError("invalid_argument", `${source}: ${first.field}: ${first.description}${more}`, {
    details,
  });
}

function duration(value: string | undefined, field: string, out: ErrorDetail[]): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined)
    out.push({ field, description: `${JSON.stringify(value)} is not a duration such as "5s" or "500ms"` });
  return ms;
}

function argsRule(args: z.infer<typeof commandRule>["args"]): ArgsRule {
  if (args === undefined) return [];
  if (args === "any" || Array.isArray(args)) return args;
  return { prefix: (args as { prefix: string[] }).prefix };
}

function rules(
  list: readonly z.infer<typeof commandRule>[] | undefined,
  field: string,
  out: ErrorDetail[],
): CommandRule[] {
  return (list ?? []).map((r, i) => {
    if (!isAbsolute(r.command) && (r.command.includes("/") || /\s/.test(r.command))) {
      out.push({
        field: `${field}[${i}].command`,
        description: `${JSON.stringify(r.command)} must be an absolute path or a bare program name (resolved on PATH when the agent starts)`,
      });
    }
    return { command: r.command, args: argsRule(r.args) };
  });
}

function pathPatterns(list: readonly string[] | undefined, field: string, out: ErrorDetail[]): string[] {
  return (list ?? []).map((p, i) => {
    if (!p.startsWith("/")) {
      out.push({
        field: `${field}[${i}]`,
        description: `${JSON.stringify(p)} must be an absolute path or glob`,
      });
    } else if (p.split("/").some((s) => s === ".." || s === ".")) {
      out.push({
        field: `${field}[${i}]`,
        description: `${JSON.stringify(p)} must not contain "." or ".." segments`,
      });
    }
    return p.length > 1 && p.endsWith("/") ? p.slice(0, -1) : p;
  });
}

function subjectPatterns(list: readonly string[] | undefined, field: string, out: ErrorDetail[]): string[] {
  return (list ?? []).map((p, i) => {
    const tokens = p.split(".");
    const bad = tokens.find(
      (t, j) => !(t === "*" || (t === ">" && j === tokens.length - 1) || /^[A-Za-z0-9_-]+$/.test(t)),
    );
    if (bad !== undefined) {
      out.push({
        field: `${field}[${i}]`,
        description: `${JSON.stringify(p)} must be a subject pattern relative to the node's data subjects, such as "metrics.>" or "sensors.*.temp"`,
      });
    }
    return p;
  });
}

/**
 * Parses and validates the text of an agent.yaml; `source` names it in errors. Throws
 * `invalid_argument` whose details name every offending field.
 */
export function parseAgentConfig(text: string, source = "agent.yaml"): AgentConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}` : "";
    throw new EdgeplaneError(
      "invalid_argument",
      `${source}: not valid YAML${where}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (raw === null || raw === undefined) raw = {};
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) throw configError(source, parsed.error.issues.flatMap(issueDetails));
  const f = parsed.data;
  const out: ErrorDetail[] = [];
  const heartbeatIntervalMs = duration(f.heartbeat_interval, "heartbeat_interval", out);
  if (
    heartbeatIntervalMs !== undefined &&
    (heartbeatIntervalMs < HEARTBEAT_INTERVAL_BOUNDS_MS.min ||
      heartbeatIntervalMs > HEARTBEAT_INTERVAL_BOUNDS_MS.max)
  ) {
    out.push({ field: "heartbeat_interval", description: "must be between 50ms and 5m" });
  }
  const shutdownGraceMs = duration(f.shutdown_grace, "shutdown_grace", out);
  const labels = f.labels ?? {};
  out.push(...labelProblems(labels, "labels"));
  const e = f.executors ?? {};
  const d = DEFAULT_AGENT_CONFIG.executors;
  const healthWindowMs = duration(e.pipeline?.health_window, "executors.pipeline.health_window", out);
  if (healthWindowMs !== undefined && (healthWindowMs < 10 || healthWindowMs > 3_600_000)) {
    out.push({ field: "executors.pipeline.health_window", description: "must be between 10ms and 1h" });
  }
  const execGrace = duration(e.exec?.kill_grace, "executors.exec.kill_grace", out);
  const configGrace = duration(e.config?.kill_grace, "executors.config.kill_grace", out);
  const executors: ExecutorsConfig = {
    pipeline: {
      enabled: e.pipeline?.enabled ?? d.pipeline.enabled,
      healthWindowMs: healthWindowMs ?? d.pipeline.healthWindowMs,
      maxBuffer: e.pipeline?.max_buffer ?? d.pipeline.maxBuffer,
      allowedInputPaths: pathPatterns(
        e.pipeline?.allowed_input_paths,
        "executors.pipeline.allowed_input_paths",
        out,
      ),
      allowedOutputPaths: pathPatterns(
        e.pipeline?.allowed_output_paths,
        "executors.pipeline.allowed_output_paths",
        out,
      ),
      natsSubjectsAllowed: subjectPatterns(
        e.pipeline?.nats_subjects_allowed,
        "executors.pipeline.nats_subjects_allowed",
        out,
      ),
    },
    exec: {
      enabled: e.exec?.enabled ?? d.exec.enabled,
      allow: rules(e.exec?.allow, "executors.exec.allow", out),
      envAllow: e.exec?.env_allow ?? [],
      maxResultBytes: e.exec?.max_result_bytes ?? d.exec.maxResultBytes,
      killGraceMs: execGrace ?? d.exec.killGraceMs,
    },
    config: {
      enabled: e.config?.enabled ?? d.config.enabled,
      rootDir: e.config?.root_dir,
      reloadAllow: rules(e.config?.reload_allow, "executors.config.reload_allow", out),
      killGraceMs: configGrace ?? d.config.killGraceMs,
    },
  };
  if (executors.config.enabled && !executors.config.rootDir) {
    out.push({
      field: "executors.config.root_dir",
      description:
        "is required when executors.config.enabled is true (the only directory config jobs may write under)",
    });
  } else if (executors.config.rootDir !== undefined && !isAbsolute(executors.config.rootDir)) {
    out.push({ field: "executors.config.root_dir", description: "must be an absolute path" });
  }
  if (out.length > 0) throw configError(source, out);
  return {
    nodeId: f.node_id,
    dataDir: f.data_dir,
    nats: { servers: f.nats?.servers ?? [], creds: f.nats?.creds },
    heartbeatIntervalMs,
    shutdownGraceMs,
    labels,
    executors,
  };
}

/** Reads and validates an agent.yaml file. */
export async function loadAgentConfig(path: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new EdgeplaneError("invalid_argument", `--config: cannot read ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseAgentConfig(text, path);
}

/** The agent.yaml switch that enables the executor of `type`, for error messages. */
export function enableHint(type: JobType, executor: ExecutorName): string {
  return `no executor for type ${JSON.stringify(type)} is enabled in agent.yaml (executors.${executor}.enabled)`;
}
