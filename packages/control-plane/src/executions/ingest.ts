/**
 * The observed side of executions: what agents report (through the node registry) becomes
 * execution records and logs.
 *
 * ```
 * registry.onHeartbeat ─▶ each ExecutionStatus ─┐  coalesced: written when something that matters
 * registry.onExecutionEvent ─▶ status + result ──┤  changed (state, attempt, exit code, exception,
 *                                                │  health, times), else at most every
 *                                                │  `observedPersistMs` (progress, counters)
 *                                                ▼
 *                     ExecutionStore.observe (monotonic guard, per execution in order)
 *                     missing? ─▶ identity from the node's desired state ─▶ observe + create
 * registry.onLogs ─▶ owner check ─▶ LogStore.append (bounded, de-duplicated)
 * registry.onDesiredChanged ─▶ placeholders (ensure) + withdrawn placeholders (withdraw)
 * registry.onNodeChange (state → lost) ─▶ markLost
 * ```
 *
 * **Heartbeats alone rebuild the picture.** An execution unknown to the store is created from
 * the first report that names it, with its job, version and deployment taken from the reporting
 * node's desired state: a node can only report executions it was assigned, and never another
 * node's. Placeholders (from desired-state changes) are an addition, so that a run-once job is
 * not judged complete before a slow node has said anything.
 *
 * Every replica runs this; their writes are idempotent under the store's guards (a report applies
 * once, a log batch is appended once, lost and archive are idempotent).
 */
import { type JsonValue, toJson } from "@bufbuild/protobuf";
import { type Timestamp, timestampMs, ValueSchema } from "@bufbuild/protobuf/wkt";
import type { ExecutionEvent, ExecutionStatus, Heartbeat, LogBatch } from "@edgeplane/api";
import { type Clock, createLogger, EdgeplaneError, type Logger, systemClock } from "@edgeplane/core";
import type { NodeRegistry } from "@edgeplane/orchestrator";
import {
  type AssignmentRecord,
  type DesiredStateRecord,
  type DesiredStateStore,
  type ExecutionIdentity,
  type ExecutionRecord,
  type ExecutionReport,
  type ExecutionResultInput,
  type ExecutionStateType,
  type ExecutionStore,
  isExecutionState,
  isTerminalExecutionState,
  type LogLineInput,
  type LogStore,
  MAX_STORED_RESULT_BYTES,
  type ReportedExecutionState,
} from "@edgeplane/store";

/** What the ingest needs from the registry (a narrow seam; the registry implements it). */
export type IngestRegistry = Pick<
  NodeRegistry,
  "onHeartbeat" | "onExecutionEvent" | "onLogs" | "onNodeChange" | "onDesiredChanged" | "get" | "list"
>;

/** Why an agent's execution report or log batch was dropped. */
export const INGEST_DROP_REASONS = [
  /** The node reported an execution its desired state never held. */
  "unassigned",
  /** The execution belongs to another node. */
  "wrong_node",
  /** A status with an unknown state, or a log line that cannot be read. */
  "malformed",
  /** A result larger than the cap: the status is kept, the result dropped. */
  "oversized_result",
  /** A report or log batch for an archived execution. */
  "archived",
  /** Too many writes in flight: a heartbeat entry was skipped (the next one carries it again). */
  "overloaded",
] as const;

/** A drop reason. */
export type IngestDropReason = (typeof INGEST_DROP_REASONS)[number];

/** Counters of the ingest. */
export interface IngestStats {
  readonly reports: number;
  readonly written: number;
  readonly stale: number;
  readonly coalesced: number;
  readonly logLines: number;
  readonly lost: number;
  readonly placeholders: number;
  readonly withdrawn: number;
  readonly errors: number;
  readonly dropped: Readonly<Record<IngestDropReason, number>>;
}

/** An execution that changed state, was seen for the first time by this process, or was deleted. */
export interface ExecutionChange {
  readonly id: string;
  readonly jobId: string;
  /** The record now; undefined when it was deleted (a withdrawn placeholder). */
  readonly record: ExecutionRecord | undefined;
  /** The state before; undefined when unknown (created, or changed by a bulk write). */
  readonly previous: ExecutionStateType | undefined;
}

/** Called for every {@link ExecutionChange}; must not throw. */
export type ExecutionChangeHandler = (change: ExecutionChange) => void;

/** Options of {@link ExecutionIngest}. */
export interface ExecutionIngestOptions {
  readonly store: ExecutionStore;
  readonly logs: LogStore;
  readonly registry: IngestRegistry;
  readonly desiredStore: Pick<DesiredStateStore, "get" | "loadAll">;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Results larger than this (JSON bytes) are dropped, keeping the status; default and maximum 1 MiB. */
  readonly maxResultBytes?: number;
  /** An unchanged running status is written at most this often (progress, counters); default 10 s. */
  readonly observedPersistMs?: number;
  /** Heartbeat entries are skipped while more writes than this are in flight; default 10000. */
  readonly maxInFlight?: number;
  /** Executions remembered for coalescing; default 200000. */
  readonly cacheSize?: number;
  /** Called after a state change, and for the first sight of an execution by this process. */
  readonly onChange?: ExecutionChangeHandler;
  /** Called after lines were appended to an execution's log. */
  readonly onLogs?: (executionId: string) => void;
}

/** What the ingest remembers of an execution it wrote or read. */
interface Known {
  nodeId: string;
  state: ExecutionStateType;
  attempt: number;
  archived: boolean;
  /** The last status written, as a signature of the fields that matter. */
  sig: string;
  /** When (monotonic process time) it was last written. */
  writtenAt: number;
}

const LEVELS = new Set(["DEBUG", "INFO", "WARN", "ERROR"]);
const STREAMS = new Set(["stdout", "stderr", "agent"]);
const DESIRED_TTL_MS = 1000;
const UNASSIGNED_TTL_MS = 30_000;
/** Cache ages and write rates use monotonic process time, not the (injectable) domain clock. */
const tick = (): number => performance.now();

function ms(t: Timestamp | undefined): number {
  if (t === undefined) return 0;
  const v = timestampMs(t);
  return Number.isSafeInteger(v) && v > 0 ? v : 0;
}

function count(v: bigint | number | undefined): number {
  if (v === undefined) return 0;
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : Number.MAX_SAFE_INTEGER;
}

function clamp01(v: number): number {
  return Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0;
}

/** The identity of an assignment (what the node's desired state says the execution is). */
export function identityOf(nodeId: string, a: AssignmentRecord): ExecutionIdentity {
  return {
    id: a.executionId,
    jobId: a.jobId,
    jobVersion: a.jobVersion,
    nodeId,
    deploymentId: a.deploymentId,
    namespace: a.namespace,
    jobType: a.type,
    restartPolicy: a.restartPolicy,
    desiredState: a.desiredState,
  };
}

/** The observed side of executions (see the module header). */
export class ExecutionIngest {
  readonly #store: ExecutionStore;
  readonly #logs: LogStore;
  readonly #registry: IngestRegistry;
  readonly #desiredStore: Pick<DesiredStateStore, "get" | "loadAll">;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #maxResultBytes: number;
  readonly #persistMs: number;
  readonly #maxInFlight: number;
  readonly #cacheSize: number;
  readonly #onChange: ExecutionChangeHandler | undefined;
  readonly #onLogs: ((id: string) => void) | undefined;
  readonly #known = new Map<string, Known>();
  /** Per key (execution id, or `n:` node id for desired-state work) the tail of its write chain. */
  readonly #chains = new Map<string, Promise<void>>();
  readonly #desired = new Map<string, { at: number; record: Promise<DesiredStateRecord | undefined> }>();
  /** Highest desired revision handled per node (older pushes arriving late are ignored). */
  readonly #handledRevision = new Map<string, number>();
  readonly #unassigned = new Map<string, number>();
  readonly #loggedDrops = new Set<string>();
  readonly #offs: Array<() => void> = [];
  readonly #counters = {
    reports: 0,
    written: 0,
    stale: 0,
    coalesced: 0,
    logLines: 0,
    lost: 0,
    placeholders: 0,
    withdrawn: 0,
    errors: 0,
  };
  readonly #dropped: Record<IngestDropReason, number> = {
    unassigned: 0,
    wrong_node: 0,
    malformed: 0,
    oversized_result: 0,
    archived: 0,
    overloaded: 0,
  };
  #stopped = false;

  constructor(options: ExecutionIngestOptions) {
    this.#store = options.store;
    this.#logs = options.logs;
    this.#registry = options.registry;
    this.#desiredStore = options.desiredStore;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? createLogger({ component: "executions.ingest" });
    this.#maxResultBytes = Math.min(
      options.maxResultBytes ?? MAX_STORED_RESULT_BYTES,
      MAX_STORED_RESULT_BYTES,
    );
    this.#persistMs = options.observedPersistMs ?? 10_000;
    this.#maxInFlight = options.maxInFlight ?? 10_000;
    this.#cacheSize = options.cacheSize ?? 200_000;
    this.#onChange = options.onChange;
    this.#onLogs = options.onLogs;
  }

  /**
   * Subscribes to the registry, then (in the background) marks executions of nodes already lost
   * and creates the placeholders of every stored desired state (a restart between a desired-state
   * write and its placeholders loses nothing).
   */
  start(): void {
    const r = this.#registry;
    this.#offs.push(
      r.onHeartbeat((nodeId, hb) => this.heartbeat(nodeId, hb)),
      r.onExecutionEvent((nodeId, ev) => this.event(nodeId, ev)),
      r.onLogs((nodeId, batch) => this.logs(nodeId, batch)),
      r.onDesiredChanged((record) => this.desiredChanged(record)),
      r.onNodeChange((nodeId, change) => {
        if (change === "state" && r.get(nodeId)?.state === "lost") this.nodeLost(nodeId);
      }),
    );
    this.#enqueue("start", () => this.#catchUp());
  }

  /** Unsubscribes and waits for the writes in flight. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const off of this.#offs.splice(0)) off();
    await this.idle();
  }

  /** Resolves once no write is in flight (tests). */
  async idle(): Promise<void> {
    while (this.#chains.size > 0) await Promise.allSettled([...this.#chains.values()]);
  }

  /** Counters. */
  stats(): IngestStats {
    return { ...this.#counters, dropped: { ...this.#dropped } };
  }

  // ── Reports ────────────────────────────────────────────────────────────────────────────────

  /** One heartbeat: every execution it lists, coalesced. */
  heartbeat(nodeId: string, hb: Heartbeat): void {
    if (this.#stopped) return;
    const now = this.#clock.now();
    const reportedAt = ms(hb.time) || now;
    for (const s of hb.executions) {
      const report = this.#report(nodeId, s, reportedAt, now);
      if (report === undefined) continue;
      this.#counters.reports++;
      const k = this.#known.get(report.id);
      if (k !== undefined && k.nodeId === nodeId) {
        if (k.archived || report.attempt < k.attempt) {
          this.#counters.coalesced++;
          continue;
        }
        const sig = signature(report);
        if (
          sig === k.sig &&
          (isTerminalExecutionState(report.state) || tick() - k.writtenAt < this.#persistMs)
        ) {
          this.#counters.coalesced++;
          continue;
        }
      }
      if (this.#chains.size >= this.#maxInFlight) {
        this.#drop(
          "overloaded",
          nodeId,
          "too many execution writes in flight; waiting for the next heartbeat",
        );
        continue;
      }
      this.#enqueue(report.id, () => this.#write(report));
    }
  }

  /** One execution event (a transition, with the result of a finished query). */
  event(nodeId: string, ev: ExecutionEvent): void {
    if (this.#stopped || ev.status === undefined) return;
    const now = this.#clock.now();
    const base = this.#report(nodeId, ev.status, ms(ev.time) || now, now);
    if (base === undefined) return;
    this.#counters.reports++;
    const result = this.#result(nodeId, ev);
    const report: ExecutionReport = result === undefined ? base : { ...base, result };
    this.#enqueue(report.id, () => this.#write(report));
  }

  /** One log batch of an execution. */
  logs(nodeId: string, batch: LogBatch): void {
    if (this.#stopped) return;
    const id = batch.executionId;
    const lines: LogLineInput[] = [];
    for (const l of batch.lines) {
      const agentSeq = count(l.seq);
      if (agentSeq === Number.MAX_SAFE_INTEGER) {
        this.#drop("malformed", nodeId, `a log line of ${id} has sequence ${l.seq}`);
        return;
      }
      const level = l.level.toUpperCase();
      lines.push({
        agentSeq,
        time: ms(l.time),
        stream: STREAMS.has(l.stream) ? l.stream : "agent",
        level: LEVELS.has(level) ? level : level === "WARNING" ? "WARN" : "INFO",
        text: l.text,
      });
    }
    const dropped = count(batch.dropped);
    if (lines.length === 0 && dropped === 0) return;
    this.#enqueue(`l:${id}`, async () => {
      if (!(await this.#owns(nodeId, id))) return;
      const out = await this.#logs.append(id, lines, dropped);
      this.#counters.logLines += out.appended;
      if (out.appended > 0) this.#onLogs?.(id);
    });
  }

  /** A node's desired state changed: placeholders for its assignments, withdrawn ones deleted. */
  desiredChanged(record: DesiredStateRecord): void {
    if (this.#stopped) return;
    this.#desired.set(record.nodeId, { at: tick(), record: Promise.resolve(record) });
    this.#enqueue(`n:${record.nodeId}`, () => this.#placeholders(record));
  }

  /** A node was lost: its executions that are not ended become `lost`. */
  nodeLost(nodeId: string): void {
    if (this.#stopped) return;
    this.#enqueue(`n:${nodeId}`, async () => {
      const view = this.#registry.get(nodeId);
      if (view !== undefined && view.state !== "lost") return; // back meanwhile
      const reason = view?.message ? `: ${view.message}` : "";
      const changed = await this.#store.markLost(
        nodeId,
        this.#clock.now(),
        `node ${nodeId} was lost${reason}; the execution's state is unknown until the node reports again`,
      );
      this.#counters.lost += changed.length;
      if (changed.length > 0)
        this.#log.warn("executions lost with their node", { node: nodeId, executions: changed.length });
      for (const r of changed) {
        this.#remember(r, "");
        this.#changed(r, undefined);
      }
    });
  }

  // ── Internals ──────────────────────────────────────────────────────────────────────────────

  /** A status as a report; undefined (counted) when it cannot be one. */
  #report(nodeId: string, s: ExecutionStatus, reportedAt: number, now: number): ExecutionReport | undefined {
    if (s.executionId === "" || s.executionId.length > 253 || /\s/.test(s.executionId)) {
      this.#drop("malformed", nodeId, "a status without a valid execution_id");
      return undefined;
    }
    if (!isExecutionState(s.state) || s.state === "lost") {
      this.#drop("malformed", nodeId, `execution ${s.executionId} reported state ${JSON.stringify(s.state)}`);
      return undefined;
    }
    const h = s.health;
    const c = s.counters;
    return {
      id: s.executionId,
      nodeId,
      state: s.state as ReportedExecutionState,
      attempt: s.attempt,
      reportedAt,
      now,
      startTime: ms(s.startTime),
      finishTime: ms(s.finishTime),
      exitCode: s.exitCode,
      exception: s.exception,
      progress: clamp01(s.progress),
      health: h && { healthy: h.healthy, errorRate: clamp01(h.errorRate), since: ms(h.since) },
      counters: c && {
        messagesIn: count(c.messagesIn),
        messagesOut: count(c.messagesOut),
        messagesFiltered: count(c.messagesFiltered),
        messagesErrored: count(c.messagesErrored),
      },
    };
  }

  /** The result of an event, capped; undefined when the event carries none. */
  #result(nodeId: string, ev: ExecutionEvent): ExecutionResultInput | undefined {
    const reported = count(ev.resultBytes);
    if (ev.result === undefined) {
      return ev.resultTruncated || reported > 0
        ? { json: undefined, truncated: ev.resultTruncated, bytes: reported }
        : undefined;
    }
    let json: string;
    try {
      json = JSON.stringify(toJson(ValueSchema, ev.result) as JsonValue);
    } catch (err) {
      this.#drop("malformed", nodeId, `the result of ${ev.status?.executionId}: ${(err as Error).message}`);
      return { json: undefined, truncated: true, bytes: reported };
    }
    const bytes = Buffer.byteLength(json);
    if (bytes > this.#maxResultBytes) {
      this.#drop(
        "oversized_result",
        nodeId,
        `the result of ${ev.status?.executionId} is ${bytes} bytes, over the ${this.#maxResultBytes}-byte cap; the result is dropped, the status kept`,
      );
      return { json: undefined, truncated: true, bytes: Math.max(bytes, reported) };
    }
    return { json, truncated: ev.resultTruncated, bytes: Math.max(bytes, reported) };
  }

  async #write(report: ExecutionReport): Promise<void> {
    const firstSight = !this.#known.has(report.id);
    let out = await this.#store.observe(report);
    if (out.status === "missing") {
      const identity = await this.#identity(report.nodeId, report.id);
      if (identity === undefined) {
        this.#drop(
          "unassigned",
          report.nodeId,
          `reported execution ${report.id}, which its desired state does not hold`,
        );
        return;
      }
      out = await this.#store.observe(report, identity);
    }
    switch (out.status) {
      case "applied":
        this.#counters.written++;
        this.#remember(out.record, signature(report));
        if (out.previous !== out.record.state || firstSight) this.#changed(out.record, out.previous);
        return;
      case "stale":
        this.#counters.stale++;
        this.#remember(out.record, signature(report));
        if (firstSight) this.#changed(out.record, out.record.state);
        return;
      case "archived":
        this.#remember(out.record, "");
        this.#drop("archived", report.nodeId, `reported execution ${report.id}, archived already`);
        return;
      case "wrong_node":
        this.#drop(
          "wrong_node",
          report.nodeId,
          `reported execution ${report.id}, which belongs to node ${out.owner}`,
        );
        return;
      case "missing":
        return;
    }
  }

  /** Whether the node may write the execution's logs (it owns it, or its desired state holds it). */
  async #owns(nodeId: string, id: string): Promise<boolean> {
    const k = this.#known.get(id);
    if (k !== undefined && !k.archived) {
      if (k.nodeId === nodeId) return true;
      this.#drop("wrong_node", nodeId, `sent logs of execution ${id}, which belongs to node ${k.nodeId}`);
      return false;
    }
    const record = await this.#store.get(id);
    if (record !== undefined) {
      this.#remember(record, "");
      if (record.archived) {
        this.#drop("archived", nodeId, `sent logs of execution ${id}, archived already`);
        return false;
      }
      if (record.nodeId === nodeId) return true;
      this.#drop(
        "wrong_node",
        nodeId,
        `sent logs of execution ${id}, which belongs to node ${record.nodeId}`,
      );
      return false;
    }
    if ((await this.#identity(nodeId, id)) !== undefined) return true;
    this.#drop("unassigned", nodeId, `sent logs of execution ${id}, which its desired state does not hold`);
    return false;
  }

  /** The identity of `id` from the node's desired state (cached briefly); undefined when it holds none. */
  async #identity(nodeId: string, id: string): Promise<ExecutionIdentity | undefined> {
    const now = tick();
    const miss = this.#unassigned.get(`${nodeId}\0${id}`);
    if (miss !== undefined && now - miss < UNASSIGNED_TTL_MS) return undefined;
    let cached = this.#desired.get(nodeId);
    if (cached === undefined || now - cached.at > DESIRED_TTL_MS) {
      cached = { at: now, record: this.#desiredStore.get(nodeId) };
      this.#desired.set(nodeId, cached);
      cached.record.catch(() => this.#desired.delete(nodeId));
    }
    const assignment = (await cached.record)?.assignments.find((a) => a.executionId === id);
    if (assignment === undefined) {
      if (this.#unassigned.size > 10_000) this.#unassigned.clear();
      this.#unassigned.set(`${nodeId}\0${id}`, now);
      return undefined;
    }
    return identityOf(nodeId, assignment);
  }

  async #placeholders(record: DesiredStateRecord): Promise<void> {
    const handled = this.#handledRevision.get(record.nodeId) ?? -1;
    if (record.revision < handled) return;
    this.#handledRevision.set(record.nodeId, record.revision);
    const ids = record.assignments.map((a) => a.executionId);
    for (const id of ids) this.#unassigned.delete(`${record.nodeId}\0${id}`);
    const created = await this.#store.ensure(
      record.assignments.map((a) => identityOf(record.nodeId, a)),
      this.#clock.now(),
    );
    this.#counters.placeholders += created.length;
    const withdrawn = await this.#store.withdraw(record.nodeId, ids);
    this.#counters.withdrawn += withdrawn.length;
    // A withdrawn placeholder may have been the last thing a run-once job waited for.
    for (const w of withdrawn) {
      this.#known.delete(w.id);
      this.#notify({ id: w.id, jobId: w.jobId, record: undefined, previous: "waiting" });
    }
  }

  /** After a start: executions of nodes already lost, placeholders of every stored desired state. */
  async #catchUp(): Promise<void> {
    try {
      let after: string | undefined;
      for (;;) {
        const page = this.#registry.list({ states: ["lost"], after, limit: 1000 });
        for (const n of page.items) this.nodeLost(n.id);
        if (page.next === undefined) break;
        after = page.next;
      }
      for (const record of await this.#desiredStore.loadAll()) {
        if (this.#stopped) return;
        if (!this.#handledRevision.has(record.nodeId))
          this.#enqueue(`n:${record.nodeId}`, () => this.#placeholders(record));
      }
    } catch (err) {
      this.#log.warn("could not catch up with stored desired states; heartbeats will fill the gaps", { err });
    }
  }

  #changed(record: ExecutionRecord, previous: ExecutionStateType | undefined): void {
    this.#notify({ id: record.id, jobId: record.jobId, record, previous });
  }

  #notify(change: ExecutionChange): void {
    try {
      this.#onChange?.(change);
    } catch (err) {
      this.#log.error("an execution change handler failed", { id: change.id, err });
    }
  }

  #remember(r: ExecutionRecord, sig: string): void {
    const k = this.#known.get(r.id);
    if (k !== undefined) this.#known.delete(r.id);
    else if (this.#known.size >= this.#cacheSize) {
      const oldest = this.#known.keys().next().value;
      if (oldest !== undefined) this.#known.delete(oldest);
    }
    this.#known.set(r.id, {
      nodeId: r.nodeId,
      state: r.state,
      attempt: r.attempt,
      archived: r.archived,
      sig,
      writtenAt: tick(),
    });
  }

  /** Runs `task` after the previous task of the same key (one key's writes stay in order). */
  #enqueue(key: string, task: () => Promise<void>): void {
    const previous = this.#chains.get(key) ?? Promise.resolve();
    const next = previous
      .then(task)
      .catch((err: unknown) => {
        this.#counters.errors++;
        const e = EdgeplaneError.from(err);
        this.#log.warn("could not write an agent's execution report; the next heartbeat retries", {
          key,
          err: e.message,
        });
      })
      .finally(() => {
        if (this.#chains.get(key) === next) this.#chains.delete(key);
      });
    this.#chains.set(key, next);
  }

  /** Counts a drop; logs the first of each (node, reason). */
  #drop(reason: IngestDropReason, nodeId: string, message: string): void {
    this.#dropped[reason]++;
    const key = `${nodeId}\0${reason}`;
    if (this.#loggedDrops.has(key)) return;
    if (this.#loggedDrops.size > 10_000) this.#loggedDrops.clear();
    this.#loggedDrops.add(key);
    this.#log.warn(`dropped an execution report (${reason})`, { node: nodeId, message });
  }
}

/** What must be written at once when it changes (progress and counters may wait). */
function signature(r: ExecutionReport): string {
  const h = r.health;
  return `${r.state}|${r.attempt}|${r.exitCode ?? ""}|${r.startTime}|${r.finishTime}|${h ? `${h.healthy}:${h.since}` : ""}|${r.exception}`;
}
