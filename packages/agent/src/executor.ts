/**
 * The executor seam: what runs the work of an assignment. The agent owns the protocol (desired
 * state, persistence, heartbeats, events, logs, timeouts); an executor only starts one
 * assignment, reports how it goes, and stops it when asked. The built-in `pipeline`, `exec` and
 * `config` executors (`executors/`) live behind this interface, as do test doubles.
 */
import type { JsonValue } from "@bufbuild/protobuf";
import type { Assignment } from "@edgeplane/api";
import type { Clock, Logger } from "@edgeplane/core";
import type { ExecutionDataChannel } from "./data-channel.js";
import type { ExecutionState } from "./execution-state.js";

/** Log levels of execution logs, as the LogLine proto spells them. */
export type ExecutionLogLevel = "DEBUG" | "INFO" | "WARN" | "ERROR";

/** Where a log line came from: the work's stdout/stderr, or the agent/executor itself. */
export type ExecutionLogStream = "stdout" | "stderr" | "agent";

/** Message counters of a pipeline (plain numbers; the agent converts them to uint64). */
export interface ExecutionCountersSnapshot {
  readonly messagesIn?: number;
  readonly messagesOut?: number;
  readonly messagesFiltered?: number;
  readonly messagesErrored?: number;
}

/** Health of a running execution over the executor's health window. */
export interface ExecutionHealthSnapshot {
  readonly healthy: boolean;
  /** Errored / in over the last window, 0..1. */
  readonly errorRate?: number;
}

/**
 * What an executor knows about one execution. Every field is optional in a report; the agent
 * keeps the last value of each. The agent fills `start_time` when the state first becomes
 * `running` and `finish_time` when it becomes terminal, unless the executor gives them.
 */
export interface ExecutionReport {
  readonly state?: ExecutionState;
  readonly health?: ExecutionHealthSnapshot;
  readonly counters?: ExecutionCountersSnapshot;
  readonly exitCode?: number;
  /** 0..1 where the executor knows it. */
  readonly progress?: number;
  readonly startTimeMs?: number;
  readonly finishTimeMs?: number;
  /** Why it failed, in words that say what to do next. */
  readonly exception?: string;
}

/**
 * A report passed to {@link ExecutionContext.emit}: a status change, plus, on the final
 * transition of a query, its result (sent once, in the execution event).
 */
export interface ExecutionUpdate extends ExecutionReport {
  readonly result?: JsonValue;
  readonly resultTruncated?: boolean;
  readonly resultBytes?: number;
}

/**
 * Why the agent stops an execution:
 * - canceled: the control plane no longer wants it (desired "stopped", or removed from the set);
 * - timed_out: it ran longer than its `execution_timeout`;
 * - agent_stopping: the agent is shutting down; long-running work resumes when it restarts.
 */
export type StopReason = "canceled" | "timed_out" | "agent_stopping";

/** What the agent gives an executor for one execution. */
export interface ExecutionContext {
  /** The node this agent runs as. */
  readonly nodeId: string;
  readonly executionId: string;
  /** 1 for the first run of this execution on this node; bumps on every start. */
  readonly attempt: number;
  /** Aborted (with the {@link StopReason} as reason) when the agent stops the execution. */
  readonly signal: AbortSignal;
  /** A directory of this execution's own (`<data-dir>/executions/<execution_id>`), created. */
  readonly dataDir: string;
  readonly clock: Clock;
  /** The agent's logger, for the executor's own diagnostics (not shipped to the control plane). */
  readonly logger: Logger;
  /**
   * Pipeline data on the agent's own NATS connection, on the node's `out.data.>` / `in.data.>`
   * subjects (see `data-channel.ts`).
   */
  readonly data: ExecutionDataChannel;
  /** One line of execution log, shipped to the control plane in `LogBatch`es. */
  log(level: ExecutionLogLevel, stream: ExecutionLogStream, text: string): void;
  /**
   * Reports a change. A change of `state` is a transition: the agent sends it at once as an
   * execution event; a terminal state ends the execution (later reports are ignored).
   */
  emit(update: ExecutionUpdate): void;
}

/** A started execution, as the agent holds it. */
export interface ExecutionHandle {
  /**
   * Stops the execution and resolves once it has stopped (the context's signal is aborted
   * first). It may emit a final state; if it does not, the agent records the one the reason implies.
   */
  stop(reason: StopReason): Promise<void>;
  /** The current status: read on every heartbeat, so it must be cheap. */
  status(): ExecutionReport;
}

/** Something that runs the assignments of some job types. */
export interface Executor {
  /** The executor's name, as in agent.yaml (`pipeline`, `exec`, `config`) or a test double's. */
  readonly name: string;
  /** The job types it runs (`pipeline`, `query`, `update`, `config`). */
  readonly types: readonly string[];
  /**
   * Starts one assignment and returns at once; progress is reported through `ctx.emit`. May
   * throw (the execution then ends in state `error` with the error's message as exception).
   */
  start(assignment: Assignment, ctx: ExecutionContext): ExecutionHandle;
}
