/**
 * The node registry: every node the control plane knows, its labels and liveness, its desired
 * and applied revisions, and the latest status of its executions; the control plane's side of the
 * agent protocol (agent.proto over the subjects of `@edgeplane/bus`).
 *
 * Flow:
 * ```
 * agent ──register (request)──▶ validate ▶ upsert node + LabelIndex ▶ persist ▶ reply {accepted, interval, desired}
 * agent ──desired (request)───▶ reply DesiredState (from the DesiredStateStore)
 * agent ──heartbeat──────────▶ liveness, applied revision, executions ▶ re-send desired when behind
 * agent ──event / logs───────▶ dedupe (events) ▶ listeners (onExecutionEvent, onLogs)
 * sweep (every second) ───────▶ ready → disconnected → lost (node-liveness.ts)
 * flush (every second) ───────▶ changed nodes, one batch (NodeStore.saveMany)
 * placement ──desiredChanged──▶ push DesiredState on ep.node.<id>.in.desired
 * ```
 *
 * **Identity is the subject.** The node id is parsed from the subject a message arrived on; a
 * body naming another node is counted (`mismatched_identity`) and dropped. Malformed, oversized
 * and unknown-node messages are counted and dropped too (`stats().dropped`), logged once per
 * node and reason, and change nothing stored. No handler throws into the bus.
 *
 * **Persistence is coalesced.** Heartbeats change memory only; a node is written when something
 * worth keeping changed (registration, state, labels, drain, applied revision), and its
 * `last_heartbeat` at most once per `heartbeatPersistMs` (60 s). Changed nodes are written in one
 * batch per `flushIntervalMs` (1 s). Registrations wait for the batch that holds them (so a node
 * the control plane accepted is never forgotten by a restart); operator changes are written
 * before the API answers.
 */
import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import {
  AgentRegisterRequestSchema,
  AgentRegisterResponseSchema,
  DesiredStateRequestSchema,
  DesiredStateSchema,
  type ExecutionEvent,
  ExecutionEventSchema,
  type Heartbeat,
  HeartbeatSchema,
  type LogBatch,
  LogBatchSchema,
} from "@edgeplane/api";
import {
  type Bus,
  type BusMessage,
  decode,
  encode,
  MAX_MESSAGE_BYTES,
  type OutboundKind,
  parseOutbound,
  subjects,
} from "@edgeplane/bus";
import { type Clock, createLogger, EdgeplaneError, type Logger, systemClock } from "@edgeplane/core";
import { LabelIndex, type SelectorLike } from "@edgeplane/selector";
import {
  type DesiredStateRecord,
  type DesiredStateStore,
  isLiveNodeState,
  type LabelMap,
  type NodeStateType,
  type NodeStore,
} from "@edgeplane/store";
import { BoundedSet } from "./bounded-set.js";
import { CoalescingRunner } from "./coalescing-runner.js";
import { DesiredStateEncoder } from "./desired-encoder.js";
import { desiredStateMessage } from "./desired-message.js";
import { DropCounter, type DropReason } from "./drops.js";
import {
  type ExecutionView,
  Interner,
  MAX_EXECUTIONS_PER_NODE,
  NO_LABELS,
  NodeEntry,
  type NodeView,
} from "./node-entry.js";
import {
  agentLabelProblem,
  applyOperatorLabels,
  type LabelChange,
  mergeLabels,
  sameLabels,
} from "./node-labels.js";
import {
  type LivenessConfig,
  type LivenessOptions,
  livenessConfig,
  livenessMessage,
  liveState,
  sweepState,
} from "./node-liveness.js";

/** What changed about a node (what placement reacts to). */
export type NodeChange =
  /** The node registered (first time, or again after a restart or reconnect). */
  | "registered"
  /** Its effective labels changed. */
  | "labels"
  /** Its state changed (liveness, drain). */
  | "state"
  /** It reported an applied revision above the stored one: the next write must jump past it. */
  | "revision";

/** Called synchronously on every node change; must not throw (errors are logged). */
export type NodeChangeListener = (nodeId: string, change: NodeChange) => void;
/** Called for every accepted, de-duplicated execution event. */
export type ExecutionEventListener = (nodeId: string, event: ExecutionEvent) => void;
/** Called for every accepted log batch. */
export type LogsListener = (nodeId: string, batch: LogBatch) => void;
/** Called for every accepted heartbeat, after the registry applied it (execution records). Must not throw. */
export type HeartbeatListener = (nodeId: string, heartbeat: Heartbeat) => void;
/** Called after a node's changed desired state was pushed (`desiredChanged`). Must not throw. */
export type DesiredChangeListener = (record: DesiredStateRecord) => void;
/**
 * Called when a node's execution of a job appeared, left, or changed version, state or health
 * (from a heartbeat or an event); not for an error rate that moved alone. Must not throw.
 */
export type ExecutionChangeListener = (nodeId: string, jobId: string) => void;

/** What the rollout runtime observes of one node and its execution of one job. */
export interface ExecutionObservation {
  readonly liveness: NodeStateType;
  /** Whether the node was heard (heartbeat or registration) since the registry's view began. */
  readonly heard: boolean;
  /** The node's execution of the job: the one of `version` if it has one, else its newest. */
  readonly execution?: {
    readonly version: number;
    readonly state: string;
    readonly healthy: boolean;
    readonly errorRate: number;
    readonly healthySince?: number;
  };
}

/** Options of {@link createNodeRegistry}. */
export interface NodeRegistryOptions extends LivenessOptions {
  readonly bus: Bus;
  readonly nodeStore: NodeStore;
  readonly desiredStore: DesiredStateStore;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Liveness sweep period; default 1000 ms; 0 = no timer (tests call `sweep()`). */
  readonly sweepIntervalMs?: number;
  /** Coalesced write period; default 1000 ms; 0 = no timer (tests call `flush()`). */
  readonly flushIntervalMs?: number;
  /** A node's `last_heartbeat` is persisted at most this often; default 60 s. */
  readonly heartbeatPersistMs?: number;
  /** Larger agent messages are dropped as `oversized`; default `MAX_MESSAGE_BYTES` (1 MiB). */
  readonly maxMessageBytes?: number;
  /** Execution event ids remembered for de-duplication (LRU); default 100000. */
  readonly eventDedupeSize?: number;
  readonly onExecutionEvent?: ExecutionEventListener;
  readonly onLogs?: LogsListener;
}

/** One page of {@link NodeRegistry.list}. */
export interface NodePage {
  readonly items: NodeView[];
  /** The id to continue after; absent on the last page. */
  readonly next?: string;
}

/** A {@link NodeRegistry.list} query. */
export interface NodeQuery {
  /** Only nodes this selector picks (a parsed selector or a compiled node selector). */
  readonly selector?: SelectorLike;
  /** Only nodes in these states (empty = all). */
  readonly states?: readonly NodeStateType[];
  /** Only ids after this one (the keyset cursor). */
  readonly after?: string;
  readonly limit: number;
}

/** What placement needs to know about a node. */
export interface PlacementView {
  readonly id: string;
  readonly labels: LabelMap;
  readonly state: NodeStateType;
  readonly appliedRevision: number;
  readonly desiredRevision: number;
}

/** Counters of the registry (the lead may expose them on /metrics). */
export interface RegistryStats {
  /** Nodes by state, and in total. */
  readonly nodes: Readonly<Record<NodeStateType | "total", number>>;
  /** Messages received, by kind (dropped ones included). */
  readonly received: Readonly<Record<OutboundKind, number>>;
  /** Messages dropped, by reason. */
  readonly dropped: Readonly<Record<DropReason, number>>;
  /** Execution events ignored because their id was seen before. */
  readonly duplicateEvents: number;
  /** Registrations answered `accepted: false`. */
  readonly rejectedRegistrations: number;
  /** Desired states pushed because the set changed. */
  readonly desiredPushes: number;
  /** Desired states re-sent because a heartbeat showed an older applied revision. */
  readonly desiredResends: number;
  /** Coalesced writes: batches, node records written, failed batches, nodes waiting. */
  readonly persist: {
    readonly batches: number;
    readonly written: number;
    readonly failures: number;
    readonly pending: number;
  };
}

/** `persistedSec` of a node never written: its first heartbeat is persisted. */
const NEVER_PERSISTED = -(2 ** 30);
const MAX_ID_FIELD = 128;
const MAX_VERSION_FIELD = 64;
const MAX_EXECUTORS = 16;
const MAX_REASON = 256;
const MAX_LOG_LINES = 10_000;

/** The message of a node that heartbeats again (the drain reason is not kept past liveness). */
function liveMessage(drained: boolean): string {
  return drained ? "drained by operator" : "";
}

/** Creates a {@link NodeRegistry}; call `start()` to load and subscribe. */
export function createNodeRegistry(options: NodeRegistryOptions): NodeRegistry {
  return new NodeRegistry(options);
}

/** The node registry (see the module header). */
export class NodeRegistry {
  readonly #bus: Bus;
  readonly #nodeStore: NodeStore;
  readonly #desiredStore: DesiredStateStore;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #config: LivenessConfig;
  readonly #sweepIntervalMs: number;
  readonly #flushIntervalMs: number;
  readonly #heartbeatPersistMs: number;
  readonly #maxBytes: number;
  readonly #nodes = new Map<string, NodeEntry>();
  readonly #index = new LabelIndex();
  readonly #interner = new Interner();
  readonly #events: BoundedSet;
  readonly #drops: DropCounter;
  readonly #dirty = new Set<NodeEntry>();
  readonly #changeListeners = new Set<NodeChangeListener>();
  readonly #eventListeners = new Set<ExecutionEventListener>();
  readonly #logListeners = new Set<LogsListener>();
  readonly #heartbeatListeners = new Set<HeartbeatListener>();
  readonly #desiredListeners = new Set<DesiredChangeListener>();
  readonly #execListeners = new Set<ExecutionChangeListener>();
  readonly #onExecChange = (nodeId: string) => (jobId: string) => this.#notifyExecution(nodeId, jobId);
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #encoder = new DesiredStateEncoder();
  /** When each node was last sent its desired state; only nodes not in sync stay here. */
  readonly #lastPush = new Map<string, number>();
  /** Nodes whose re-send is loading the desired state. */
  readonly #pushing = new Set<string>();
  /** The registry's start (ms): `persistedSec` counts from here. */
  readonly #epoch: number;
  readonly #received: Record<OutboundKind, number> = {
    register: 0,
    desired: 0,
    heartbeat: 0,
    event: 0,
    logs: 0,
  };
  readonly #counters = {
    duplicateEvents: 0,
    rejectedRegistrations: 0,
    desiredPushes: 0,
    desiredResends: 0,
    batches: 0,
    written: 0,
    failures: 0,
  };
  #unsubscribe: Array<() => void> = [];
  #timers: Array<ReturnType<typeof setInterval>> = [];
  #sortedIds: string[] | undefined;
  /** When the current view of the fleet began: start, or the bus coming back (liveness grace). */
  #viewSince = 0;
  #busDown = false;
  #started = false;
  #stopped = false;
  readonly #flusher = new CoalescingRunner(() => this.#writeBatch());
  #persistFailing = false;

  constructor(options: NodeRegistryOptions) {
    this.#bus = options.bus;
    this.#nodeStore = options.nodeStore;
    this.#desiredStore = options.desiredStore;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? createLogger({ component: "node-registry" });
    this.#config = livenessConfig(options);
    this.#sweepIntervalMs = options.sweepIntervalMs ?? 1000;
    this.#flushIntervalMs = options.flushIntervalMs ?? 1000;
    this.#heartbeatPersistMs = options.heartbeatPersistMs ?? 60_000;
    this.#maxBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
    this.#events = new BoundedSet(options.eventDedupeSize ?? 100_000);
    this.#drops = new DropCounter(this.#log);
    this.#epoch = this.#clock.now();
    if (options.onExecutionEvent) this.#eventListeners.add(options.onExecutionEvent);
    if (options.onLogs) this.#logListeners.add(options.onLogs);
  }

  /** The resolved liveness timings. */
  get liveness(): LivenessConfig {
    return this.#config;
  }

  /** The number of known nodes. */
  get size(): number {
    return this.#nodes.size;
  }

  /**
   * Loads every persisted node and desired revision, then subscribes to the agents' subjects and
   * starts the sweep and flush timers. Every loaded node gets the restart grace period.
   */
  async start(): Promise<void> {
    if (this.#started)
      throw new EdgeplaneError("failed_precondition", "the node registry was already started");
    this.#started = true;
    const records = await this.#nodeStore.loadAll();
    for (const r of records) {
      const agentLabels = this.#interner.labels(r.agentLabels);
      const entry = new NodeEntry(
        { ...r, agentLabels },
        this.#interner,
        mergeLabels(agentLabels, r.operatorLabels),
        this.#secondsOf(r.lastHeartbeat),
      );
      this.#nodes.set(entry.id, entry);
      this.#index.upsert(entry);
    }
    const revisions = await this.#desiredStore.revisions();
    for (const [id, revision] of revisions) {
      const entry = this.#nodes.get(id);
      if (entry) entry.desiredRevision = revision;
    }
    this.#viewSince = this.#clock.now();
    const on = (kind: OutboundKind, handler: (m: BusMessage) => void): void => {
      this.#unsubscribe.push(
        this.#bus.subscribe(subjects.allOutbound(kind), (m) => {
          this.#received[kind]++;
          try {
            handler(m);
          } catch (err) {
            this.#log.error("agent message handler failed", { kind, subject: m.subject, err });
          }
        }),
      );
    };
    on("heartbeat", (m) => this.#onHeartbeat(m));
    on("register", (m) => this.#track(this.#onRegister(m)));
    on("desired", (m) => this.#track(this.#onDesiredRequest(m)));
    on("event", (m) => this.#onEvent(m));
    on("logs", (m) => this.#onLogs(m));
    this.#unsubscribe.push(
      this.#bus.onEvent((event) => {
        if (event === "disconnected") {
          this.#busDown = true;
          this.#log.warn("lost the bus connection: liveness is suspended until it is back");
        } else if (event === "reconnected") {
          this.#busDown = false;
          this.#viewSince = this.#clock.now();
          this.#log.info("bus connection back: every node gets the grace period again", {
            graceMs: this.#config.restartGraceMs,
          });
        }
      }),
    );
    // The server must have the subscriptions before start() resolves: an agent registering right
    // after (on another connection) would otherwise get "no responders". Bounded: a bus that is
    // down does not block the start (NATS re-subscribes on reconnect anyway).
    let flushTimer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#bus.flush().catch(() => undefined),
      new Promise((r) => {
        flushTimer = setTimeout(r, 5000);
      }),
    ]);
    clearTimeout(flushTimer);
    if (this.#sweepIntervalMs > 0) this.#timers.push(setInterval(() => this.sweep(), this.#sweepIntervalMs));
    if (this.#flushIntervalMs > 0)
      this.#timers.push(setInterval(() => void this.flush().catch(() => undefined), this.#flushIntervalMs));
    for (const t of this.#timers) t.unref();
    this.#log.info("node registry started", {
      nodes: this.#nodes.size,
      graceMs: this.#config.restartGraceMs,
    });
  }

  /** Unsubscribes, stops the timers, waits for handlers in flight, writes what is pending. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const off of this.#unsubscribe.splice(0)) off();
    for (const t of this.#timers.splice(0)) clearInterval(t);
    await Promise.allSettled([...this.#inFlight]);
    await this.flush().catch((err: unknown) =>
      this.#log.error("could not write the last node changes before stopping", {
        err,
        pending: this.#dirty.size,
      }),
    );
  }

  // ── Queries ────────────────────────────────────────────────────────────────────────────────

  /** A node, or undefined. */
  get(id: string): NodeView | undefined {
    return this.#nodes.get(id)?.view();
  }

  /** Whether the node is known. */
  has(id: string): boolean {
    return this.#nodes.has(id);
  }

  /** Every node id (unordered). */
  ids(): string[] {
    return [...this.#nodes.keys()];
  }

  /** The ids of the nodes `selector` picks (unordered), via the label index. */
  select(selector: SelectorLike): string[] {
    return this.#index.select(selector);
  }

  /**
   * What a rollout observes of node `id` and its execution of `jobId` (preferring `version`),
   * without copying the node; undefined when the node is unknown.
   */
  observe(id: string, jobId: string, version: number): ExecutionObservation | undefined {
    const e = this.#nodes.get(id);
    if (e === undefined) return undefined;
    let best: ExecutionView | undefined;
    for (const x of e.executions) {
      if (x.jobId !== jobId) continue;
      if (x.jobVersion === version) {
        best = x;
        break;
      }
      if (best === undefined || x.jobVersion > best.jobVersion) best = x;
    }
    const heard = e.lastHeartbeat >= this.#viewSince;
    if (best === undefined) return { liveness: e.state, heard };
    return {
      liveness: e.state,
      heard,
      execution: {
        version: best.jobVersion,
        state: best.state,
        healthy: best.healthy,
        errorRate: best.errorRate,
        ...(best.healthySince !== undefined ? { healthySince: best.healthySince } : {}),
      },
    };
  }

  /** A node's state, or undefined when unknown (no copy). */
  stateOf(id: string): NodeStateType | undefined {
    return this.#nodes.get(id)?.state;
  }

  /**
   * What placement needs about a node: the live node itself, read-only (no copy, as placement
   * asks once per node sync): its fields are the node's current ones whenever they are read.
   */
  placementView(id: string): PlacementView | undefined {
    return this.#nodes.get(id);
  }

  /**
   * One page of nodes in id order (keyset: ids after `after`), filtered by selector (through the
   * label index) and states.
   */
  list(query: NodeQuery): NodePage {
    const states = query.states && query.states.length > 0 ? new Set(query.states) : undefined;
    const after = query.after;
    const limit = Math.max(1, Math.floor(query.limit));
    const keep = (id: string): boolean => {
      if (after !== undefined && id <= after) return false;
      return states === undefined || states.has((this.#nodes.get(id) as NodeEntry).state);
    };
    let ids: string[];
    if (query.selector !== undefined) {
      ids = this.#index.select(query.selector, { filter: keep, sort: true });
    } else {
      const sorted = this.#sorted();
      let lo = 0;
      if (after !== undefined) {
        let hi = sorted.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if ((sorted[mid] as string) <= after) lo = mid + 1;
          else hi = mid;
        }
      }
      ids = [];
      for (let i = lo; i < sorted.length && ids.length <= limit; i++) {
        const id = sorted[i] as string;
        if (keep(id)) ids.push(id);
      }
    }
    const page = ids.slice(0, limit);
    const items = page.map((id) => (this.#nodes.get(id) as NodeEntry).view());
    return ids.length > limit ? { items, next: page[page.length - 1] as string } : { items };
  }

  /** Counters (see {@link RegistryStats}). */
  stats(): RegistryStats {
    const nodes: Record<NodeStateType | "total", number> = {
      ready: 0,
      draining: 0,
      disconnected: 0,
      lost: 0,
      total: 0,
    };
    for (const e of this.#nodes.values()) nodes[e.state]++;
    nodes.total = this.#nodes.size;
    const c = this.#counters;
    return {
      nodes,
      received: { ...this.#received },
      dropped: { ...this.#drops.counts },
      duplicateEvents: c.duplicateEvents,
      rejectedRegistrations: c.rejectedRegistrations,
      desiredPushes: c.desiredPushes,
      desiredResends: c.desiredResends,
      persist: { batches: c.batches, written: c.written, failures: c.failures, pending: this.#dirty.size },
    };
  }

  // ── Listeners ──────────────────────────────────────────────────────────────────────────────

  /** Calls `listener` on every node change until the returned function is called. */
  onNodeChange(listener: NodeChangeListener): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /** Calls `listener` for every accepted execution event. */
  onExecutionEvent(listener: ExecutionEventListener): () => void {
    this.#eventListeners.add(listener);
    return () => this.#eventListeners.delete(listener);
  }

  /** Calls `listener` on every execution change (see {@link ExecutionChangeListener}). */
  onExecutionChange(listener: ExecutionChangeListener): () => void {
    this.#execListeners.add(listener);
    return () => this.#execListeners.delete(listener);
  }

  /** Calls `listener` for every accepted log batch. */
  onLogs(listener: LogsListener): () => void {
    this.#logListeners.add(listener);
    return () => this.#logListeners.delete(listener);
  }

  /** Calls `listener` for every accepted heartbeat (after the registry applied it). */
  onHeartbeat(listener: HeartbeatListener): () => void {
    this.#heartbeatListeners.add(listener);
    return () => this.#heartbeatListeners.delete(listener);
  }

  /** Calls `listener` after every pushed change of a node's desired state. */
  onDesiredChanged(listener: DesiredChangeListener): () => void {
    this.#desiredListeners.add(listener);
    return () => this.#desiredListeners.delete(listener);
  }

  // ── Operator actions (written before they return) ─────────────────────────────────────────

  /**
   * Drains a node (no new assignments; it keeps what it runs) or undrains it. Draining lasts until
   * undrained; a drained node that is disconnected or lost stays so until it heartbeats.
   */
  async drain(id: string, options: { undrain?: boolean; reason?: string } = {}): Promise<NodeView> {
    const entry = this.#require(id);
    const reason = (options.reason ?? "").slice(0, MAX_REASON);
    const drained = !(options.undrain ?? false);
    const before = { drained: entry.drained, state: entry.state, message: entry.message };
    entry.drained = drained;
    if (isLiveNodeState(entry.state)) {
      entry.state = liveState(drained);
      entry.message = drained ? `drained by operator${reason ? `: ${reason}` : ""}` : "";
    }
    if (
      entry.drained !== before.drained ||
      entry.state !== before.state ||
      entry.message !== before.message
    ) {
      await this.#persistNow(entry, () => {
        entry.drained = before.drained;
        entry.state = before.state;
        entry.message = before.message;
      });
      if (entry.state !== before.state) this.#notify(id, "state");
      this.#log.info(drained ? "node drained" : "node undrained", { node: id, reason });
    }
    return entry.view();
  }

  /**
   * Merges operator labels (an empty value removes one; `remove` lists keys to remove);
   * `edgeplane.io/` keys are refused. `invalid_argument` names every bad field.
   */
  async setLabels(id: string, change: LabelChange): Promise<NodeView> {
    const entry = this.#require(id);
    const changed = applyOperatorLabels(entry.operatorLabels, change);
    const operatorLabels = Object.keys(changed).length === 0 ? NO_LABELS : changed;
    if (sameLabels(operatorLabels, entry.operatorLabels)) return entry.view();
    const before = { operatorLabels: entry.operatorLabels, labels: entry.labels };
    entry.operatorLabels = operatorLabels;
    entry.labels = mergeLabels(entry.agentLabels, operatorLabels);
    await this.#persistNow(entry, () => {
      entry.operatorLabels = before.operatorLabels;
      entry.labels = before.labels;
    });
    if (!sameLabels(before.labels, entry.labels)) {
      this.#index.upsert(entry);
      this.#notify(id, "labels");
    }
    return entry.view();
  }

  // ── Placement side ─────────────────────────────────────────────────────────────────────────

  /** A node's desired state changed (written by placement): remember the revision and push it. */
  desiredChanged(record: DesiredStateRecord): void {
    const entry = this.#nodes.get(record.nodeId);
    if (entry === undefined || record.revision < entry.desiredRevision) return;
    entry.desiredRevision = record.revision;
    const now = this.#clock.now();
    this.#publishDesired(entry, record.revision, record.assignments, now);
    this.#counters.desiredPushes++;
    for (const l of this.#desiredListeners) {
      try {
        l(record);
      } catch (err) {
        this.#log.error("a desired-state listener failed", { node: record.nodeId, err });
      }
    }
  }

  // ── Liveness and persistence ───────────────────────────────────────────────────────────────

  /** Runs the liveness sweep now (the timer calls it every `sweepIntervalMs`). */
  sweep(): void {
    if (this.#busDown || this.#stopped) return;
    const now = this.#clock.now();
    const moved: Record<string, number> = {};
    let logged = 0;
    for (const entry of this.#nodes.values()) {
      const next = sweepState(entry, now, this.#viewSince, this.#config);
      if (next === undefined) continue;
      this.#setState(entry, next, livenessMessage(next, entry.lastHeartbeat, this.#config));
      moved[next] = (moved[next] ?? 0) + 1;
      // One line per node for the first few; a summary when many move at once.
      if (logged++ < 10) this.#log.info(`node ${next}`, { node: entry.id, message: entry.message });
    }
    if (logged > 10) this.#log.warn("many nodes changed state in one sweep", moved);
  }

  /**
   * Writes every changed node in one batch (coalesced: callers during a write share the next
   * one). Rejects when the write fails; the nodes stay pending and are retried.
   */
  flush(): Promise<void> {
    return this.#flusher.run();
  }

  async #writeBatch(): Promise<void> {
    if (this.#dirty.size === 0) return;
    const batch = [...this.#dirty];
    this.#dirty.clear();
    const now = this.#clock.now();
    const records = batch.map((e) => e.toRecord(now));
    try {
      await this.#nodeStore.saveMany(records);
    } catch (err) {
      for (const e of batch) this.#dirty.add(e);
      this.#counters.failures++;
      if (!this.#persistFailing) {
        this.#persistFailing = true;
        this.#log.error("cannot write node changes; retrying every flush", {
          err,
          pending: this.#dirty.size,
        });
      }
      throw err;
    }
    if (this.#persistFailing) {
      this.#persistFailing = false;
      this.#log.info("node changes are written again");
    }
    this.#counters.batches++;
    this.#counters.written += records.length;
    for (let i = 0; i < batch.length; i++)
      (batch[i] as NodeEntry).persistedSec = this.#secondsOf(
        (records[i] as { lastHeartbeat: number }).lastHeartbeat,
      );
  }

  /** Marks `entry` changed and waits for the batch that writes it; `undo` runs if it fails. */
  async #persistNow(entry: NodeEntry, undo: () => void): Promise<void> {
    this.#dirty.add(entry);
    try {
      await this.flush();
    } catch (err) {
      undo();
      throw EdgeplaneError.from(err, "unavailable");
    }
  }

  // ── Agent messages ─────────────────────────────────────────────────────────────────────────

  #onHeartbeat(m: BusMessage): void {
    const nodeId = this.#subjectNode(m, "heartbeat");
    if (nodeId === undefined) return;
    const hb = this.#decode(HeartbeatSchema, m, "heartbeat", nodeId);
    if (hb === undefined) return;
    if (hb.nodeId !== nodeId) {
      this.#drops.drop(
        "mismatched_identity",
        "heartbeat",
        nodeId,
        `body names node ${JSON.stringify(hb.nodeId)}`,
      );
      return;
    }
    const entry = this.#nodes.get(nodeId);
    if (entry === undefined) {
      this.#drops.drop("unknown_node", "heartbeat", nodeId, "never registered");
      return;
    }
    if (hb.executions.length > MAX_EXECUTIONS_PER_NODE) {
      this.#drops.drop("malformed", "heartbeat", nodeId, `lists ${hb.executions.length} executions`);
      return;
    }
    this.#heartbeat(entry, hb);
  }

  #heartbeat(entry: NodeEntry, hb: Heartbeat): void {
    const now = this.#clock.now();
    entry.lastHeartbeat = now;
    if (!isLiveNodeState(entry.state))
      this.#setState(entry, liveState(entry.drained), liveMessage(entry.drained));
    if (hb.instanceId !== entry.instanceId && hb.instanceId.length <= MAX_ID_FIELD) {
      entry.instanceId = hb.instanceId;
      this.#dirty.add(entry);
    }
    if (hb.appliedRevision !== entry.appliedRevision) {
      entry.appliedRevision = hb.appliedRevision;
      this.#dirty.add(entry);
    }
    entry.setExecutions(
      hb.executions,
      this.#interner,
      this.#execListeners.size > 0 ? this.#onExecChange(entry.id) : undefined,
    );
    if (now - this.#epoch - entry.persistedSec * 1000 >= this.#heartbeatPersistMs) this.#dirty.add(entry);
    this.#checkRevision(entry, now);
    for (const l of this.#heartbeatListeners) {
      try {
        l(entry.id, hb);
      } catch (err) {
        this.#log.error("a heartbeat listener failed", { node: entry.id, err });
      }
    }
  }

  /** Re-sends the desired state to a node that is behind; asks placement to jump past one ahead. */
  #checkRevision(entry: NodeEntry, now: number): void {
    const id = entry.id;
    if (entry.appliedRevision === entry.desiredRevision) {
      if (this.#lastPush.size > 0) this.#lastPush.delete(id);
      return;
    }
    // At most once per heartbeat interval per node.
    if (
      this.#pushing.has(id) ||
      now - (this.#lastPush.get(id) ?? Number.NEGATIVE_INFINITY) < this.#config.heartbeatIntervalMs
    )
      return;
    this.#lastPush.set(id, now);
    if (entry.appliedRevision > entry.desiredRevision) {
      this.#notify(id, "revision");
      return;
    }
    this.#pushing.add(id);
    this.#counters.desiredResends++;
    this.#track(
      this.#desiredStore
        .get(entry.id)
        .then((record) => {
          const revision = Math.max(record?.revision ?? 0, entry.desiredRevision);
          entry.desiredRevision = revision;
          this.#publishDesired(entry, revision, record?.assignments ?? [], this.#clock.now());
        })
        .catch((err: unknown) => this.#log.warn("could not re-send a desired state", { node: entry.id, err }))
        .finally(() => {
          this.#pushing.delete(id);
        }),
    );
  }

  async #onRegister(m: BusMessage): Promise<void> {
    const nodeId = this.#subjectNode(m, "register");
    if (nodeId === undefined) return;
    const reject = (message: string): void => {
      this.#counters.rejectedRegistrations++;
      this.#reply(m, AgentRegisterResponseSchema, {
        accepted: false,
        message,
        heartbeatIntervalMs: this.#config.heartbeatIntervalMs,
      });
    };
    const req = this.#decode(AgentRegisterRequestSchema, m, "register", nodeId, reject);
    if (req === undefined) return;
    if (req.nodeId !== nodeId) {
      this.#drops.drop(
        "mismatched_identity",
        "register",
        nodeId,
        `body names node ${JSON.stringify(req.nodeId)}`,
      );
      reject(
        `node_id: ${JSON.stringify(req.nodeId)} does not match node ${nodeId} of the subject; identity is the subject`,
      );
      return;
    }
    const problem =
      agentLabelProblem(req.labels) ??
      (req.agentVersion.length > MAX_VERSION_FIELD
        ? { field: "agent_version", description: `is longer than ${MAX_VERSION_FIELD} characters` }
        : req.instanceId.length > MAX_ID_FIELD
          ? { field: "instance_id", description: `is longer than ${MAX_ID_FIELD} characters` }
          : req.executors.length > MAX_EXECUTORS ||
              req.executors.some((x) => !/^[a-z][a-z0-9-]{0,31}$/.test(x))
            ? {
                field: "executors",
                description: `must be at most ${MAX_EXECUTORS} names such as "pipeline", "exec"`,
              }
            : undefined);
    if (problem !== undefined) {
      this.#log.warn("refused a registration", {
        node: nodeId,
        field: problem.field,
        problem: problem.description,
      });
      reject(`${problem.field}: ${problem.description}`);
      return;
    }

    const now = this.#clock.now();
    let entry = this.#nodes.get(nodeId);
    const created = entry === undefined;
    const agentLabels = this.#interner.labels(req.labels);
    if (entry === undefined) {
      entry = new NodeEntry(
        {
          id: nodeId,
          agentLabels,
          operatorLabels: NO_LABELS,
          state: "ready",
          message: "",
          drained: false,
          lastHeartbeat: now,
          agentVersion: req.agentVersion,
          executors: req.executors,
          instanceId: req.instanceId,
          registeredAt: now,
          appliedRevision: req.appliedRevision,
          updatedAt: now,
        },
        this.#interner,
        agentLabels,
        NEVER_PERSISTED,
      );
      this.#nodes.set(nodeId, entry);
      this.#sortedIds = undefined;
      this.#index.upsert(entry);
    } else {
      const labelsBefore = entry.labels;
      entry.agentLabels = agentLabels;
      entry.labels = mergeLabels(agentLabels, entry.operatorLabels);
      entry.agentVersion = this.#interner.string(req.agentVersion);
      entry.executors = this.#interner.list(req.executors);
      entry.instanceId = req.instanceId;
      entry.appliedRevision = req.appliedRevision;
      entry.lastHeartbeat = now;
      if (!sameLabels(labelsBefore, entry.labels)) {
        this.#index.upsert(entry);
        this.#notify(nodeId, "labels");
      }
      if (!isLiveNodeState(entry.state))
        this.#setState(entry, liveState(entry.drained), liveMessage(entry.drained));
    }
    this.#dirty.add(entry);
    try {
      await this.flush();
    } catch {
      reject("the control plane cannot store the registration right now; retry");
      return;
    }
    if (created) this.#log.info("node registered", { node: nodeId, agentVersion: req.agentVersion });
    this.#notify(nodeId, "registered");

    let desired: DesiredStateRecord | undefined;
    try {
      desired = await this.#desiredStore.get(nodeId);
    } catch (err) {
      this.#log.warn("could not read a desired state for a registration", { node: nodeId, err });
      reject("the control plane cannot read the desired state right now; retry");
      return;
    }
    const revision = Math.max(desired?.revision ?? 0, entry.desiredRevision);
    entry.desiredRevision = revision;
    const sentAt = this.#sent(entry);
    this.#reply(m, AgentRegisterResponseSchema, {
      accepted: true,
      message: "",
      heartbeatIntervalMs: this.#config.heartbeatIntervalMs,
      desiredState: desiredStateMessage(nodeId, revision, desired?.assignments ?? [], sentAt),
    });
    if (entry.appliedRevision > revision) this.#notify(nodeId, "revision");
  }

  async #onDesiredRequest(m: BusMessage): Promise<void> {
    const nodeId = this.#subjectNode(m, "desired");
    if (nodeId === undefined) return;
    const req = this.#decode(DesiredStateRequestSchema, m, "desired", nodeId);
    if (req === undefined) return;
    if (req.nodeId !== nodeId) {
      this.#drops.drop(
        "mismatched_identity",
        "desired",
        nodeId,
        `body names node ${JSON.stringify(req.nodeId)}`,
      );
      return;
    }
    const entry = this.#nodes.get(nodeId);
    if (entry === undefined) {
      this.#drops.drop("unknown_node", "desired", nodeId, "never registered");
      return;
    }
    if (m.reply === undefined) {
      this.#drops.drop("malformed", "desired", nodeId, "a desired-state request without a reply subject");
      return;
    }
    if (req.appliedRevision !== entry.appliedRevision) {
      entry.appliedRevision = req.appliedRevision;
      this.#dirty.add(entry);
    }
    let desired: DesiredStateRecord | undefined;
    try {
      desired = await this.#desiredStore.get(nodeId);
    } catch (err) {
      this.#log.warn("could not read a desired state for a fetch", { node: nodeId, err });
      return;
    }
    const revision = Math.max(desired?.revision ?? 0, entry.desiredRevision);
    entry.desiredRevision = revision;
    this.#reply(
      m,
      DesiredStateSchema,
      desiredStateMessage(nodeId, revision, desired?.assignments ?? [], this.#sent(entry)),
    );
    if (entry.appliedRevision > revision) this.#notify(nodeId, "revision");
  }

  #onEvent(m: BusMessage): void {
    const nodeId = this.#subjectNode(m, "event");
    if (nodeId === undefined) return;
    const ev = this.#decode(ExecutionEventSchema, m, "event", nodeId);
    if (ev === undefined) return;
    if (ev.nodeId !== nodeId) {
      this.#drops.drop(
        "mismatched_identity",
        "event",
        nodeId,
        `body names node ${JSON.stringify(ev.nodeId)}`,
      );
      return;
    }
    const entry = this.#nodes.get(nodeId);
    if (entry === undefined) {
      this.#drops.drop("unknown_node", "event", nodeId, "never registered");
      return;
    }
    const status = ev.status;
    if (
      ev.eventId === "" ||
      ev.eventId.length > MAX_ID_FIELD ||
      status === undefined ||
      status.executionId === ""
    ) {
      this.#drops.drop(
        "malformed",
        "event",
        nodeId,
        "an execution event needs event_id and status.execution_id",
      );
      return;
    }
    // Keyed by node too: one node cannot suppress another's events by reusing their ids.
    if (!this.#events.add(`${nodeId}\0${ev.eventId}`)) {
      this.#counters.duplicateEvents++;
      return;
    }
    if (entry.upsertExecution(status, this.#interner)) this.#notifyExecution(nodeId, status.jobId);
    for (const l of this.#eventListeners) {
      try {
        l(nodeId, ev);
      } catch (err) {
        this.#log.error("an execution event listener failed", { node: nodeId, err });
      }
    }
  }

  #onLogs(m: BusMessage): void {
    const nodeId = this.#subjectNode(m, "logs");
    if (nodeId === undefined) return;
    const batch = this.#decode(LogBatchSchema, m, "logs", nodeId);
    if (batch === undefined) return;
    if (batch.nodeId !== nodeId) {
      this.#drops.drop(
        "mismatched_identity",
        "logs",
        nodeId,
        `body names node ${JSON.stringify(batch.nodeId)}`,
      );
      return;
    }
    if (!this.#nodes.has(nodeId)) {
      this.#drops.drop("unknown_node", "logs", nodeId, "never registered");
      return;
    }
    if (batch.executionId === "" || batch.lines.length > MAX_LOG_LINES) {
      this.#drops.drop("malformed", "logs", nodeId, "a log batch needs execution_id and at most 10000 lines");
      return;
    }
    for (const l of this.#logListeners) {
      try {
        l(nodeId, batch);
      } catch (err) {
        this.#log.error("a logs listener failed", { node: nodeId, err });
      }
    }
  }

  // ── Helpers ────────────────────────────────────────────────────────────────────────────────

  /** The node id of the subject, or undefined (counted) when the subject is not a node's. */
  #subjectNode(m: BusMessage, kind: OutboundKind): string | undefined {
    const parsed = parseOutbound(m.subject);
    if (parsed === undefined || parsed.kind !== kind) {
      this.#drops.drop("malformed", kind, m.subject, "not an agent subject");
      return undefined;
    }
    return parsed.nodeId;
  }

  /** Decodes a message; counts and drops (and optionally rejects) one that is oversized or malformed. */
  #decode<D extends DescMessage>(
    schema: D,
    m: BusMessage,
    kind: OutboundKind,
    nodeId: string,
    reject?: (message: string) => void,
  ): MessageShape<D> | undefined {
    try {
      return decode(schema, m.data, this.#maxBytes);
    } catch (err) {
      const e = EdgeplaneError.from(err);
      const reason: DropReason = e.code === "resource_exhausted" ? "oversized" : "malformed";
      this.#drops.drop(reason, kind, nodeId, e.message);
      reject?.(e.message);
      return undefined;
    }
  }

  #reply<D extends DescMessage>(m: BusMessage, schema: D, message: MessageInitShape<D>): void {
    if (m.reply === undefined) return;
    this.#bus.publish(m.reply, encode(schema, message));
  }

  #publishDesired(
    entry: NodeEntry,
    revision: number,
    assignments: DesiredStateRecord["assignments"],
    now: number,
  ): void {
    this.#lastPush.set(entry.id, now);
    this.#bus.publish(subjects.desired(entry.id), this.#encoder.encode(entry.id, revision, assignments, now));
  }

  /** Records that the node was just sent its desired state (rate-limits re-sends); returns now. */
  #sent(entry: NodeEntry): number {
    const now = this.#clock.now();
    this.#lastPush.set(entry.id, now);
    return now;
  }

  /** Whole seconds from the registry's start to `ms` (may be negative). */
  #secondsOf(ms: number): number {
    return Math.floor((ms - this.#epoch) / 1000);
  }

  #setState(entry: NodeEntry, state: NodeStateType, message: string): void {
    if (entry.state === state && entry.message === message) return;
    const changed = entry.state !== state;
    entry.state = state;
    entry.message = message;
    this.#dirty.add(entry);
    if (changed) this.#notify(entry.id, "state");
  }

  #notifyExecution(nodeId: string, jobId: string): void {
    for (const l of this.#execListeners) {
      try {
        l(nodeId, jobId);
      } catch (err) {
        this.#log.error("an execution change listener failed", { node: nodeId, err });
      }
    }
  }

  #notify(nodeId: string, change: NodeChange): void {
    for (const l of this.#changeListeners) {
      try {
        l(nodeId, change);
      } catch (err) {
        this.#log.error("a node change listener failed", { node: nodeId, change, err });
      }
    }
  }

  #require(id: string): NodeEntry {
    const entry = this.#nodes.get(id);
    if (entry === undefined) {
      throw new EdgeplaneError(
        "not_found",
        `node ${JSON.stringify(id)} not found; list nodes with GET /api/v1/nodes`,
        {
          metadata: { node_id: id },
        },
      );
    }
    return entry;
  }

  #sorted(): string[] {
    this.#sortedIds ??= [...this.#nodes.keys()].sort();
    return this.#sortedIds;
  }

  /** Keeps a handler's promise until it settles (stop waits for it); it never rejects unhandled. */
  #track(p: Promise<unknown>): void {
    const tracked = p.catch((err: unknown) => this.#log.error("agent message handler failed", { err }));
    this.#inFlight.add(tracked);
    void tracked.finally(() => this.#inFlight.delete(tracked));
  }
}
