/**
 * The registry's in-memory node: a mutable record kept small (the goal is at most 1 KB of heap
 * per node, labels and executions included), and the read-only views handed out.
 *
 * Memory notes: one class (one hidden class for every node), strings shared where they repeat
 * (executor lists, agent versions, execution states and job ids are interned), no per-node Map
 * for executions (a short array, searched linearly: a node runs a handful), and execution
 * summaries updated in place on every heartbeat instead of being re-allocated.
 */
import type { ExecutionStatus } from "@edgeplane/api";
import type { LabelMap, NodeRecord, NodeStateType } from "@edgeplane/store";

/**
 * The latest status of one execution on one node, as its agent reported it: what liveness and
 * rollouts look at. Results, progress and exceptions belong to the execution record (issue 6),
 * which gets them through the registry's `onExecutionEvent` listener.
 */
export interface ExecutionView {
  readonly executionId: string;
  readonly jobId: string;
  readonly jobVersion: number;
  /** waiting | running | finished | error | timed_out | canceled. */
  readonly state: string;
  readonly healthy: boolean;
  readonly errorRate: number;
  readonly exitCode: number | undefined;
  readonly attempt: number;
  /** Since when it has been in its current health (`health.since`, ms); undefined when not reported. */
  readonly healthySince: number | undefined;
}

/**
 * A node as the registry's API hands it out (a snapshot; changing it changes nothing): the
 * persisted record, plus what is derived or held only in memory.
 */
export interface NodeView extends Omit<NodeRecord, "updatedAt"> {
  /** Effective labels: the agent's own with operator labels merged over them. */
  readonly labels: LabelMap;
  readonly desiredRevision: number;
  readonly executions: readonly ExecutionView[];
}

const EXEC_STATES = ["waiting", "running", "finished", "error", "timed_out", "canceled", "lost"];

/** The shared instance of a known state string (decoded strings are fresh copies). */
function internState(s: string): string {
  for (const known of EXEC_STATES) if (known === s) return known;
  return s.length > 32 ? s.slice(0, 32) : s;
}

/** Strings that repeat across nodes (job ids, executor lists, versions), shared; bounded. */
export class Interner {
  readonly #pool = new Map<string, string>();
  readonly #lists = new Map<string, readonly string[]>();
  readonly #max: number;

  constructor(max = 50_000) {
    this.#max = max;
  }

  string(s: string): string {
    const got = this.#pool.get(s);
    if (got !== undefined) return got;
    if (this.#pool.size < this.#max) this.#pool.set(s, s);
    return s;
  }

  /** A copy of `labels` whose values are shared strings (keys are interned by V8 already). */
  labels(labels: LabelMap): LabelMap {
    const out: Record<string, string> = {};
    for (const key of Object.keys(labels)) out[key] = this.string(labels[key] as string);
    return out;
  }

  list(items: readonly string[]): readonly string[] {
    const key = items.join("\0");
    const got = this.#lists.get(key);
    if (got !== undefined) return got;
    const frozen = Object.freeze(items.map((s) => this.string(s)));
    if (this.#lists.size < this.#max) this.#lists.set(key, frozen);
    return frozen;
  }
}

/** The most executions kept per node (a heartbeat listing more is malformed). */
export const MAX_EXECUTIONS_PER_NODE = 1000;

/** One execution's latest status (mutable, updated in place). */
export class ExecutionSummary implements ExecutionView {
  executionId: string;
  jobId = "";
  jobVersion = 0;
  state = "";
  healthy = false;
  errorRate = 0;
  exitCode: number | undefined = undefined;
  attempt = 0;
  healthySince: number | undefined = undefined;

  constructor(executionId: string) {
    this.executionId = executionId;
  }

  /**
   * Copies a reported status in (no allocation when strings are unchanged). Returns whether
   * anything a rollout judges changed: version, state, health or its `since` (not the error
   * rate alone, which moves on every heartbeat of a busy pipeline).
   */
  update(s: ExecutionStatus, interner: Interner): boolean {
    const health = s.health;
    const healthy = health?.healthy ?? false;
    const since = health?.since;
    const sinceMs =
      since === undefined ? undefined : Number(since.seconds) * 1000 + Math.floor(since.nanos / 1_000_000);
    const changed =
      this.jobVersion !== s.jobVersion ||
      this.state !== s.state ||
      this.healthy !== healthy ||
      this.healthySince !== sinceMs ||
      this.jobId !== s.jobId;
    if (this.jobId !== s.jobId) this.jobId = interner.string(s.jobId);
    this.jobVersion = s.jobVersion;
    if (this.state !== s.state) this.state = internState(s.state);
    this.healthy = healthy;
    this.healthySince = sinceMs;
    this.errorRate = health?.errorRate ?? 0;
    this.exitCode = s.exitCode;
    this.attempt = s.attempt;
    return changed;
  }
}

const NO_EXECUTIONS: ExecutionSummary[] = [];
/** The operator labels of every node that has none (most): one shared object, never mutated. */
export const NO_LABELS: LabelMap = Object.freeze({});

/** A registered node, as the registry holds it. */
export class NodeEntry {
  readonly id: string;
  agentLabels: LabelMap;
  operatorLabels: LabelMap;
  /** Effective labels (what the index and placement see). */
  labels: LabelMap;
  drained: boolean;
  state: NodeStateType;
  message: string;
  lastHeartbeat: number;
  /**
   * When `lastHeartbeat` was last persisted, in whole seconds since the registry started (a small
   * integer, so V8 keeps it unboxed; heartbeats are persisted coarsely).
   */
  persistedSec: number;
  agentVersion: string;
  executors: readonly string[];
  instanceId: string;
  registeredAt: number;
  appliedRevision: number;
  desiredRevision: number;
  executions: ExecutionSummary[];

  constructor(record: NodeRecord, interner: Interner, labels: LabelMap, persistedSec: number) {
    this.id = record.id;
    this.agentLabels = record.agentLabels;
    this.operatorLabels = Object.keys(record.operatorLabels).length === 0 ? NO_LABELS : record.operatorLabels;
    this.labels = labels;
    this.drained = record.drained;
    this.state = record.state;
    this.message = record.message;
    this.lastHeartbeat = record.lastHeartbeat;
    this.persistedSec = persistedSec;
    this.agentVersion = interner.string(record.agentVersion);
    this.executors = interner.list(record.executors);
    this.instanceId = record.instanceId;
    this.registeredAt = record.registeredAt;
    this.appliedRevision = record.appliedRevision;
    this.desiredRevision = 0;
    this.executions = NO_EXECUTIONS;
  }

  /** The record to persist. */
  toRecord(now: number): NodeRecord {
    return {
      id: this.id,
      agentLabels: this.agentLabels,
      operatorLabels: this.operatorLabels,
      state: this.state,
      message: this.message,
      drained: this.drained,
      lastHeartbeat: this.lastHeartbeat,
      agentVersion: this.agentVersion,
      executors: this.executors,
      instanceId: this.instanceId,
      registeredAt: this.registeredAt,
      appliedRevision: this.appliedRevision,
      updatedAt: now,
    };
  }

  /** A snapshot for the API. */
  view(): NodeView {
    return {
      id: this.id,
      labels: { ...this.labels },
      agentLabels: { ...this.agentLabels },
      operatorLabels: { ...this.operatorLabels },
      state: this.state,
      message: this.message,
      drained: this.drained,
      lastHeartbeat: this.lastHeartbeat,
      agentVersion: this.agentVersion,
      executors: [...this.executors],
      instanceId: this.instanceId,
      registeredAt: this.registeredAt,
      desiredRevision: this.desiredRevision,
      appliedRevision: this.appliedRevision,
      executions: this.executions.map((e) => ({ ...e })),
    };
  }

  /**
   * Replaces the execution list with what a heartbeat reports (a heartbeat lists every
   * execution). Reuses the summaries of executions it already knew; allocates nothing when the
   * list is the same as last time (the common case). `onChange` hears the job id of every
   * execution that appeared, left, or changed (see {@link ExecutionSummary.update}).
   */
  setExecutions(
    statuses: readonly ExecutionStatus[],
    interner: Interner,
    onChange?: (jobId: string) => void,
  ): void {
    const prev = this.executions;
    const n = statuses.length;
    if (n === 0) {
      if (onChange) for (const e of prev) onChange(e.jobId);
      this.executions = NO_EXECUTIONS;
      return;
    }
    let same = prev.length === n;
    for (let i = 0; same && i < n; i++) same = prev[i]?.executionId === statuses[i]?.executionId;
    if (same) {
      for (let i = 0; i < n; i++) {
        const e = prev[i] as ExecutionSummary;
        if (e.update(statuses[i] as ExecutionStatus, interner)) onChange?.(e.jobId);
      }
      return;
    }
    // Exactly sized: `[]` + push would reserve 17 slots per node.
    const next = new Array<ExecutionSummary>(n);
    let k = 0;
    for (const s of statuses) {
      if (s.executionId === "" || next.some((e, i) => i < k && e.executionId === s.executionId)) continue;
      const known = prev.find((e) => e.executionId === s.executionId);
      const summary = known ?? new ExecutionSummary(s.executionId);
      if (summary.update(s, interner) || known === undefined) onChange?.(summary.jobId);
      next[k++] = summary;
    }
    if (k < n) next.length = k;
    if (onChange) {
      for (const e of prev) if (!next.some((x, i) => i < k && x === e)) onChange(e.jobId);
    }
    this.executions = k === 0 ? NO_EXECUTIONS : next;
  }

  /** Records one execution's status (from an execution event); returns whether it changed. */
  upsertExecution(status: ExecutionStatus, interner: Interner): boolean {
    let summary = this.executions.find((e) => e.executionId === status.executionId);
    if (summary === undefined) {
      if (this.executions.length >= MAX_EXECUTIONS_PER_NODE) return false;
      summary = new ExecutionSummary(status.executionId);
      this.executions = [...this.executions, summary];
      summary.update(status, interner);
      return true;
    }
    return summary.update(status, interner);
  }
}
