/**
 * The `exec` executor (job types `query` and `update`): runs one command that agent.yaml
 * `executors.exec.allow` allows, without a shell, in its own process group.
 *
 * - The command must match an allow rule (program and arguments); its environment is the agent's
 *   PATH, HOME, LANG, LC_ALL, LC_CTYPE, TZ and TMPDIR plus the job's `env`, each of whose names
 *   must be allowed by `env_allow`. It runs in `working_dir`, or the execution's own directory.
 * - stdout and stderr lines go to the execution log (bounded); a `query`'s stdout is also its
 *   result: parsed as JSON when it is JSON, cut at `min(result_max_bytes, max_result_bytes)` with
 *   `result_truncated` and the full size in `result_bytes`.
 * - Exit code 0 → `finished`; any other → `error` with `exited with code N: <last stderr line>`.
 * - `execution_timeout` (enforced by the agent) and cancellation stop the whole process group:
 *   SIGTERM, then SIGKILL after `kill_grace`.
 */
import { stat } from "node:fs/promises";
import type { Assignment } from "@edgeplane/api";
import { type ExecJobConfig, parseJobConfig } from "@edgeplane/core";
import type { ExecExecutorConfig } from "../config.js";
import type { ExecutionContext, ExecutionHandle, Executor } from "../executor.js";
import {
  commandEnv,
  envProblem,
  matchCommand,
  type ResolvedCommandRule,
  resolveCommandRules,
} from "./policy.js";
import { type CommandOutcome, runCommand } from "./process.js";
import { failedHandle, LogBudget, queryResult } from "./shared.js";

/** Options of {@link createExecExecutor}. */
export interface ExecExecutorOptions {
  /** agent.yaml `executors.exec`. */
  readonly config: ExecExecutorConfig;
  /** The agent's environment: PATH resolves bare rule names (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv;
}

/** Why a command failed, in one line. */
export function describeOutcome(path: string, o: CommandOutcome): string {
  if (o.spawnError) return `cannot start ${path}: ${o.spawnError.message}`;
  const tail = o.lastStderrLine ? `: ${o.lastStderrLine}` : "";
  if (o.exitSignal) return `killed by signal ${o.exitSignal}${tail}`;
  return `exited with code ${o.exitCode ?? "?"}${tail}`;
}

async function directoryProblem(dir: string, field: string): Promise<string | undefined> {
  try {
    if ((await stat(dir)).isDirectory()) return undefined;
    return `${field} ${dir} is not a directory`;
  } catch {
    return `${field} ${dir} does not exist on this node`;
  }
}

/**
 * Creates the exec executor; resolves the allow list's bare command names on PATH now (throws
 * `invalid_argument` naming the rule when one is not found).
 */
export function createExecExecutor(options: ExecExecutorOptions): Executor {
  const env = options.env ?? process.env;
  const rules = resolveCommandRules(options.config.allow, "executors.exec.allow", env.PATH);
  return {
    name: "exec",
    types: ["query", "update"],
    start: (assignment, ctx) => startExec(assignment, ctx, options.config, rules, env),
  };
}

function startExec(
  a: Assignment,
  ctx: ExecutionContext,
  policy: ExecExecutorConfig,
  rules: readonly ResolvedCommandRule[],
  baseEnv: NodeJS.ProcessEnv,
): ExecutionHandle {
  const type = a.type === "query" ? "query" : "update";
  let job: ExecJobConfig;
  try {
    job = parseJobConfig(type, a.config, "spec.config");
  } catch (err) {
    return failedHandle(ctx, `the job config is invalid: ${(err as Error).message}`);
  }
  const verdict = matchCommand(rules, "executors.exec.allow", job.command, job.args);
  if (!verdict.ok) return failedHandle(ctx, verdict.message);
  const envIssue = envProblem(policy.envAllow, job.env);
  if (envIssue) return failedHandle(ctx, envIssue);

  const cap =
    type === "query" ? Math.min(job.resultMaxBytes ?? policy.maxResultBytes, policy.maxResultBytes) : 0;
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  const budget = new LogBudget(ctx);
  ctx.emit({ state: "running" });

  const done = (async (): Promise<void> => {
    const cwd = job.workingDir ?? ctx.dataDir;
    const dirIssue = job.workingDir ? await directoryProblem(cwd, "working_dir") : undefined;
    if (dirIssue) {
      ctx.emit({ state: "error", exception: dirIssue });
      return;
    }
    const started = Date.now();
    const outcome = await runCommand({
      path: verdict.path,
      args: job.args,
      env: commandEnv(baseEnv, job.env),
      cwd,
      signal: stop.signal,
      killGraceMs: policy.killGraceMs,
      captureStdoutBytes: cap,
      onSpawn: (pid) =>
        ctx.log(
          "INFO",
          "agent",
          `running ${verdict.path} ${JSON.stringify(job.args)} (pid ${pid}, process group ${pid})`,
        ),
      onLine: (stream, line) => budget.log("INFO", stream, line),
    });
    ctx.signal.removeEventListener("abort", onAbort);
    const took = Date.now() - started;
    if (outcome.aborted) {
      ctx.log("INFO", "agent", `stopped after ${took} ms; its process group was terminated`);
      ctx.emit({ state: "canceled", ...(outcome.exitCode !== null ? { exitCode: outcome.exitCode } : {}) });
      return;
    }
    if (outcome.spawnError || outcome.exitCode !== 0) {
      const exception = describeOutcome(verdict.path, outcome);
      ctx.log("ERROR", "agent", exception);
      ctx.emit({
        state: "error",
        exception,
        ...(outcome.exitCode !== null ? { exitCode: outcome.exitCode } : {}),
      });
      return;
    }
    ctx.log("INFO", "agent", `exited with code 0 after ${took} ms`);
    if (type !== "query") {
      ctx.emit({ state: "finished", exitCode: 0, progress: 1 });
      return;
    }
    const r = queryResult(outcome.stdout, outcome.stdoutBytes);
    if (r.resultTruncated) {
      ctx.log(
        "WARN",
        "agent",
        `the result was cut at ${cap} bytes of ${r.resultBytes} (the cap is min(result_max_bytes, agent.yaml executors.exec.max_result_bytes))`,
      );
    }
    ctx.emit({ state: "finished", exitCode: 0, progress: 1, ...r });
  })();

  return {
    async stop() {
      stop.abort();
      await done;
    },
    status: () => ({}),
  };
}
