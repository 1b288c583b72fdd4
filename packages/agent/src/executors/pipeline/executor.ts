/**
 * The `pipeline` executor: runs a pipeline job's `config` (input → JSONata processors → output)
 * with the runtime of `runtime.ts`, reports counters and per-window health, and samples errored
 * messages into the execution log. What a pipeline may read, write and publish is decided by
 * agent.yaml `executors.pipeline` (checked before anything is opened; see `pipelinePolicyProblem`).
 */

import { join } from "node:path";
import type { Writable } from "node:stream";
import type { Assignment } from "@edgeplane/api";
import { describeJsonataError, type PipelineJobConfig, parseJobConfig } from "@edgeplane/core";
import type { PipelineExecutorConfig } from "../../config.js";
import type { ExecutionContext, ExecutionHandle, Executor } from "../../executor.js";
import { pathAllowed, patternAllowed } from "../paths.js";
import { subjectProblem } from "../policy.js";
import { failedHandle } from "../shared.js";
import { FileInput } from "./file-input.js";
import { HealthWindows } from "./health.js";
import { GenerateInput, NatsInput } from "./inputs.js";
import { DiscardOutput, FileOutput, NatsOutput, StreamOutput } from "./outputs.js";
import { compileProcessors } from "./processors.js";
import {
  type PipelineCounters,
  type PipelineInput,
  type PipelineOutput,
  PipelineRuntime,
} from "./runtime.js";

/** Options of {@link createPipelineExecutor}. */
export interface PipelineExecutorOptions {
  /** agent.yaml `executors.pipeline`. */
  readonly config: PipelineExecutorConfig;
  /** Where the `stdout` output writes (default: the agent's stdout). */
  readonly stdout?: Writable;
  /** Timings of the file input (tests shorten them). */
  readonly file?: {
    readonly pollIntervalMs?: number;
    readonly scanIntervalMs?: number;
    readonly rotateWaitMs?: number;
  };
  /** Errored messages logged per health window before the rest are only counted (default 5). */
  readonly errorLogsPerWindow?: number;
}

const list = (items: readonly string[]): string => (items.length > 0 ? items.join(", ") : "none");

/**
 * Why agent.yaml `policy` refuses pipeline `config` (a sentence naming the rule); undefined when
 * it allows it. `generate`, `stdout` and `discard` need no permission.
 */
export function pipelinePolicyProblem(
  config: PipelineJobConfig,
  policy: PipelineExecutorConfig,
): string | undefined {
  const { input, output } = config;
  if (input.kind === "file") {
    for (const [i, p] of input.paths.entries()) {
      if (!patternAllowed(policy.allowedInputPaths, p)) {
        return `input.file.paths[${i}] ${JSON.stringify(p)} is not allowed by agent.yaml executors.pipeline.allowed_input_paths (allowed: ${list(policy.allowedInputPaths)})`;
      }
    }
  }
  if (input.kind === "nats") {
    const problem = subjectProblem(policy.natsSubjectsAllowed, input.subject, "input.nats.subject");
    if (problem) return problem;
  }
  if (output.kind === "file" && !pathAllowed(policy.allowedOutputPaths, output.path)) {
    return `output.file.path ${JSON.stringify(output.path)} is not allowed by agent.yaml executors.pipeline.allowed_output_paths (allowed: ${list(policy.allowedOutputPaths)})`;
  }
  if (output.kind === "nats") {
    return subjectProblem(policy.natsSubjectsAllowed, output.subject, "output.nats.subject");
  }
  return undefined;
}

function describeInput(c: PipelineJobConfig["input"]): string {
  if (c.kind === "generate") return `generate every ${c.intervalMs} ms`;
  if (c.kind === "file") return `file ${c.paths.join(", ")}`;
  return `nats in.data.${c.subject}`;
}

function describeOutput(c: PipelineJobConfig["output"]): string {
  if (c.kind === "file") return `file ${c.path}`;
  if (c.kind === "nats") return `nats out.data.${c.subject}`;
  return c.kind;
}

/** Creates the pipeline executor (type `pipeline`). */
export function createPipelineExecutor(options: PipelineExecutorOptions): Executor {
  return {
    name: "pipeline",
    types: ["pipeline"],
    start: (assignment, ctx) => startPipeline(assignment, ctx, options),
  };
}

function snapshot(c: PipelineCounters) {
  return { messagesIn: c.in, messagesOut: c.out, messagesFiltered: c.filtered, messagesErrored: c.errored };
}

function startPipeline(a: Assignment, ctx: ExecutionContext, o: PipelineExecutorOptions): ExecutionHandle {
  let config: PipelineJobConfig;
  try {
    config = parseJobConfig("pipeline", a.config, "spec.config");
  } catch (err) {
    return failedHandle(ctx, `the job config is invalid: ${(err as Error).message}`);
  }
  const refusal = pipelinePolicyProblem(config, o.config);
  if (refusal) return failedHandle(ctx, refusal);
  let processors: ReturnType<typeof compileProcessors>;
  try {
    processors = compileProcessors(config.processors);
  } catch (err) {
    return failedHandle(ctx, `a processor is not valid JSONata: ${describeJsonataError(err)}`);
  }

  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  const policy = o.config;
  const log = (level: "INFO" | "WARN", text: string): void => ctx.log(level, "agent", text);

  let input: PipelineInput;
  const i = config.input;
  if (i.kind === "generate") {
    input = new GenerateInput({ ...i, maxBuffer: policy.maxBuffer, clock: ctx.clock });
  } else if (i.kind === "file") {
    input = new FileInput({
      paths: i.paths,
      allowed: policy.allowedInputPaths,
      maxBuffer: policy.maxBuffer,
      offsetsFile: join(ctx.dataDir, "file-offsets.json"),
      log,
      ...o.file,
    });
  } else {
    input = new NatsInput(ctx.data, i.subject, policy.maxBuffer);
  }
  let output: PipelineOutput;
  const out = config.output;
  if (out.kind === "stdout") output = new StreamOutput(o.stdout ?? process.stdout);
  else if (out.kind === "discard") output = new DiscardOutput();
  else if (out.kind === "file") output = new FileOutput(out.path, policy.allowedOutputPaths);
  else output = new NatsOutput(ctx.data, out.subject, stop.signal);

  // Errored messages: the first few of each window are logged, the rest counted in one line.
  const perWindow = o.errorLogsPerWindow ?? 5;
  let loggedThisWindow = 0;
  let suppressed = 0;
  const runtime = new PipelineRuntime({
    input,
    processors,
    output,
    onMessageError: (where, err) => {
      if (loggedThisWindow < perWindow) {
        loggedThisWindow++;
        log("WARN", `${where} failed: ${describeJsonataError(err)}; the message was dropped`);
      } else suppressed++;
    },
  });

  const maxErrorRate = a.maxErrorRate;
  const windowMs = policy.healthWindowMs;
  const health = new HealthWindows(maxErrorRate);
  let running = false;
  const closeWindow = (): void => {
    const w = health.roll(runtime.counters);
    if (suppressed > 0) {
      log("WARN", `${suppressed} more messages errored in the last window (not logged one by one)`);
    }
    suppressed = 0;
    loggedThisWindow = 0;
    if (!w.flipped || !running) return;
    const detail = `error rate ${w.errorRate.toFixed(2)} over the last ${windowMs} ms (${w.errored} of ${w.in} messages errored; max_error_rate ${maxErrorRate})`;
    log(w.healthy ? "INFO" : "WARN", `${w.healthy ? "healthy again" : "unhealthy"}: ${detail}`);
    ctx.emit({
      health: { healthy: w.healthy, errorRate: w.errorRate },
      counters: snapshot(runtime.counters),
    });
  };
  const timer = setInterval(closeWindow, windowMs);
  timer.unref?.();

  const done = (async (): Promise<void> => {
    try {
      await output.open();
      await input.open();
    } catch (err) {
      clearInterval(timer);
      await runtime.close();
      if (!stop.signal.aborted) ctx.emit({ state: "error", exception: (err as Error).message });
      return;
    }
    if (stop.signal.aborted) {
      clearInterval(timer);
      await runtime.close();
      return;
    }
    running = true;
    ctx.emit({
      state: "running",
      health: { healthy: true, errorRate: 0 },
      counters: snapshot(runtime.counters),
    });
    log(
      "INFO",
      `pipeline running: ${describeInput(config.input)} → ${processors.length} processor(s) → ${describeOutput(config.output)}; health window ${windowMs} ms, max_error_rate ${maxErrorRate}`,
    );
    try {
      const end = await runtime.run(stop.signal);
      running = false;
      if (end === "exhausted") {
        const c = runtime.counters;
        log(
          "INFO",
          `input exhausted after ${c.in} messages (${c.out} out, ${c.filtered} filtered, ${c.errored} errored)`,
        );
        ctx.emit({ state: "finished", progress: 1, counters: snapshot(c), health: health.current });
      }
    } catch (err) {
      running = false;
      if (!stop.signal.aborted) {
        ctx.emit({ state: "error", exception: (err as Error).message, counters: snapshot(runtime.counters) });
      }
    } finally {
      running = false;
      clearInterval(timer);
      ctx.signal.removeEventListener("abort", onAbort);
      await runtime.close();
    }
  })();

  return {
    async stop() {
      stop.abort();
      await done;
    },
    status: () => ({
      counters: snapshot(runtime.counters),
      health: { healthy: running && health.current.healthy, errorRate: health.current.errorRate },
    }),
  };
}
