/**
 * Execution states (the "task" states of the Pulp tasks API, plus `lost`), as constants with
 * predicates and one transition table, so a new state touches this file only. The Lua scripts get
 * the lists they need from here (`LUA_EXECUTION_STATES` in `keys.ts`), so Redis and the memory
 * store judge a report with the same table.
 */

/**
 * Execution states, one line per state:
 * - waiting: assigned to the node, not started (or stopped with its agent, to resume when it restarts);
 * - running: the node's executor runs it;
 * - finished: a run-once execution ended successfully (exit code 0);
 * - error: it failed, or could not start;
 * - timed_out: the agent stopped it at the job's `execution_timeout`;
 * - canceled: stopped because the control plane asked (cancel, or the assignment was withdrawn);
 * - lost: the control plane's inference that its node was lost; a later report from the node wins.
 */
export const EXECUTION_STATES = [
  "waiting",
  "running",
  "finished",
  "error",
  "timed_out",
  "canceled",
  "lost",
] as const;

/** An execution state. */
export type ExecutionStateType = (typeof EXECUTION_STATES)[number];

/** The states an agent reports (every state but `lost`, which only the control plane infers). */
export type ReportedExecutionState = Exclude<ExecutionStateType, "lost">;

/** What the control plane wants of an execution: `running`, or `stopped` (after a cancel). */
export const EXECUTION_DESIRED_STATES = ["running", "stopped"] as const;

/** A desired state of an execution. */
export type ExecutionDesiredState = (typeof EXECUTION_DESIRED_STATES)[number];

/**
 * Moves within one attempt. A new attempt (a restart under the restart policy, `attempt` + 1)
 * may start from any state; within an attempt a terminal state is final, and `lost` gives way to
 * whatever the node reports next.
 */
export const EXECUTION_TRANSITIONS = {
  waiting: ["running", "finished", "error", "timed_out", "canceled", "lost"],
  running: ["waiting", "finished", "error", "timed_out", "canceled", "lost"],
  finished: [],
  error: [],
  timed_out: [],
  canceled: [],
  lost: ["waiting", "running", "finished", "error", "timed_out", "canceled"],
} as const satisfies Record<ExecutionStateType, readonly ExecutionStateType[]>;

const TERMINAL: ReadonlySet<string> = new Set<ExecutionStateType>([
  "finished",
  "error",
  "timed_out",
  "canceled",
]);
const FAILED: ReadonlySet<string> = new Set<ExecutionStateType>(["error", "timed_out", "lost"]);

/** Type guard for an execution state string. */
export function isExecutionState(value: string): value is ExecutionStateType {
  return (EXECUTION_STATES as readonly string[]).includes(value);
}

/** Whether the agent said this execution attempt is over (finished, error, timed_out, canceled). */
export function isTerminalExecutionState(state: string): boolean {
  return TERMINAL.has(state);
}

/**
 * Whether the execution is not running as far as the control plane knows: terminal, or `lost`.
 * Ended executions are archived after the retention time, end log follows, and count as done for
 * a run-once job.
 */
export function isEndedExecutionState(state: string): boolean {
  return TERMINAL.has(state) || state === "lost";
}

/** Whether the state is a failure (error, timed_out, lost). */
export function isFailedExecutionState(state: string): boolean {
  return FAILED.has(state);
}

/** Whether an execution may move from `from` to `to` within one attempt. */
export function canExecutionTransition(from: ExecutionStateType, to: ExecutionStateType): boolean {
  return (EXECUTION_TRANSITIONS[from] as readonly ExecutionStateType[]).includes(to);
}

/** The states an execution may enter `to` from within one attempt. */
export function executionAllowedFrom(to: ExecutionStateType): ExecutionStateType[] {
  return EXECUTION_STATES.filter((from) => canExecutionTransition(from, to));
}

/** What the monotonic guard knows of an execution, and what a report claims. */
export interface ObservationKey {
  readonly state: ExecutionStateType;
  /** 1 for the first run; bumps on every restart. 0 before the agent ever reported. */
  readonly attempt: number;
  /** The agent's time of the report (ms); 0 for a record no agent reported yet. */
  readonly reportedAt: number;
}

/**
 * The monotonic guard (pure; `observeExecution.lua` is its mirror): whether a report replaces
 * what is stored, or is stale and ignored.
 *
 * 1. An older attempt is stale; a newer attempt always applies.
 * 2. Within an attempt, a terminal state is never replaced (by a non-terminal one from a stale
 *    heartbeat, or by another terminal one); the same terminal state reported again applies only
 *    when newer (a refresh that changes nothing).
 * 3. A move the table allows applies when the report is newer than the stored one; a move into a
 *    terminal state applies whatever the times say (the agent's transition events are final).
 * 4. The same state applies when newer (progress, health, counters); a repeat is ignored.
 *
 * `lost` keeps the key of the last report from the node, so a report newer than that one (the
 * node came back) replaces `lost`, and a stale one does not.
 */
export function reportApplies(current: ObservationKey, report: ObservationKey): boolean {
  if (report.attempt !== current.attempt) return report.attempt > current.attempt;
  if (report.state === current.state) return report.reportedAt > current.reportedAt;
  if (!canExecutionTransition(current.state, report.state)) return false;
  if (isTerminalExecutionState(report.state) && current.state !== "lost") return true;
  return report.reportedAt > current.reportedAt;
}
