/**
 * The runtime of simple placement (the stand-in until the rollout orchestrator): keeps every
 * node's desired state equal to `computeAssignments(placed jobs, node)` and every placed job's
 * state equal to "running" (≥ 1 node holds it) or "queued" (none does).
 *
 * Level-triggered over one key-deduplicating {@link WorkQueue}; triggers only add keys:
 * ```
 * job change stream (JobStore.readEvents, polled) ─▶ j:<job id> ─┐
 * registry: node registered / labels / state / revision ─▶ n:<node id> ─┤
 * periodic resync (every key) ───────────────────────────────────────────┘
 *
 * sync j:<id>  re-read the job; if it started or stopped being placed, or got a new version:
 *              add n:<id> for every node holding it or matching its selector (LabelIndex);
 *              then (once those node syncs are done) set its state running / queued.
 * sync n:<id>  compute the node's set from the cached placed jobs; when it differs from the
 *              stored set: write it (revision + 1, check-and-set on the revision), push it,
 *              and add j:<id> for every job that gained or lost this node.
 * ```
 * Missed or duplicate triggers are harmless: every sync re-reads the state it decides on.
 */
import {
  allowedFrom,
  type Clock,
  createLogger,
  EdgeplaneError,
  type Logger,
  systemClock,
} from "@edgeplane/core";
import type { DesiredStateRecord, DesiredStateStore, JobRecord, JobStore } from "@edgeplane/store";
import type { NodeRegistry } from "./node-registry.js";
import {
  assignmentSignature,
  computeAssignments,
  isPlacedJobState,
  PLACED_JOB_STATES,
  type PlacementJob,
  placementJob,
} from "./placement.js";
import { WorkQueue } from "./work-queue.js";

/** What placement needs from the registry (a narrow seam; the registry implements it). */
export type PlacementRegistry = Pick<
  NodeRegistry,
  "select" | "ids" | "placementView" | "desiredChanged" | "onNodeChange"
>;

/** What placement needs from the job store. */
export type PlacementJobSource = Pick<JobStore, "getJob" | "listJobs" | "readEvents" | "updateStatus">;

/** Options of {@link createPlacementController}. */
export interface PlacementControllerOptions {
  readonly jobStore: PlacementJobSource;
  readonly desiredStore: DesiredStateStore;
  readonly registry: PlacementRegistry;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** How often the job change stream is polled; default 200 ms. */
  readonly pollIntervalMs?: number;
  /** Every job and node is re-synced this often (missed events, trimmed stream); default 5 min; 0 = never. */
  readonly resyncIntervalMs?: number;
  /** Keys synced in parallel; default 8. */
  readonly concurrency?: number;
}

/** Counters of the controller. */
export interface PlacementStats {
  readonly placedJobs: number;
  readonly nodeSyncs: number;
  readonly jobSyncs: number;
  readonly desiredWrites: number;
  readonly statusWrites: number;
  readonly syncErrors: number;
  readonly queued: number;
}

/** What the controller remembers of a node's stored desired state (not the assignments). */
interface Held {
  readonly revision: number;
  readonly signature: string;
  readonly jobIds: ReadonlySet<string>;
}

const NOTHING: ReadonlySet<string> = new Set();
const EVENT_PAGE = 1000;
const LIST_PAGE = 1000;

/** Creates a {@link PlacementController}; call `start()`. */
export function createPlacementController(options: PlacementControllerOptions): PlacementController {
  return new PlacementController(options);
}

/** The simple-placement runtime (see the module header). */
export class PlacementController {
  readonly #jobStore: PlacementJobSource;
  readonly #desiredStore: DesiredStateStore;
  readonly #registry: PlacementRegistry;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #pollIntervalMs: number;
  readonly #resyncIntervalMs: number;
  readonly #concurrency: number;
  readonly #queue = new WorkQueue<string>();
  /** Placed jobs by id, with their compiled selectors. */
  readonly #jobs = new Map<string, PlacementJob>();
  /** Nodes whose stored set is not empty. */
  readonly #held = new Map<string, Held>();
  /** job id → nodes whose stored set holds it. */
  readonly #holders = new Map<string, Set<string>>();
  /** job id → nodes added for it and not synced yet (its state waits for them). */
  readonly #settling = new Map<string, Set<string>>();
  /** node id → jobs waiting for it (the reverse of #settling). */
  readonly #settlingByNode = new Map<string, Set<string>>();
  /** Nodes of the first full pass; no job state is decided before they are all synced. */
  readonly #initial = new Set<string>();
  readonly #counters = { nodeSyncs: 0, jobSyncs: 0, desiredWrites: 0, statusWrites: 0, syncErrors: 0 };
  #cursor = "0";
  #workers: Promise<void> | undefined;
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  #resyncTimer: ReturnType<typeof setInterval> | undefined;
  #polling: Promise<void> | undefined;
  #pollFailing = false;
  #offNodeChange: (() => void) | undefined;
  #stopped = false;

  constructor(options: PlacementControllerOptions) {
    this.#jobStore = options.jobStore;
    this.#desiredStore = options.desiredStore;
    this.#registry = options.registry;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? createLogger({ component: "placement" });
    this.#pollIntervalMs = options.pollIntervalMs ?? 200;
    this.#resyncIntervalMs = options.resyncIntervalMs ?? 5 * 60_000;
    this.#concurrency = options.concurrency ?? 8;
    // Registered at once, so changes between construction and start() are not missed.
    this.#offNodeChange = this.#registry.onNodeChange((id) => this.#queue.add(`n:${id}`));
  }

  /**
   * Loads the stored desired states and the placed jobs, moves the change-stream cursor to the
   * end, queues every node, and starts the workers, the stream poller and the resync timer.
   * Call after the registry's `start()`.
   */
  async start(): Promise<void> {
    for (const record of await this.#desiredStore.loadAll()) this.#remember(record);
    this.#cursor = await this.#streamEnd();
    await this.#loadJobs();
    for (const id of this.#registry.ids()) {
      this.#initial.add(id);
      this.#queue.add(`n:${id}`);
    }
    if (this.#initial.size === 0) for (const id of this.#jobs.keys()) this.#queue.add(`j:${id}`);
    this.#workers = this.#queue.run((key) => this.#sync(key), {
      concurrency: this.#concurrency,
      onError: (key, err) => {
        this.#counters.syncErrors++;
        const e = EdgeplaneError.from(err);
        if (e.code !== "aborted")
          this.#log.warn("placement sync failed; retrying with backoff", { key, err: e.message });
      },
    });
    this.#schedulePoll();
    if (this.#resyncIntervalMs > 0) {
      this.#resyncTimer = setInterval(() => void this.resync(), this.#resyncIntervalMs);
      this.#resyncTimer.unref();
    }
    this.#log.info("placement started", { placedJobs: this.#jobs.size, nodes: this.#initial.size });
  }

  /** Stops polling and the workers (keys in flight finish). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#offNodeChange?.();
    if (this.#pollTimer) clearTimeout(this.#pollTimer);
    if (this.#resyncTimer) clearInterval(this.#resyncTimer);
    await this.#polling;
    this.#queue.shutDown();
    await this.#workers;
  }

  /** Queues every placed job and every node again (also run every `resyncIntervalMs`). */
  async resync(): Promise<void> {
    try {
      await this.#loadJobs((id) => this.#queue.add(`j:${id}`));
    } catch (err) {
      this.#log.warn("resync could not list jobs", { err });
    }
    for (const id of this.#jobs.keys()) this.#queue.add(`j:${id}`);
    for (const id of this.#registry.ids()) this.#queue.add(`n:${id}`);
  }

  /** Resolves once nothing is queued or in flight (tests; a poll may still add work later). */
  async idle(): Promise<void> {
    while (this.#queue.length > 0 || this.#queue.inFlight > 0 || this.#polling !== undefined) {
      await (this.#polling ?? this.#queue.drain());
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Polls the job change stream once now (the timer does it every `pollIntervalMs`). */
  pollNow(): Promise<void> {
    this.#polling ??= this.#poll().finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  /** Counters. */
  stats(): PlacementStats {
    return {
      placedJobs: this.#jobs.size,
      ...this.#counters,
      queued: this.#queue.length + this.#queue.inFlight,
    };
  }

  /** The job ids a node's stored set holds (for tests and diagnostics). */
  heldBy(nodeId: string): string[] {
    return [...(this.#held.get(nodeId)?.jobIds ?? NOTHING)].sort();
  }

  // ── Triggers ───────────────────────────────────────────────────────────────────────────────

  #schedulePoll(): void {
    if (this.#stopped) return;
    this.#pollTimer = setTimeout(() => {
      void this.pollNow().finally(() => this.#schedulePoll());
    }, this.#pollIntervalMs);
    this.#pollTimer.unref();
  }

  async #poll(): Promise<void> {
    try {
      for (;;) {
        const events = await this.#jobStore.readEvents(this.#cursor, EVENT_PAGE);
        for (const ev of events) this.#queue.add(`j:${ev.jobId}`);
        const last = events[events.length - 1];
        if (last !== undefined) this.#cursor = last.id;
        if (events.length < EVENT_PAGE) break;
      }
      if (this.#pollFailing) this.#log.info("reading the job change stream again");
      this.#pollFailing = false;
    } catch (err) {
      if (!this.#pollFailing) this.#log.warn("cannot read the job change stream; retrying", { err });
      this.#pollFailing = true;
    }
  }

  /** The id of the last change-stream entry (the stream is read, not processed: jobs are listed next). */
  async #streamEnd(): Promise<string> {
    let cursor = "0";
    for (;;) {
      const events = await this.#jobStore.readEvents(cursor, EVENT_PAGE);
      const last = events[events.length - 1];
      if (last !== undefined) cursor = last.id;
      if (events.length < EVENT_PAGE) return cursor;
    }
  }

  /** Lists every placed job into the cache; `onNew` sees ids the cache did not have. */
  async #loadJobs(onNew?: (id: string) => void): Promise<void> {
    let cursor: Awaited<ReturnType<PlacementJobSource["listJobs"]>>["next"];
    do {
      const page = await this.#jobStore.listJobs({
        namespace: "*",
        limit: LIST_PAGE,
        cursor,
        states: [...PLACED_JOB_STATES],
        orderBy: "created_at",
        order: "asc",
        includeDeleted: false,
      });
      for (const job of page.items) {
        if (!this.#jobs.has(job.id)) {
          this.#jobs.set(job.id, placementJob(job));
          onNew?.(job.id);
        }
      }
      cursor = page.next;
    } while (cursor !== undefined);
  }

  // ── Syncs ──────────────────────────────────────────────────────────────────────────────────

  async #sync(key: string): Promise<void> {
    const id = key.slice(2);
    if (key.startsWith("n:")) {
      this.#counters.nodeSyncs++;
      try {
        await this.#syncNode(id);
      } finally {
        this.#settled(id);
      }
    } else {
      this.#counters.jobSyncs++;
      await this.#syncJob(id);
    }
  }

  async #syncJob(jobId: string): Promise<void> {
    const fresh = await this.#jobStore.getJob(jobId);
    const cached = this.#jobs.get(jobId);
    const placed = fresh !== undefined && isPlacedJobState(fresh.state);
    let current: PlacementJob | undefined;
    if (placed) {
      current =
        cached !== undefined && cached.job.version === fresh.version
          ? { job: fresh, selector: cached.selector }
          : placementJob(fresh);
      this.#jobs.set(jobId, current);
      if (current.selector === undefined && cached?.job.version !== fresh.version)
        this.#log.warn("a placed job has a selector that cannot be compiled; it matches no node", {
          job: jobId,
        });
    } else this.#jobs.delete(jobId);

    const relevant = placed !== (cached !== undefined) || (placed && cached?.job.version !== fresh?.version);
    if (relevant) {
      const targets = new Set(this.#holders.get(jobId) ?? NOTHING);
      if (current?.selector !== undefined)
        for (const id of this.#registry.select(current.selector)) targets.add(id);
      for (const nodeId of targets) this.#settle(jobId, nodeId);
    }
    if (!placed || (this.#settling.get(jobId)?.size ?? 0) > 0 || this.#initial.size > 0) return;
    await this.#updateJobState(fresh);
  }

  async #updateJobState(job: JobRecord): Promise<void> {
    const count = this.#holders.get(job.id)?.size ?? 0;
    const target = count > 0 ? "running" : "queued";
    if (job.state === target) return;
    const message = count > 0 ? "placed on every matching ready node" : "no ready node matches the selector";
    try {
      await this.#jobStore.updateStatus(
        job.id,
        { state: target, message, now: this.#clock.now() },
        { expectedRevision: job.revision, allowedFrom: allowedFrom(target) },
      );
      this.#counters.statusWrites++;
    } catch (err) {
      const e = EdgeplaneError.from(err);
      // The job moved meanwhile (stopped, deleted, updated): its own event re-queues it.
      if (e.code === "failed_precondition" || e.code === "not_found") return;
      throw e;
    }
  }

  async #syncNode(nodeId: string): Promise<void> {
    const node = this.#registry.placementView(nodeId);
    if (node === undefined) return;
    const current: Held = this.#held.get(nodeId) ?? {
      revision: node.desiredRevision,
      signature: "",
      jobIds: NOTHING,
    };
    const assignments = computeAssignments(this.#jobs.values(), {
      id: node.id,
      labels: node.labels,
      state: node.state,
      heldJobIds: current.jobIds,
    });
    const signature = assignmentSignature(assignments);
    const ahead = node.appliedRevision > current.revision;
    if (signature === current.signature && !ahead) return;
    let record: DesiredStateRecord;
    try {
      record = await this.#desiredStore.put({
        nodeId,
        assignments,
        now: this.#clock.now(),
        expectedRevision: current.revision,
        minRevision: ahead ? node.appliedRevision + 1 : undefined,
      });
    } catch (err) {
      if (EdgeplaneError.from(err).code === "aborted") {
        // Someone else wrote (another replica, an operator tool): re-read it; the retry decides again.
        const stored = await this.#desiredStore.get(nodeId);
        if (stored) {
          this.#remember(stored);
          // The registry holds the revision of nodes with an empty set: bring it up to date too.
          this.#registry.desiredChanged(stored);
        }
      }
      throw err;
    }
    this.#counters.desiredWrites++;
    const before = current.jobIds;
    this.#remember(record);
    const after = this.#held.get(nodeId)?.jobIds ?? NOTHING;
    for (const j of before) if (!after.has(j)) this.#queue.add(`j:${j}`);
    for (const j of after) if (!before.has(j)) this.#queue.add(`j:${j}`);
    this.#registry.desiredChanged(record);
  }

  // ── Bookkeeping ────────────────────────────────────────────────────────────────────────────

  /** Records a stored desired state: the held set and the reverse index. */
  #remember(record: DesiredStateRecord): void {
    const before = this.#held.get(record.nodeId)?.jobIds ?? NOTHING;
    for (const j of before) {
      const set = this.#holders.get(j);
      set?.delete(record.nodeId);
      if (set?.size === 0) this.#holders.delete(j);
    }
    if (record.assignments.length === 0) {
      this.#held.delete(record.nodeId);
      return;
    }
    const jobIds = new Set(record.assignments.map((a) => a.jobId));
    this.#held.set(record.nodeId, {
      revision: record.revision,
      signature: assignmentSignature(record.assignments),
      jobIds,
    });
    for (const j of jobIds) {
      const set = this.#holders.get(j) ?? new Set<string>();
      this.#holders.set(j, set);
      set.add(record.nodeId);
    }
  }

  /** Queues a node on behalf of a job whose state must wait for it. */
  #settle(jobId: string, nodeId: string): void {
    const nodes = this.#settling.get(jobId) ?? new Set<string>();
    this.#settling.set(jobId, nodes);
    nodes.add(nodeId);
    const jobs = this.#settlingByNode.get(nodeId) ?? new Set<string>();
    this.#settlingByNode.set(nodeId, jobs);
    jobs.add(jobId);
    this.#queue.add(`n:${nodeId}`);
  }

  /** A node sync ended: jobs that waited only for it get their state decided. */
  #settled(nodeId: string): void {
    if (this.#initial.delete(nodeId) && this.#initial.size === 0) {
      for (const id of this.#jobs.keys()) this.#queue.add(`j:${id}`);
    }
    const jobs = this.#settlingByNode.get(nodeId);
    if (jobs === undefined) return;
    this.#settlingByNode.delete(nodeId);
    for (const jobId of jobs) {
      const nodes = this.#settling.get(jobId);
      nodes?.delete(nodeId);
      if (nodes?.size === 0) {
        this.#settling.delete(jobId);
        this.#queue.add(`j:${jobId}`);
      }
    }
  }
}
