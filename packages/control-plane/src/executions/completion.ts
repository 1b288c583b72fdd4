/**
 * Run-once jobs (query, update, config) end when their executions do.
 *
 * `decideRunOnceJob` is pure (no I/O, no clock of its own): given the job and its executions it
 * returns what the job's state should become. {@link JobCompletion} is the runtime around it: a
 * key-deduplicating work queue of job ids (any execution change of a job only adds its id), a
 * sync that re-reads the job and its executions, decides, and writes the job status with the
 * job store's guards (expected revision and `allowedFrom` from core's table), so two replicas
 * deciding at once write once.
 *
 * The rules, for the executions of the job's **current version**:
 * 1. A failure (error, timed_out, lost) is **final** when its restart policy allows no more
 *    attempts: `never`; or its attempt reached `maxAttempts`; or the node was lost; or no newer
 *    attempt was reported within `retryGraceMs` of the failure (the agent is not retrying). Any
 *    final failure fails the job at once, with the reason: "node n2: exited with code 1: ...
 *    (attempt 1, restart_policy never)".
 * 2. A failure that may still be retried holds the decision; the job is looked at again when its
 *    grace ends.
 * 3. When every execution has ended (finished or canceled) the job is completed: "finished on 3
 *    nodes". A job with no execution yet is left alone.
 *
 * Worked example (maxAttempts 3, retryGraceMs 60 s, restart_policy on-failure): n1 finished, n2
 * error at attempt 1 (t = 0). At t = 0 the decision is "none, again in 60 s"; if n2 reports
 * attempt 2 running at t = 5 s, the failure is gone; if nothing comes, at t = 60 s the failure is
 * final and the job fails ("node n2: exited with code 1 (attempt 1 of 3, restart_policy
 * on-failure; no retry within 60 s)").
 */
import {
  allowedFrom,
  type Clock,
  createLogger,
  EdgeplaneError,
  type JobStateType,
  type Logger,
  systemClock,
} from "@edgeplane/core";
import { WorkQueue } from "@edgeplane/orchestrator";
import {
  type ExecutionRecord,
  type ExecutionStore,
  isEndedExecutionState,
  isFailedExecutionState,
  type JobRecord,
  type JobStore,
} from "@edgeplane/store";

/** The job types whose executions run once. */
export const RUN_ONCE_TYPES: readonly string[] = ["query", "update", "config"];

/** Whether executions of this job type run once. */
export function isRunOnceType(type: string): boolean {
  return RUN_ONCE_TYPES.includes(type);
}

/** The job states a completion decision may move a job out of. */
const DECIDABLE: readonly JobStateType[] = ["pending", "running"];

/** What {@link decideRunOnceJob} needs. */
export interface CompletionInput {
  readonly job: Pick<JobRecord, "id" | "type" | "version" | "state">;
  /** The job's executions (any version; archived ones too). */
  readonly executions: readonly ExecutionRecord[];
  readonly now: number;
  /** Attempts after which a failure is final for on-failure/always; default 3. */
  readonly maxAttempts: number;
  /** A failure with attempts left is final when no newer attempt came within this; default 60 s. */
  readonly retryGraceMs: number;
}

/** What the job's state should become. */
export type CompletionDecision =
  | { readonly kind: "none"; readonly recheckAfterMs?: number }
  | {
      readonly kind: "completed" | "failed";
      readonly message: string;
      readonly details: Readonly<Record<string, string>>;
    };

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

/** Why an execution failed, in words (the node, what happened, the attempt). */
export function failureReason(e: ExecutionRecord, maxAttempts: number, graceEnded: boolean): string {
  let what: string;
  if (e.state === "lost") what = "was lost with its node";
  else if (e.state === "timed_out") what = "timed out";
  else what = e.exitCode !== undefined ? `exited with code ${e.exitCode}` : "failed";
  const exception = e.exception && e.state !== "lost" ? `: ${e.exception}` : "";
  const policy = e.restartPolicy || "on-failure";
  const attempts = policy === "never" ? `attempt ${e.attempt}` : `attempt ${e.attempt} of ${maxAttempts}`;
  const grace =
    graceEnded && policy !== "never" && e.attempt < maxAttempts && e.state !== "lost"
      ? "; no retry came"
      : "";
  return `node ${e.nodeId}: ${what}${exception} (${attempts}, restart_policy ${policy}${grace})`;
}

/** The pure decision (see the module header for the rules). */
export function decideRunOnceJob(input: CompletionInput): CompletionDecision {
  const { job, now, maxAttempts, retryGraceMs } = input;
  if (!isRunOnceType(job.type) || !DECIDABLE.includes(job.state)) return { kind: "none" };
  const current = input.executions.filter((e) => e.jobVersion === job.version);
  if (current.length === 0) return { kind: "none" };
  const final: Array<{ e: ExecutionRecord; graceEnded: boolean }> = [];
  let recheck: number | undefined;
  for (const e of current) {
    if (!isFailedExecutionState(e.state)) continue;
    const waited = now - e.endedAt;
    if (e.state === "lost" || e.restartPolicy === "never" || e.attempt >= maxAttempts)
      final.push({ e, graceEnded: false });
    else if (waited >= retryGraceMs) final.push({ e, graceEnded: true });
    else recheck = Math.min(recheck ?? Number.POSITIVE_INFINITY, retryGraceMs - waited);
  }
  const byNode = (a: ExecutionRecord, b: ExecutionRecord) =>
    a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0;
  const finished = current.filter((e) => e.state === "finished").length;
  const canceled = current.filter((e) => e.state === "canceled").length;
  if (final.length > 0) {
    final.sort((a, b) => byNode(a.e, b.e));
    const first = final[0] as { e: ExecutionRecord; graceEnded: boolean };
    const more = final.length > 1 ? `; ${plural(final.length - 1, "more execution")} failed` : "";
    return {
      kind: "failed",
      message: `${failureReason(first.e, maxAttempts, first.graceEnded)}${more}`,
      details: {
        execution_id: first.e.id,
        node_id: first.e.nodeId,
        failed: String(final.length),
        finished: String(finished),
        executions: String(current.length),
      },
    };
  }
  if (recheck !== undefined) return { kind: "none", recheckAfterMs: recheck };
  if (!current.every((e) => isEndedExecutionState(e.state))) return { kind: "none" };
  const nodes = new Set(current.map((e) => e.nodeId)).size;
  const message =
    canceled === 0
      ? `finished on ${plural(finished === current.length ? nodes : finished, "node")}`
      : `finished on ${plural(finished, "node")}, canceled on ${canceled}`;
  return {
    kind: "completed",
    message,
    details: { finished: String(finished), canceled: String(canceled), executions: String(current.length) },
  };
}

/** Options of {@link JobCompletion}. */
export interface JobCompletionOptions {
  readonly jobStore: Pick<JobStore, "getJob" | "updateStatus">;
  readonly store: Pick<ExecutionStore, "list">;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly maxAttempts?: number;
  readonly retryGraceMs?: number;
  /** Jobs decided in parallel; default 4. */
  readonly concurrency?: number;
}

const PAGE = 1000;

/** The runtime around {@link decideRunOnceJob} (see the module header). */
export class JobCompletion {
  readonly #jobStore: Pick<JobStore, "getJob" | "updateStatus">;
  readonly #store: Pick<ExecutionStore, "list">;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #maxAttempts: number;
  readonly #retryGraceMs: number;
  readonly #concurrency: number;
  readonly #queue = new WorkQueue<string>();
  /** Jobs to look at again, by the (clock) time their retry grace ends. */
  readonly #due = new Map<string, number>();
  #workers: Promise<void> | undefined;
  readonly #counters = { syncs: 0, completed: 0, failed: 0, errors: 0 };

  constructor(options: JobCompletionOptions) {
    this.#jobStore = options.jobStore;
    this.#store = options.store;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? createLogger({ component: "executions.completion" });
    this.#maxAttempts = options.maxAttempts ?? 3;
    this.#retryGraceMs = options.retryGraceMs ?? 60_000;
    this.#concurrency = options.concurrency ?? 4;
  }

  /** Starts the workers. */
  start(): void {
    this.#workers ??= this.#queue.run((jobId) => this.sync(jobId), {
      concurrency: this.#concurrency,
      onError: (jobId, err) => {
        this.#counters.errors++;
        const e = EdgeplaneError.from(err);
        if (e.code !== "aborted")
          this.#log.warn("could not decide a run-once job; retrying", { job: jobId, err: e.message });
      },
    });
  }

  /** Stops the workers (a sync in flight finishes). */
  async stop(): Promise<void> {
    this.#queue.shutDown();
    await this.#workers;
  }

  /** An execution of the job changed: look at the job again. */
  notify(jobId: string): void {
    this.#queue.add(jobId);
  }

  /** Queues the jobs whose retry grace has ended by the clock (the sweeper calls it). */
  tick(): void {
    const now = this.#clock.now();
    for (const [jobId, at] of this.#due) {
      if (at > now) continue;
      this.#due.delete(jobId);
      this.#queue.add(jobId);
    }
  }

  /** Resolves once nothing is queued or in flight (tests). */
  async idle(): Promise<void> {
    while (this.#queue.length > 0 || this.#queue.inFlight > 0) {
      await this.#queue.drain();
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Counters. */
  stats(): { syncs: number; completed: number; failed: number; errors: number; waiting: number } {
    return { ...this.#counters, waiting: this.#due.size };
  }

  /** Decides one job now (the queue's handler). */
  async sync(jobId: string): Promise<void> {
    this.#counters.syncs++;
    const job = await this.#jobStore.getJob(jobId);
    if (job === undefined || !isRunOnceType(job.type) || !DECIDABLE.includes(job.state)) return;
    const executions: ExecutionRecord[] = [];
    let cursor: Awaited<ReturnType<ExecutionStore["list"]>>["next"];
    do {
      const page = await this.#store.list({ jobId, includeArchived: true, limit: PAGE, cursor });
      executions.push(...page.items);
      cursor = page.next;
    } while (cursor !== undefined);
    const now = this.#clock.now();
    const decision = decideRunOnceJob({
      job,
      executions,
      now,
      maxAttempts: this.#maxAttempts,
      retryGraceMs: this.#retryGraceMs,
    });
    if (decision.kind === "none") {
      if (decision.recheckAfterMs !== undefined) {
        this.#due.set(jobId, now + decision.recheckAfterMs);
        this.#queue.addAfter(jobId, decision.recheckAfterMs);
      }
      return;
    }
    this.#due.delete(jobId);
    try {
      await this.#jobStore.updateStatus(
        job.id,
        { state: decision.kind, message: decision.message, details: decision.details, now },
        { expectedRevision: job.revision, allowedFrom: allowedFrom(decision.kind) },
      );
    } catch (err) {
      const e = EdgeplaneError.from(err);
      // Moved meanwhile (stopped, deleted, decided by another replica): its own change re-queues it.
      if (e.code === "failed_precondition" || e.code === "not_found") return;
      throw e; // aborted (a concurrent write): retried with backoff, re-reading the job
    }
    this.#counters[decision.kind]++;
    this.#log.info(`run-once job ${decision.kind}`, {
      job: job.id,
      version: job.version,
      message: decision.message,
    });
  }
}
