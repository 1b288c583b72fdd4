/**
 * Job states and the moves allowed between them (one table; predicates derived from it).
 *
 * - pending: accepted, not yet placed.
 * - queued: no node matches the selector yet (queue_timeout counts from here).
 * - running: a deployment is active or executions are running.
 * - completed: a run-once job finished on every node.
 * - failed: the job failed (deployment failed, execution failed beyond retries, a timeout).
 * - stopped: stopped by a user; its executions are stopped.
 * - deleted: deleted by a user; hidden from lists; its name may be reused (with a new id).
 */
export const JOB_STATES = [
  "pending",
  "queued",
  "running",
  "completed",
  "failed",
  "stopped",
  "deleted",
] as const;

/** A job state. */
export type JobStateType = (typeof JOB_STATES)[number];

/**
 * Allowed transitions. A spec update (new version) of a stopped, failed or completed job makes it
 * `pending` again: submitting a job again is how a user restarts it.
 */
export const JOB_TRANSITIONS = {
  pending: ["queued", "running", "completed", "failed", "stopped", "deleted"],
  queued: ["pending", "running", "failed", "stopped", "deleted"],
  running: ["pending", "queued", "completed", "failed", "stopped", "deleted"],
  completed: ["pending", "running", "stopped", "deleted"],
  failed: ["pending", "running", "stopped", "deleted"],
  stopped: ["pending", "deleted"],
  deleted: [],
} as const satisfies Record<JobStateType, readonly JobStateType[]>;

/** Whether a job may move from `from` to `to`. */
export function canTransition(from: JobStateType, to: JobStateType): boolean {
  return (JOB_TRANSITIONS[from] as readonly JobStateType[]).includes(to);
}

/** The states a job may enter `to` from (what a guarded write passes to Redis as ARGV). */
export function allowedFrom(to: JobStateType): JobStateType[] {
  return JOB_STATES.filter((from) => canTransition(from, to));
}

/** Whether a job in this state will not change again on its own. */
export function isTerminalJobState(state: JobStateType): boolean {
  return state === "completed" || state === "failed" || state === "stopped" || state === "deleted";
}

/** Type guard for a job state string. */
export function isJobState(value: string): value is JobStateType {
  return (JOB_STATES as readonly string[]).includes(value);
}

/** Job types. */
export const JOB_TYPES = ["pipeline", "query", "update", "config"] as const;

/** A job type: pipeline (long-running), query and update (run once), config (files). */
export type JobType = (typeof JOB_TYPES)[number];

/** Type guard for a job type string. */
export function isJobType(value: string): value is JobType {
  return (JOB_TYPES as readonly string[]).includes(value);
}
