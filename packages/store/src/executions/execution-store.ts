/**
 * Persistence of executions (one job version on one node) and of their logs.
 *
 * - {@link ExecutionStore}: the execution records. Two writers, never the same fields: agents
 *   (through the control plane's ingest) write the **observed** fields with a monotonic guard
 *   ({@link reportApplies}: an older report never replaces a newer one, a terminal state is never
 *   replaced within its attempt); the control plane writes the **desired** state (cancel) and its
 *   own inferences (`lost`, placeholders, archive). Each write is one atomic step (one Lua script
 *   in Redis), so concurrent writers from several replicas never lose an update.
 * - {@link LogStore}: per execution, a bounded log (lines AND bytes; the oldest lines are dropped
 *   first and counted), de-duplicated by the agent's (time, sequence), read by tail or after a
 *   position (follow).
 *
 * Two implementations of each (memory and Redis) pass one conformance suite
 * (`conformance/execution-store-suite.ts`). Times are milliseconds since the epoch; 0 = none.
 */
import type { ExecutionDesiredState, ExecutionStateType, ReportedExecutionState } from "./execution-state.js";

/** Health of a running execution, as its agent reported it. */
export interface ExecutionHealthRecord {
  readonly healthy: boolean;
  /** errored / in over the agent's last health window. */
  readonly errorRate: number;
  /** Since when it has been in this health (agent time); 0 when unknown. */
  readonly since: number;
}

/** Message counters of a pipeline execution. */
export interface ExecutionCountersRecord {
  readonly messagesIn: number;
  readonly messagesOut: number;
  readonly messagesFiltered: number;
  readonly messagesErrored: number;
}

/** What an execution is: fixed when the record is created (from the node's desired state). */
export interface ExecutionIdentity {
  readonly id: string;
  readonly jobId: string;
  readonly jobVersion: number;
  readonly nodeId: string;
  /** The deployment that placed it ("" for simple placement). */
  readonly deploymentId: string;
  readonly namespace: string;
  /** pipeline | query | update | config (decides whether it is run-once). */
  readonly jobType: string;
  /** on-failure | always | never. */
  readonly restartPolicy: string;
  /** The desired state the assignment was written with. */
  readonly desiredState: ExecutionDesiredState;
}

/** An execution as stored. */
export interface ExecutionRecord extends ExecutionIdentity {
  readonly state: ExecutionStateType;
  /** When the control plane first knew of it. */
  readonly createdAt: number;
  /** The last write of any kind. */
  readonly updatedAt: number;
  readonly startTime: number;
  readonly finishTime: number;
  readonly exitCode: number | undefined;
  /** The result as JSON text (a query's stdout, parsed as JSON when it is JSON); undefined when none. */
  readonly result: string | undefined;
  readonly resultTruncated: boolean;
  /** The full size of the result before any cut, in bytes. */
  readonly resultBytes: number;
  readonly exception: string;
  /** 0..1 where the executor knows it. */
  readonly progress: number;
  readonly health: ExecutionHealthRecord | undefined;
  readonly counters: ExecutionCountersRecord | undefined;
  /** 1 for the first run, + 1 per restart; 0 until the agent first reports. */
  readonly attempt: number;
  /** The agent's time of the last report applied; 0 = never reported (a placeholder). */
  readonly reportedAt: number;
  /** When (control-plane time) it entered an ended state; 0 while it is not ended. */
  readonly endedAt: number;
  readonly archived: boolean;
  readonly archivedAt: number;
  /** Why it was canceled (the reason given to cancel), "" when it was not. */
  readonly cancelReason: string;
  /** When cancel was asked; 0 when it was not. */
  readonly canceledAt: number;
}

/** A result carried by an execution event (JSON text, already capped by the caller). */
export interface ExecutionResultInput {
  /** JSON text; undefined to keep no result (dropped: too large, or not JSON) but record the sizes. */
  readonly json: string | undefined;
  readonly truncated: boolean;
  readonly bytes: number;
}

/** One observation of an execution by its agent (a heartbeat entry or an execution event). */
export interface ExecutionReport {
  readonly id: string;
  /** The node that sent it (from the subject). A report from another node than the owner is refused. */
  readonly nodeId: string;
  readonly state: ReportedExecutionState;
  readonly attempt: number;
  /** The agent's time of the report (ms > 0). */
  readonly reportedAt: number;
  /** Control-plane time of the write. */
  readonly now: number;
  readonly startTime: number;
  readonly finishTime: number;
  readonly exitCode: number | undefined;
  readonly exception: string;
  readonly progress: number;
  readonly health: ExecutionHealthRecord | undefined;
  readonly counters: ExecutionCountersRecord | undefined;
  /** Only events carry a result; a report without one leaves the stored result alone. */
  readonly result?: ExecutionResultInput;
}

/** The outcome of {@link ExecutionStore.observe}. */
export type ObserveOutcome =
  /** Written. `previousState` is undefined when the write created the record. */
  | {
      readonly status: "applied";
      readonly record: ExecutionRecord;
      readonly previous: ExecutionStateType | undefined;
    }
  /** Older than what is stored (the monotonic guard): nothing written. */
  | { readonly status: "stale"; readonly record: ExecutionRecord }
  /** No such execution and no identity to create it with. */
  | { readonly status: "missing" }
  /** Archived executions are frozen. */
  | { readonly status: "archived"; readonly record: ExecutionRecord }
  /** The execution belongs to another node: nothing written. */
  | { readonly status: "wrong_node"; readonly owner: string };

/** Where a page of executions starts: the creation time and id of the last one examined. */
export interface ExecutionCursor {
  readonly createdAt: number;
  readonly id: string;
}

/** A list of a job's executions, in (createdAt, id) order. */
export interface ListExecutionsQuery {
  readonly jobId: string;
  /** Only these states (empty/undefined = all). */
  readonly states?: readonly ExecutionStateType[];
  readonly nodeId?: string;
  /** Archived executions too (they are left out otherwise). */
  readonly includeArchived: boolean;
  /** 1..1000. */
  readonly limit: number;
  readonly cursor?: ExecutionCursor;
  /**
   * At most this many executions are examined per call (filters run over the job's executions
   * in order); past it the page is returned short with a cursor. Default max(1000, 10 × limit).
   */
  readonly maxScan?: number;
}

/** A page of executions; `next` is absent on the last page. */
export interface ExecutionPage {
  readonly items: ExecutionRecord[];
  readonly next?: ExecutionCursor;
}

/** The execution store. Every method rejects with an `EdgeplaneError`. */
export interface ExecutionStore {
  /**
   * Applies an agent's report under the monotonic guard. Creates the record when it does not
   * exist and `create` is given (its id and node must match the report's).
   */
  observe(report: ExecutionReport, create?: ExecutionIdentity): Promise<ObserveOutcome>;
  /**
   * Creates placeholders (state `waiting`, never reported) for assignments the control plane just
   * wrote; existing executions are left alone. Returns the ids it created.
   */
  ensure(identities: readonly ExecutionIdentity[], now: number): Promise<string[]>;
  /**
   * Deletes the node's placeholders that no agent ever reported and that are not in `keep`
   * (their assignment was withdrawn before the node ran them). Returns what it deleted.
   */
  withdraw(nodeId: string, keep: readonly string[]): Promise<Array<{ id: string; jobId: string }>>;
  /** Moves the node's executions that are not ended to `lost` with `message`; returns those it changed. */
  markLost(nodeId: string, now: number, message: string): Promise<ExecutionRecord[]>;
  /**
   * Sets the desired state to `stopped` (cancel). `not_found`; `failed_precondition` naming the
   * state when the execution is already terminal. Asking again changes nothing.
   */
  requestStop(
    id: string,
    now: number,
    reason: string,
  ): Promise<{ record: ExecutionRecord; changed: boolean }>;
  /** One execution (archived ones too); undefined when unknown. */
  get(id: string): Promise<ExecutionRecord | undefined>;
  /** A page of a job's executions (keyset pagination, stable under concurrent writes). */
  list(query: ListExecutionsQuery): Promise<ExecutionPage>;
  /** Archives executions ended at or before `endedBefore` (at most `limit`); returns their ids. */
  archive(endedBefore: number, now: number, limit: number): Promise<string[]>;
  /** Deletes archived executions archived at or before `archivedBefore` (at most `limit`); returns their ids. */
  purge(archivedBefore: number, limit: number): Promise<string[]>;
  /** Releases connections the store opened itself. */
  close(): Promise<void>;
}

/** One stored log line. */
export interface LogLineRecord {
  /** The control plane's position in this execution's log: 1, 2, 3, ... (never reused). */
  readonly seq: number;
  /** The agent's sequence number of the line. */
  readonly agentSeq: number;
  /** The agent's time of the line; 0 when it sent none. */
  readonly time: number;
  /** stdout | stderr | agent. */
  readonly stream: string;
  /** DEBUG | INFO | WARN | ERROR. */
  readonly level: string;
  readonly text: string;
}

/** A line to append (no position yet). */
export type LogLineInput = Omit<LogLineRecord, "seq">;

/** The outcome of {@link LogStore.append}. */
export interface LogAppendResult {
  /** Lines appended (a line already seen, by agent time and sequence, is skipped). */
  readonly appended: number;
  /** The position of the last line ever appended. */
  readonly lastSeq: number;
  /** Lines dropped so far: by the bounds here, plus those the agent reported dropping. */
  readonly dropped: number;
}

/** What {@link LogStore.read} returns. */
export interface LogRead {
  readonly lines: LogLineRecord[];
  /** Lines dropped so far (see {@link LogAppendResult.dropped}). */
  readonly dropped: number;
  /** The position of the last line ever appended (0 when none). */
  readonly lastSeq: number;
}

/** How to read a log. */
export interface LogReadQuery {
  /** The last `tail` kept lines (0 or undefined = from the oldest kept line). Ignored with `after`. */
  readonly tail?: number;
  /** Lines after this position (follow). */
  readonly after?: number;
  /** At most this many lines (default and maximum: the store's line bound). */
  readonly limit?: number;
}

/** Bounds of each execution's log. */
export interface LogBounds {
  /** Lines kept per execution (default 5000). */
  readonly maxLines?: number;
  /** Bytes kept per execution, counting each stored line (default 512 KiB). */
  readonly maxBytes?: number;
}

/** Per-execution logs. Every method rejects with an `EdgeplaneError`. */
export interface LogStore {
  /** The bounds in force. */
  readonly bounds: Required<LogBounds>;
  /**
   * Appends lines (in order) to an execution's log, skipping lines not newer than the last one
   * kept (by agent time, then agent sequence: a batch received twice is appended once). Adds
   * `agentDropped` to the drop count when at least one line was new. Drops the oldest lines past
   * the bounds.
   */
  append(executionId: string, lines: readonly LogLineInput[], agentDropped: number): Promise<LogAppendResult>;
  /** Reads an execution's log; an unknown execution reads as empty. */
  read(executionId: string, query?: LogReadQuery): Promise<LogRead>;
  /** Deletes these executions' logs. */
  delete(executionIds: readonly string[]): Promise<void>;
  /** Releases connections the store opened itself. */
  close(): Promise<void>;
}
