/**
 * `edgectl exec ...`: list a job's executions, show one (its result, exception, health), read or
 * follow its log (gRPC server streaming), and cancel it.
 */
import { type JsonValue, toJson } from "@bufbuild/protobuf";
import {
  type Client,
  createClient,
  type Execution,
  ExecutionSchema,
  ExecutionService,
  type LogLine,
} from "@edgeplane/api";
import { EdgeplaneError, fromGrpcStatus } from "@edgeplane/core";
import { intFlag, parseFlags, serverAddress } from "../args.js";
import { ago, nextPageCommand, outputFormat, printData, table } from "../output.js";

export const execHelp = `Usage: edgectl exec <command> [flags]

Commands:
  list JOB           list a job's executions (JOB is an id, or a name with -n NS), oldest first
                     (--state S[,S] waiting|running|finished|error|timed_out|canceled|lost,
                     --node N, --include-archived, --limit N, --next-token T)
  get ID             show an execution: state, times, exit code, result, exception, health
  logs ID            print its log, "LEVEL: text" per line (--tail N: the last N lines;
                     -f/--follow: keep streaming new lines until the execution ends; Ctrl-C stops)
  cancel ID          cancel it (--reason TEXT); refused when it has already finished

Common flags: --server host:port (or $EDGEPLANE_SERVER; default 127.0.0.1:50051), -o text|json|yaml
`;

const JSON_OPTIONS = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;
const common = { server: { type: "string" }, output: { type: "string", short: "o" } } as const;

type ExecJson = {
  id: string;
  job_id?: string;
  job_version?: number;
  node_id?: string;
  deployment_id?: string;
  desired_state?: string;
  state?: string;
  created_at?: string;
  start_time?: string;
  finish_time?: string;
  exit_code?: number;
  result?: JsonValue;
  result_truncated?: boolean;
  result_bytes?: string;
  exception?: string;
  progress?: number;
  health?: { healthy?: boolean; error_rate?: number; since?: string };
  counters?: Record<string, string>;
  attempt?: number;
  archived?: boolean;
};

function connect(server: string | undefined, timeout = true): Client<typeof ExecutionService> {
  return createClient(ExecutionService, serverAddress(server), {
    fromStatus: fromGrpcStatus,
    defaultTimeoutMs: timeout ? 30_000 : undefined,
  });
}

/** An execution as its JSON (proto field names, every field present; unset ones null, like REST). */
export function executionJson(e: Execution): ExecJson {
  const json = toJson(ExecutionSchema, e, JSON_OPTIONS) as Record<string, JsonValue>;
  for (const key of ["created_at", "start_time", "finish_time", "exit_code", "result", "health", "counters"])
    json[key] ??= null;
  return json as unknown as ExecJson;
}

/** A log line for people: `INFO: text`. */
export function logLineText(l: LogLine): string {
  return `${l.level || "INFO"}: ${l.text}`;
}

function lineJson(l: LogLine): JsonValue {
  const t = l.time;
  return {
    seq: Number(l.seq),
    time: t ? new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6)).toISOString() : null,
    stream: l.stream,
    level: l.level,
    text: l.text,
  };
}

function requireId(command: string, positionals: string[], what = "execution id"): string {
  const id = positionals[0];
  if (!id) throw new EdgeplaneError("invalid_argument", `edgectl exec ${command}: give the ${what}`);
  return id;
}

/** Runs `edgectl exec <command>`; resolves the exit code. */
export async function exec(argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "list":
      return list(rest);
    case "get":
      return get(rest);
    case "logs":
      return logs(rest);
    case "cancel":
      return cancel(rest);
    default:
      process.stderr.write(sub ? `edgectl exec: unknown command "${sub}"\n\n${execHelp}` : execHelp);
      return 2;
  }
}

async function list(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags("exec list", argv, {
    ...common,
    state: { type: "string", multiple: true },
    node: { type: "string" },
    "include-archived": { type: "boolean" },
    limit: { type: "string" },
    "next-token": { type: "string" },
  });
  const jobId = requireId("list", positionals, "job id");
  const format = outputFormat(values.output);
  const api = connect(values.server);
  try {
    const res = await api.listExecutions({
      jobId,
      states: (values.state ?? []).flatMap((s) => s.split(",")).filter(Boolean),
      nodeId: values.node,
      includeArchived: values["include-archived"],
      limit: intFlag("limit", values.limit),
      nextToken: values["next-token"],
    });
    const items = res.items.map(executionJson);
    if (format !== "text") {
      printData({ items, next_token: res.nextToken }, format);
      return 0;
    }
    process.stdout.write(
      table(
        ["ID", "NODE", "VERSION", "STATE", "DESIRED", "ATTEMPT", "EXIT", "PROGRESS", "STARTED", "FINISHED"],
        items.map((e) => [
          e.id,
          e.node_id ?? "",
          String(e.job_version ?? ""),
          `${e.state ?? ""}${e.archived ? " (archived)" : ""}`,
          e.desired_state ?? "",
          String(e.attempt ?? ""),
          e.exit_code === null || e.exit_code === undefined ? "" : String(e.exit_code),
          `${Math.round((e.progress ?? 0) * 100)}%`,
          ago(e.start_time ?? undefined),
          ago(e.finish_time ?? undefined),
        ]),
      ),
    );
    if (items.length === 0) process.stdout.write("no executions\n");
    if (res.nextToken) {
      // The exact command for the next page: the same flags, with the new token.
      process.stdout.write(`\nnext page: ${nextPageCommand("exec list", argv, res.nextToken)}\n`);
    }
    return 0;
  } finally {
    api.close();
  }
}

/** The text form of `exec get`. */
export function describeExecution(e: ExecJson): string {
  const rows: Array<[string, string]> = [
    ["id", e.id],
    ["job", `${e.job_id ?? ""} (version ${e.job_version ?? ""})`],
    ["node", e.node_id ?? ""],
    ["state", `${e.state ?? ""}${e.archived ? " (archived)" : ""}`],
    ["desired", e.desired_state ?? ""],
    ["attempt", String(e.attempt ?? "")],
    ["progress", `${Math.round((e.progress ?? 0) * 100)}%`],
    ["created", e.created_at ?? ""],
    ["started", e.start_time ?? ""],
    ["finished", e.finish_time ?? ""],
  ];
  if (e.deployment_id) rows.push(["deployment", e.deployment_id]);
  if (e.exit_code !== null && e.exit_code !== undefined) rows.push(["exit code", String(e.exit_code)]);
  if (e.exception) rows.push(["exception", e.exception]);
  if (e.health)
    rows.push([
      "health",
      `${e.health.healthy ? "healthy" : "unhealthy"}, error rate ${e.health.error_rate ?? 0}${e.health.since ? ` since ${e.health.since}` : ""}`,
    ]);
  if (e.counters)
    rows.push([
      "messages",
      `in ${e.counters.messages_in}, out ${e.counters.messages_out}, filtered ${e.counters.messages_filtered}, errored ${e.counters.messages_errored}`,
    ]);
  let out = rows.map(([k, v]) => `${`${k}:`.padEnd(12)}${v}\n`).join("");
  if (e.result !== null && e.result !== undefined) {
    const text = typeof e.result === "string" ? e.result : JSON.stringify(e.result, null, 2);
    out += `result${e.result_truncated ? ` (truncated; ${e.result_bytes} bytes in full)` : ""}:\n${text}\n`;
  } else if (e.result_truncated) out += `result:     dropped (${e.result_bytes} bytes, over the cap)\n`;
  return out;
}

async function get(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags("exec get", argv, common);
  const id = requireId("get", positionals);
  const format = outputFormat(values.output);
  const api = connect(values.server);
  try {
    const res = await api.getExecution({ id });
    if (!res.execution) throw new EdgeplaneError("internal", "the server answered without an execution");
    const e = executionJson(res.execution);
    if (format !== "text") printData(e, format);
    else process.stdout.write(describeExecution(e));
    return 0;
  } finally {
    api.close();
  }
}

async function logs(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags("exec logs", argv, {
    ...common,
    tail: { type: "string" },
    follow: { type: "boolean", short: "f" },
  });
  const id = requireId("logs", positionals);
  const format = outputFormat(values.output);
  const tail = intFlag("tail", values.tail) ?? 0;
  const follow = values.follow ?? false;
  // A follow has no deadline: it lasts until the execution ends or Ctrl-C.
  const api = connect(values.server, !follow);
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once("SIGINT", onSignal);
  let dropped = 0;
  const all: JsonValue[] = [];
  try {
    for await (const chunk of api.getExecutionLogs({ id, tail, follow }, { signal: controller.signal })) {
      const d = Number(chunk.dropped);
      if (d > dropped && format === "text")
        process.stderr.write(
          `(${d - dropped} line${d - dropped === 1 ? "" : "s"} dropped: the log keeps only its newest lines)\n`,
        );
      dropped = d;
      if (format === "text") {
        const text = chunk.lines.map((l) => `${logLineText(l)}\n`).join("");
        if (text) process.stdout.write(text);
      } else if (follow) {
        // One JSON object per line, as they arrive (JSON lines).
        for (const l of chunk.lines) process.stdout.write(`${JSON.stringify(lineJson(l))}\n`);
      } else all.push(...chunk.lines.map(lineJson));
    }
    if (format !== "text" && !follow) printData({ lines: all, dropped }, format);
    return 0;
  } catch (err) {
    if (controller.signal.aborted) return 0;
    throw err;
  } finally {
    process.off("SIGINT", onSignal);
    api.close();
  }
}

async function cancel(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags("exec cancel", argv, { ...common, reason: { type: "string" } });
  const id = requireId("cancel", positionals);
  const format = outputFormat(values.output);
  const api = connect(values.server);
  try {
    const res = await api.cancelExecution({ id, reason: values.reason ?? "" });
    const e = res.execution ? executionJson(res.execution) : { id };
    if (format !== "text") printData(e, format);
    else
      process.stdout.write(
        `execution ${id} canceled: desired state ${e.desired_state ?? "stopped"}; its node stops it (state now ${e.state ?? "?"})\n`,
      );
    return 0;
  } finally {
    api.close();
  }
}
