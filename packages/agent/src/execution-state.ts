/**
 * The agent's vocabulary of execution states, desired states and job types, as constants with
 * predicates, so a new state or type touches this file only.
 */
import type { JobType } from "@edgeplane/core";

/**
 * Execution states as the agent reports them, one line per state:
 * - waiting: held but not running (not started yet, or stopped with the agent and resumed when it restarts);
 * - running: the executor runs it;
 * - finished: a run-once execution ended successfully (exit code 0);
 * - error: it failed, or could not start (no executor enabled for its type);
 * - timed_out: the agent stopped it at its `execution_timeout`;
 * - canceled: stopped because the control plane asked (desired state "stopped" or removed).
 */
export const EXECUTION_STATES = ["waiting", "running", "finished", "error", "timed_out", "canceled"] as const;

/** An execution state. */
export type ExecutionState = (typeof EXECUTION_STATES)[number];

const TERMINAL: ReadonlySet<string> = new Set<ExecutionState>(["finished", "error", "timed_out", "canceled"]);

/** Whether an execution in this state will not change again on its own. */
export function isTerminalExecutionState(state: string): boolean {
  return TERMINAL.has(state);
}

/** Type guard for an execution state string. */
export function isExecutionState(value: string): value is ExecutionState {
  return (EXECUTION_STATES as readonly string[]).includes(value);
}

/** What the control plane wants of an assignment: `running` or `stopped`. */
export const DESIRED_STATES = ["running", "stopped"] as const;

/** A desired state. */
export type DesiredExecutionState = (typeof DESIRED_STATES)[number];

/**
 * How the agent runs a job type:
 * - long-running: runs until stopped; restarted when the agent restarts (pipelines);
 * - run-once: runs to completion once; its final status is persisted so that it is never run
 *   again, even across agent restarts (queries, updates, config pushes). A failed attempt is
 *   first retried per `restart_policy`, up to `MAX_RUN_ONCE_ATTEMPTS` (agent.ts).
 */
export type RunMode = "long-running" | "run-once";

/** The run mode of each job type. */
export const RUN_MODE = {
  pipeline: "long-running",
  query: "run-once",
  update: "run-once",
  config: "run-once",
} as const satisfies Record<JobType, RunMode>;

/** The run mode of a job type; `undefined` for a type this agent does not know. */
export function runModeOf(type: string): RunMode | undefined {
  return Object.hasOwn(RUN_MODE, type) ? RUN_MODE[type as JobType] : undefined;
}

/** The executors agent.yaml can enable (`executors.<name>.enabled`). */
export const EXECUTOR_NAMES = ["pipeline", "exec", "config"] as const;

/** An executor name of agent.yaml. */
export type ExecutorName = (typeof EXECUTOR_NAMES)[number];

/** Which agent.yaml executor runs each job type (what the "no executor" error points at). */
export const EXECUTOR_FOR_TYPE = {
  pipeline: "pipeline",
  query: "exec",
  update: "exec",
  config: "config",
} as const satisfies Record<JobType, ExecutorName>;
