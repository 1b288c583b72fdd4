/**
 * The Executions service layer: API requests (REST and gRPC alike) become store calls. Validates
 * at the edge (states, node id, page size, tail, reason), signs page tokens, follows logs; the
 * adapters only convert wire forms.
 */
import { type Clock, EdgeplaneError, invalidArgument } from "@edgeplane/core";
import {
  EXECUTION_STATES,
  type ExecutionCursor,
  type ExecutionRecord,
  type ExecutionStateType,
  type ExecutionStore,
  isEndedExecutionState,
  isExecutionState,
  type JobRecord,
  type JobStore,
  type LogLineRecord,
  type LogRead,
  type LogStore,
} from "@edgeplane/store";
import { pageSize } from "../jobs/service.js";
import type { PageTokens } from "../page-token.js";
import type { LogFeed } from "./log-feed.js";

/**
 * Makes the node's desired state stop (or drop) an execution: the desired-state writer's side of
 * a cancel (simple placement today, the deployment runtime tomorrow). Must be idempotent: a
 * retried cancel calls it again. Rejects (retryably) when it cannot write now.
 */
export type CancelAssignment = (executionId: string, execution: ExecutionRecord) => Promise<void>;

/** ListExecutions parameters as they arrive (REST query or gRPC fields), before validation. */
export interface ListExecutionsParams {
  readonly states?: readonly string[];
  readonly nodeId?: string;
  readonly includeArchived?: boolean;
  readonly limit?: number;
  readonly nextToken?: string;
  /** Where to find the job when it is named rather than given by id (default "default"). */
  readonly namespace?: string;
}

/** One chunk of a log follow. */
export interface LogChunk {
  /** New lines (may be empty: a tick, so adapters can send keep-alives). */
  readonly lines: LogLineRecord[];
  /** Lines dropped so far. */
  readonly dropped: number;
  /** Set on the last chunk: the execution ended (its state) and its log is drained. */
  readonly end?: ExecutionStateType;
}

/** Options of {@link ExecutionsService}. */
export interface ExecutionsServiceOptions {
  readonly store: ExecutionStore;
  readonly logs: LogStore;
  readonly jobs: Pick<JobStore, "getJob" | "findJob">;
  readonly tokens: PageTokens;
  readonly clock: Clock;
  readonly feed: LogFeed;
  readonly cancelAssignment: CancelAssignment;
  /** A follower re-reads the store at least this often (lines from other replicas); default 1000 ms. */
  readonly followPollMs?: number;
  /** After an execution ended, a follower waits this long for its last lines; default 1500 ms. */
  readonly drainMs?: number;
}

const MAX_REASON = 256;
const FOLLOW_PAGE = 1000;

/** The Executions service. */
export class ExecutionsService {
  readonly #store: ExecutionStore;
  readonly #logs: LogStore;
  readonly #jobs: Pick<JobStore, "getJob" | "findJob">;
  readonly #tokens: PageTokens;
  readonly #clock: Clock;
  readonly #feed: LogFeed;
  readonly #cancelAssignment: CancelAssignment;
  readonly #pollMs: number;
  readonly #drainMs: number;

  constructor(options: ExecutionsServiceOptions) {
    this.#store = options.store;
    this.#logs = options.logs;
    this.#jobs = options.jobs;
    this.#tokens = options.tokens;
    this.#clock = options.clock;
    this.#feed = options.feed;
    this.#cancelAssignment = options.cancelAssignment;
    this.#pollMs = options.followPollMs ?? 1000;
    this.#drainMs = options.drainMs ?? 1500;
  }

  /** The job an executions list is about: by id, else by name in `namespace`; `not_found`. */
  async job(ref: string, namespace?: string): Promise<JobRecord> {
    if (ref === "") throw invalidArgument("job_id", "is required (a job id, or a name with namespace)");
    const byId = await this.#jobs.getJob(ref);
    if (byId !== undefined) return byId;
    const byName = await this.#jobs.findJob(namespace || "default", ref);
    if (byName !== undefined) return byName;
    throw new EdgeplaneError(
      "not_found",
      `job ${JSON.stringify(ref)} not found${namespace ? ` in namespace ${namespace}` : ""}; list jobs with GET /api/v1/jobs?namespace=*`,
      { metadata: { job_id: ref } },
    );
  }

  /** One page of a job's executions in creation order (keyset; the token binds the filters). */
  async list(
    jobRef: string,
    params: ListExecutionsParams,
    stateField = "state",
  ): Promise<{ items: ExecutionRecord[]; nextToken: string }> {
    const limit = pageSize(params.limit);
    const states = [...new Set((params.states ?? []).map((s) => s.trim()).filter(Boolean))].sort();
    for (const s of states) {
      if (!isExecutionState(s))
        throw invalidArgument(
          stateField,
          `${JSON.stringify(s)} is not one of ${EXECUTION_STATES.join(", ")}`,
        );
    }
    const nodeId = (params.nodeId ?? "").trim();
    if (nodeId.length > 253 || /\s/.test(nodeId)) throw invalidArgument("node_id", "is not a node id");
    const includeArchived = params.includeArchived ?? false;
    const job = await this.job(jobRef, params.namespace);
    const binding = { list: "executions", job: job.id, states, nodeId, includeArchived };
    const cursor = params.nextToken
      ? this.#tokens.open<ExecutionCursor>(params.nextToken, binding)
      : undefined;
    if (
      cursor !== undefined &&
      (typeof cursor !== "object" || typeof cursor.id !== "string" || !Number.isSafeInteger(cursor.createdAt))
    )
      throw invalidArgument("next_token", "cannot be read");
    const page = await this.#store.list({
      jobId: job.id,
      states: states as ExecutionStateType[],
      nodeId: nodeId || undefined,
      includeArchived,
      limit,
      cursor,
    });
    return { items: page.items, nextToken: page.next ? this.#tokens.seal(binding, page.next) : "" };
  }

  /** One execution (archived ones too); `not_found`. */
  async get(id: string): Promise<ExecutionRecord> {
    if (id === "") throw invalidArgument("id", "is required");
    const record = await this.#store.get(id);
    if (record === undefined) {
      throw new EdgeplaneError(
        "not_found",
        `execution ${JSON.stringify(id)} not found; list a job's executions with GET /api/v1/jobs/{id}/executions`,
        { metadata: { execution_id: id } },
      );
    }
    return record;
  }

  /** Validates `tail` (0 = every kept line). */
  tail(tail: number | undefined): number {
    if (tail === undefined) return 0;
    if (!Number.isInteger(tail) || tail < 0)
      throw invalidArgument("tail", `must be an integer >= 0 (got ${tail})`);
    return Math.min(tail, this.#logs.bounds.maxLines);
  }

  /** The kept lines of an execution's log (the last `tail`), and how many were dropped. */
  async logs(id: string, options: { tail?: number } = {}): Promise<LogRead> {
    const tail = this.tail(options.tail);
    await this.get(id);
    return this.#logs.read(id, { tail });
  }

  /**
   * Follows an execution's log: first the kept lines (the last `tail`, or those after `after`),
   * then new lines as they arrive, until the execution has ended and its log is drained (the last
   * chunk has `end`), `signal` aborts, or the service stops. Yields an empty chunk after every
   * quiet wait, so adapters can send keep-alives. `not_found` before the first chunk.
   */
  async *follow(
    id: string,
    options: { tail?: number; after?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<LogChunk, void, undefined> {
    const tail = this.tail(options.tail);
    let record = await this.get(id);
    const signal = options.signal;
    const first =
      options.after !== undefined
        ? await this.#logs.read(id, { after: options.after, limit: FOLLOW_PAGE })
        : await this.#logs.read(id, { tail });
    let last =
      first.lines.at(-1)?.seq ??
      (options.after !== undefined ? Math.min(options.after, first.lastSeq) : first.lastSeq);
    let dropped = first.dropped;
    yield { lines: first.lines, dropped };
    let endedAt: number | undefined;
    while (!signal?.aborted && !this.#feed.closed) {
      const read = await this.#logs.read(id, { after: last, limit: FOLLOW_PAGE });
      const fresh = read.lines.length > 0 || read.dropped !== dropped;
      if (read.lines.length > 0) last = (read.lines.at(-1) as LogLineRecord).seq;
      dropped = read.dropped;
      if (fresh) {
        yield { lines: read.lines, dropped };
        if (read.lines.length === FOLLOW_PAGE) continue;
      }
      record = (await this.#store.get(id)) ?? record;
      let waitMs = this.#pollMs;
      if (isEndedExecutionState(record.state)) {
        const now = Date.now();
        endedAt ??= now;
        if (now - endedAt >= this.#drainMs && !fresh) {
          yield { lines: [], dropped, end: record.state };
          return;
        }
        waitMs = Math.max(1, Math.min(waitMs, endedAt + this.#drainMs - now));
      } else endedAt = undefined;
      await this.#feed.wait(id, waitMs, signal);
      if (!signal?.aborted && !this.#feed.closed) yield { lines: [], dropped };
    }
  }

  /**
   * Cancels an execution: its desired state becomes `stopped` (kept on the record), then the
   * node's desired state is told to stop it. `not_found`; `failed_precondition` naming the state
   * when it has already ended on its node. Canceling again is harmless (and retries the desired
   * state write).
   */
  async cancel(id: string, reason: string): Promise<ExecutionRecord> {
    if (id === "") throw invalidArgument("id", "is required");
    if (reason.length > MAX_REASON)
      throw invalidArgument("reason", `is longer than ${MAX_REASON} characters`);
    const { record } = await this.#store.requestStop(id, this.#clock.now(), reason);
    try {
      await this.#cancelAssignment(id, record);
    } catch (err) {
      const e = EdgeplaneError.from(err, "unavailable");
      throw new EdgeplaneError(
        e.code === "internal" ? "unavailable" : e.code,
        `execution ${id} is marked to stop, but its node's desired state could not be updated yet (${e.message}); cancel again to retry`,
        { cause: err, metadata: { execution_id: id } },
      );
    }
    this.#feed.notify(id);
    return record;
  }
}
