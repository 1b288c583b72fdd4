/**
 * The `config` of each job type: zod schemas shared by submit-time validation (the control plane
 * calls {@link validateJobConfig} from `validateJobSpec`) and the agent, which validates again
 * with {@link parseJobConfig} before it runs anything (a control plane of another version may send
 * anything). JSONata expressions are compiled here, so a syntax error is refused at submit with the
 * position jsonata reports. Field paths in errors read like `spec.config.pipeline.processors[0].mapping`.
 *
 * | type | config |
 * |---|---|
 * | pipeline | `{input: {generate} \| {file} \| {nats}, pipeline?: {processors: [{mapping} \| {filter}]}, output: {stdout} \| {file} \| {nats} \| {discard}}` |
 * | query, update | `{command, args?, env?, working_dir?, result_max_bytes?}` (no shell) |
 * | config | `{files: [{path, content, mode?}], reload?: {command, args?}}` |
 *
 * What a job may touch on a node (commands, paths, subjects) is decided by the node's agent.yaml,
 * not here: this module checks the shape only. See docs/executors.md.
 */
import jsonata from "jsonata";
import { z } from "zod";
import { parseDuration } from "./duration.js";
import { EdgeplaneError, type ErrorDetail } from "./errors.js";
import { isJobType, type JobType } from "./job-state.js";

// ---------------------------------------------------------------- JSONata

/**
 * Guardrails compiled into every JSONata expression: an evaluation that runs longer than
 * `timeoutMs` or nests deeper than `maxDepth` throws (D1012 / D1011), so a runaway expression
 * costs one errored message, not a stuck pipeline.
 */
export const JSONATA_LIMITS = { timeoutMs: 500, maxDepth: 500 } as const;

/** A compiled JSONata expression. */
export type JsonataExpression = jsonata.Expression;

/**
 * Compiles a JSONata expression with {@link JSONATA_LIMITS}; throws jsonata's error object
 * (`{code, position, token, message}`) on a syntax error. The one way edgeplane compiles JSONata,
 * at submit and on the agent.
 */
export function compileJsonata(expression: string): JsonataExpression {
  return jsonata(expression, { timeout: JSONATA_LIMITS.timeoutMs, stack: JSONATA_LIMITS.maxDepth });
}

/**
 * One line for an error thrown by jsonata (compile or evaluate): its message, the position and
 * the code (`Expected ")" before end of expression at position 6 (S0203)`). Other errors give
 * their message.
 */
export function describeJsonataError(err: unknown): string {
  if (err !== null && typeof err === "object") {
    const e = err as { message?: unknown; position?: unknown; code?: unknown };
    const message = typeof e.message === "string" && e.message !== "" ? e.message : "failed";
    const at = typeof e.position === "number" ? ` at position ${e.position}` : "";
    const code = typeof e.code === "string" ? ` (${e.code})` : "";
    return `${message}${at}${code}`;
  }
  return String(err);
}

// ---------------------------------------------------------------- parsed forms

/** A pipeline input, normalized. */
export type PipelineInputConfig =
  | {
      readonly kind: "generate";
      /** Milliseconds between batches (≥ 1). */
      readonly intervalMs: number;
      /** The message emitted (a JSON object). */
      readonly message: Readonly<Record<string, unknown>>;
      /** Stop after this many messages (the pipeline then finishes); unlimited when absent. */
      readonly count: number | undefined;
      /** Messages per interval (default 1). */
      readonly batchSize: number;
      /** When set, each message gets this field set to its sequence number (1, 2, ...). */
      readonly seqField: string | undefined;
    }
  | {
      readonly kind: "file";
      /** Absolute paths; `*` and `?` match within one path segment. */
      readonly paths: readonly string[];
    }
  | {
      readonly kind: "nats";
      /** Relative subject under the node's `in.data.` prefix; may end in wildcards. */
      readonly subject: string;
    };

/** A pipeline processor, normalized. */
export interface PipelineProcessorConfig {
  /** mapping: the result replaces the message (no result: filtered); filter: a false result drops it. */
  readonly kind: "mapping" | "filter";
  /** The JSONata expression. */
  readonly expression: string;
}

/** A pipeline output, normalized. */
export type PipelineOutputConfig =
  | { readonly kind: "stdout" }
  | { readonly kind: "discard" }
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "nats"; readonly subject: string };

/** The config of a `pipeline` job, normalized. */
export interface PipelineJobConfig {
  readonly input: PipelineInputConfig;
  readonly processors: readonly PipelineProcessorConfig[];
  readonly output: PipelineOutputConfig;
}

/** The config of a `query` or `update` job (the exec executor), normalized. */
export interface ExecJobConfig {
  /** A program: an absolute path or a bare name; never a shell line. */
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** Absolute; the execution's own directory when absent. */
  readonly workingDir: string | undefined;
  /** The job's own cap of a query result (the agent's `max_result_bytes` caps it further). */
  readonly resultMaxBytes: number | undefined;
}

/** One file of a `config` job. */
export interface ConfigFileConfig {
  /** Relative to the agent's `executors.config.root_dir`; no `..` segments. */
  readonly path: string;
  readonly content: string;
  /** Permission bits (0 to 0o777); when absent, an existing file's mode is kept, else 0o644. */
  readonly mode: number | undefined;
}

/** The config of a `config` job, normalized. */
export interface ConfigJobConfig {
  readonly files: readonly ConfigFileConfig[];
  readonly reload: { readonly command: string; readonly args: readonly string[] } | undefined;
}

/** The normalized config of each job type. */
export interface JobConfigByType {
  pipeline: PipelineJobConfig;
  query: ExecJobConfig;
  update: ExecJobConfig;
  config: ConfigJobConfig;
}

// ---------------------------------------------------------------- limits

/** Limits of job configs (beyond the 256 KiB of an encoded config). */
export const JOB_CONFIG_LIMITS = {
  /** Processors of one pipeline. */
  maxProcessors: 64,
  /** Paths of one file input. */
  maxInputPaths: 64,
  /** Messages per generate tick. */
  maxBatchSize: 10_000,
  /** Arguments of one command. */
  maxArgs: 256,
  /** Files of one config job. */
  maxFiles: 256,
  /** The largest `result_max_bytes` a job may ask for (an event must fit in one NATS message). */
  maxResultBytes: 512 * 1024,
  /** Characters of a path or a subject. */
  maxPathChars: 4096,
  maxSubjectChars: 200,
} as const;

// ---------------------------------------------------------------- rules (shared helpers)

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SUBJECT_TOKEN = /^[A-Za-z0-9_-]+$/;

/** Why `subject` cannot be a pipeline's relative NATS subject; undefined when it can. */
export function dataSubjectProblem(subject: string, wildcards: boolean): string | undefined {
  if (subject.length === 0 || subject.length > JOB_CONFIG_LIMITS.maxSubjectChars) {
    return `must be 1-${JOB_CONFIG_LIMITS.maxSubjectChars} characters`;
  }
  const tokens = subject.split(".");
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as string;
    if (wildcards && (t === "*" || (t === ">" && i === tokens.length - 1))) continue;
    if (!SUBJECT_TOKEN.test(t)) {
      const hint = wildcards
        ? `"*" for one token, ">" as the last token`
        : "no wildcards: an output publishes on one subject";
      return `token ${JSON.stringify(t)} is not allowed; use dot-separated tokens of letters, digits, "-" and "_" (${hint})`;
    }
  }
  return undefined;
}

function absolutePathProblem(path: string, globs: boolean): string | undefined {
  if (!path.startsWith("/")) return "must be an absolute path (starting with /)";
  if (path.length > JOB_CONFIG_LIMITS.maxPathChars)
    return `is longer than ${JOB_CONFIG_LIMITS.maxPathChars} characters`;
  if (path.includes("\0")) return "must not contain NUL";
  const segments = path.split("/").slice(1);
  for (const s of segments) {
    if (s === "..") return `must not contain ".." segments`;
    if (s === ".") return `must not contain "." segments`;
    if (s === "" && path !== "/") return "must not contain empty segments (//) or end with /";
    if (s === "**") return `"**" is not supported; use "*" and "?" within one path segment`;
    if (!globs && (s.includes("*") || s.includes("?"))) return `must not contain glob characters ("*", "?")`;
  }
  return undefined;
}

function relativePathProblem(path: string): string | undefined {
  if (path.length === 0) return "must not be empty";
  if (path.startsWith("/")) return "must be relative to the agent's executors.config.root_dir (no leading /)";
  if (path.length > JOB_CONFIG_LIMITS.maxPathChars)
    return `is longer than ${JOB_CONFIG_LIMITS.maxPathChars} characters`;
  if (path.includes("\0")) return "must not contain NUL";
  if (path.includes("\\")) return "must use / as separator (no backslashes)";
  for (const s of path.split("/")) {
    if (s === "..") return `must not contain ".." segments (it must stay under root_dir)`;
    if (s === "." || s === "") return `must not contain "." or empty segments`;
  }
  return undefined;
}

/** Parses an octal mode string ("0644", "644", "0o600"); undefined when it is not one. */
export function parseOctalMode(text: string): number | undefined {
  const digits = text.startsWith("0o") ? text.slice(2) : text;
  if (!/^[0-7]{3,4}$/.test(digits)) return undefined;
  return Number.parseInt(digits, 8);
}

function commandProblem(command: string): string | undefined {
  if (command.length === 0) return "must not be empty";
  if (command.includes("\0")) return "must not contain NUL";
  if (/\s/.test(command)) {
    return `must be a program, not a shell line (no whitespace; there is no shell): put its arguments in args`;
  }
  if (!command.startsWith("/") && command.includes("/")) {
    return "must be an absolute path or a bare program name (found on the agent's PATH), not a relative path";
  }
  return undefined;
}

// ---------------------------------------------------------------- schemas

type Ctx = z.core.$RefinementCtx<unknown>;

function addIssue(ctx: Ctx, path: PropertyKey[], message: string): void {
  ctx.addIssue({ code: "custom", message, path });
}

/** A strict object whose unknown keys get `hint`. */
function strict<T extends z.core.$ZodLooseShape>(shape: T, hint: string) {
  return z.strictObject(shape, {
    error: (issue) => (issue.code === "unrecognized_keys" ? hint : undefined),
  });
}

/** An object that must have exactly one of the keys of `variants` (an "exactly one of" choice). */
function oneOf<T extends Record<string, z.ZodType>>(what: string, variants: T) {
  const names = Object.keys(variants);
  const shape = Object.fromEntries(Object.entries(variants).map(([k, v]) => [k, v.optional()])) as {
    [K in keyof T]: z.ZodOptional<T[K]>;
  };
  return strict(shape, `is not a known ${what}; use exactly one of ${names.join(", ")}`).superRefine(
    (value, ctx) => {
      const present = names.filter((k) => (value as Record<string, unknown>)[k] !== undefined);
      if (present.length !== 1) {
        addIssue(
          ctx,
          [],
          present.length === 0
            ? `must have exactly one ${what}: ${names.join(", ")}`
            : `must have exactly one ${what}, not ${present.join(" and ")}`,
        );
      }
    },
  );
}

const see = "see docs/executors.md";

const jsonObject = z.record(z.string(), z.unknown());

const generateSchema = strict(
  {
    interval: z.string().superRefine((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === undefined)
        addIssue(ctx, [], `${JSON.stringify(v)} is not a duration such as "100ms" or "1s"`);
      else if (ms < 1) addIssue(ctx, [], "must be at least 1ms");
    }),
    message: jsonObject,
    count: z.int().min(1).optional(),
    batch_size: z.int().min(1).max(JOB_CONFIG_LIMITS.maxBatchSize).optional(),
    seq_field: z.string().min(1).max(256).optional(),
  },
  `is not a field of the generate input (interval, message, count, batch_size, seq_field); ${see}`,
);

const fileInputSchema = strict(
  {
    paths: z
      .array(
        z.string().superRefine((v, ctx) => {
          const p = absolutePathProblem(v, true);
          if (p) addIssue(ctx, [], p);
        }),
      )
      .min(1, "must name at least one absolute path or glob, such as /var/log/app/*.log")
      .max(JOB_CONFIG_LIMITS.maxInputPaths),
  },
  `is not a field of the file input (paths); ${see}`,
);

const subjectSchema = (wildcards: boolean, what: string) =>
  strict(
    {
      subject: z.string().superRefine((v, ctx) => {
        const p = dataSubjectProblem(v, wildcards);
        if (p) addIssue(ctx, [], p);
      }),
    },
    `is not a field of the nats ${what} (subject); ${see}`,
  );

const expressionSchema = z
  .string()
  .min(1, "must be a JSONata expression")
  .max(64 * 1024)
  .superRefine((v, ctx) => {
    try {
      compileJsonata(v);
    } catch (err) {
      addIssue(ctx, [], `is not valid JSONata: ${describeJsonataError(err)}`);
    }
  });

const processorSchema = oneOf("processor", { mapping: expressionSchema, filter: expressionSchema });

const emptySchema = (what: string) => strict({}, `is not a field of the ${what} output (it takes none)`);

const pipelineSchema = strict(
  {
    input: oneOf("input", {
      generate: generateSchema,
      file: fileInputSchema,
      nats: subjectSchema(true, "input"),
    }),
    pipeline: strict(
      { processors: z.array(processorSchema).max(JOB_CONFIG_LIMITS.maxProcessors).optional() },
      `is not a field of pipeline (processors); ${see}`,
    ).optional(),
    output: oneOf("output", {
      stdout: emptySchema("stdout"),
      file: strict(
        {
          path: z.string().superRefine((v, ctx) => {
            const p = absolutePathProblem(v, false);
            if (p) addIssue(ctx, [], p);
          }),
        },
        `is not a field of the file output (path); ${see}`,
      ),
      nats: subjectSchema(false, "output"),
      discard: emptySchema("discard"),
    }),
  },
  `is not a field of a pipeline config (input, pipeline, output); ${see}`,
);

const commandSchema = z.string().superRefine((v, ctx) => {
  const p = commandProblem(v);
  if (p) addIssue(ctx, [], p);
});

const argsSchema = z
  .array(
    z
      .string()
      .max(JOB_CONFIG_LIMITS.maxPathChars)
      .refine((a) => !a.includes("\0"), "must not contain NUL"),
  )
  .max(JOB_CONFIG_LIMITS.maxArgs);

const execSchema = strict(
  {
    command: commandSchema,
    args: argsSchema.optional(),
    env: z
      .record(
        z.string().regex(ENV_NAME, "must be an environment variable name (letters, digits, _)"),
        z
          .string()
          .max(JOB_CONFIG_LIMITS.maxPathChars)
          .refine((a) => !a.includes("\0"), "must not contain NUL"),
      )
      .optional(),
    working_dir: z
      .string()
      .superRefine((v, ctx) => {
        const p = absolutePathProblem(v, false);
        if (p) addIssue(ctx, [], p);
      })
      .optional(),
    result_max_bytes: z.int().min(1).max(JOB_CONFIG_LIMITS.maxResultBytes).optional(),
  },
  `is not a field of a query/update config (command, args, env, working_dir, result_max_bytes); ${see}`,
);

const configSchema = strict(
  {
    files: z
      .array(
        strict(
          {
            path: z.string().superRefine((v, ctx) => {
              const p = relativePathProblem(v);
              if (p) addIssue(ctx, [], p);
            }),
            content: z.string(),
            mode: z
              .string()
              .superRefine((v, ctx) => {
                const mode = parseOctalMode(v);
                if (mode === undefined)
                  addIssue(ctx, [], `${JSON.stringify(v)} is not an octal mode like "0644"`);
                else if (mode > 0o777) {
                  addIssue(ctx, [], "must not set setuid, setgid or sticky bits (at most 0777)");
                }
              })
              .optional(),
          },
          `is not a field of a config file (path, content, mode); ${see}`,
        ),
      )
      .min(1, "must name at least one file")
      .max(JOB_CONFIG_LIMITS.maxFiles)
      .superRefine((files, ctx) => {
        const seen = new Map<string, number>();
        files.forEach((f, i) => {
          const first = seen.get(f.path);
          if (first !== undefined) addIssue(ctx, [i, "path"], `repeats files[${first}].path`);
          else seen.set(f.path, i);
        });
      }),
    reload: strict(
      { command: commandSchema, args: argsSchema.optional() },
      `is not a field of reload (command, args); ${see}`,
    ).optional(),
  },
  `is not a field of a config job's config (files, reload); ${see}`,
);

const SCHEMAS = {
  pipeline: pipelineSchema,
  query: execSchema,
  update: execSchema,
  config: configSchema,
} as const satisfies Record<JobType, z.ZodType>;

// ---------------------------------------------------------------- errors

function formatPath(path: readonly PropertyKey[], root: string): string {
  let out = root;
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else if (typeof part === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) out += `.${part}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

function issueToDetails(issue: z.core.$ZodIssue, root: string): ErrorDetail[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => ({
      field: formatPath([...issue.path, key], root),
      description: issue.message,
    }));
  }
  if (issue.code === "invalid_key") {
    return [
      { field: formatPath(issue.path, root), description: `key ${issue.issues[0]?.message ?? "is invalid"}` },
    ];
  }
  if (issue.code === "invalid_type") {
    const description =
      issue.input === undefined
        ? "is required"
        : `must be ${/^[aeiou]/.test(issue.expected) ? "an" : "a"} ${issue.expected}, not ${Array.isArray(issue.input) ? "an array" : issue.input === null ? "null" : `a ${typeof issue.input}`}`;
    return [{ field: formatPath(issue.path, root), description }];
  }
  return [{ field: formatPath(issue.path, root), description: issue.message }];
}

// ---------------------------------------------------------------- entry points

type ParseResult<T> = { ok: true; type: JobType; value: T } | { ok: false; problems: ErrorDetail[] };

/** Checks `config` against the schema of `type`; the parsed value is not normalized yet. */
function parse(type: string, config: unknown, root: string): ParseResult<unknown> {
  if (!isJobType(type)) {
    return {
      ok: false,
      problems: [{ field: "spec.type", description: `${JSON.stringify(type)} is not a job type` }],
    };
  }
  if (config === undefined || config === null) {
    return {
      ok: false,
      problems: [{ field: root, description: `is required for a ${type} job; ${see}` }],
    };
  }
  if (typeof config !== "object" || Array.isArray(config)) {
    return { ok: false, problems: [{ field: root, description: "must be a JSON object" }] };
  }
  const parsed = SCHEMAS[type].safeParse(config, { reportInput: true });
  if (!parsed.success) {
    return { ok: false, problems: parsed.error.issues.flatMap((i) => issueToDetails(i, root)) };
  }
  return { ok: true, type, value: parsed.data };
}

function normalize(type: JobType, data: unknown): unknown {
  if (type === "pipeline") {
    const d = data as z.infer<typeof pipelineSchema>;
    const i = d.input;
    let input: PipelineInputConfig;
    if (i.generate) {
      input = {
        kind: "generate",
        intervalMs: parseDuration(i.generate.interval) ?? 1000,
        message: i.generate.message,
        count: i.generate.count,
        batchSize: i.generate.batch_size ?? 1,
        seqField: i.generate.seq_field,
      };
    } else if (i.file) input = { kind: "file", paths: i.file.paths };
    else input = { kind: "nats", subject: i.nats?.subject ?? "" };
    const o = d.output;
    const output: PipelineOutputConfig = o.file
      ? { kind: "file", path: o.file.path }
      : o.nats
        ? { kind: "nats", subject: o.nats.subject }
        : o.discard
          ? { kind: "discard" }
          : { kind: "stdout" };
    const processors = (d.pipeline?.processors ?? []).map(
      (p): PipelineProcessorConfig =>
        p.mapping !== undefined
          ? { kind: "mapping", expression: p.mapping }
          : { kind: "filter", expression: p.filter ?? "" },
    );
    return { input, processors, output } satisfies PipelineJobConfig;
  }
  if (type === "config") {
    const d = data as z.infer<typeof configSchema>;
    return {
      files: d.files.map((f) => ({
        path: f.path,
        content: f.content,
        mode: f.mode === undefined ? undefined : parseOctalMode(f.mode),
      })),
      reload: d.reload ? { command: d.reload.command, args: d.reload.args ?? [] } : undefined,
    } satisfies ConfigJobConfig;
  }
  const d = data as z.infer<typeof execSchema>;
  return {
    command: d.command,
    args: d.args ?? [],
    env: d.env ?? {},
    workingDir: d.working_dir,
    resultMaxBytes: d.result_max_bytes,
  } satisfies ExecJobConfig;
}

/**
 * Checks the `config` of a job of `type`; returns one detail per problem (empty when valid), with
 * fields under `root` (`spec.config.pipeline.processors[0].mapping`). JSONata expressions are
 * compiled, so syntax errors come with jsonata's position. The control plane's submit gate.
 */
export function validateJobConfig(type: string, config: unknown, root = "spec.config"): ErrorDetail[] {
  // Only the verdict: the normalized form is the agent's (parseJobConfig), not built here.
  const r = parse(type, config, root);
  return r.ok ? [] : r.problems;
}

/**
 * Validates and normalizes the `config` of a job of `type` (what the agent runs); throws an
 * `invalid_argument` EdgeplaneError whose message leads with the first problem and whose details
 * name every one.
 */
export function parseJobConfig<T extends JobType>(
  type: T,
  config: unknown,
  root = "spec.config",
): JobConfigByType[T] {
  const r = parse(type, config, root);
  if (r.ok) return normalize(r.type, r.value) as JobConfigByType[T];
  const first = r.problems[0] ?? { field: root, description: "is invalid" };
  const more =
    r.problems.length > 1
      ? ` (and ${r.problems.length - 1} more problem${r.problems.length > 2 ? "s" : ""})`
      : "";
  throw new EdgeplaneError("invalid_argument", `${first.field}: ${first.description}${more}`, {
    details: r.problems,
  });
}
