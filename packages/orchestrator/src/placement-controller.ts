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
 * A worker syncs the node keys queued together as one batch (up to `batchSize`): every set is
 * computed, the changed ones are written in one store round trip (`putMany`: still one
 * check-and-set per node), and each is pushed once stored, so a fan-out to a fleet costs a few
 * round trips instead of one per node.
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
import type {
  DesiredStateRecord,
  DesiredStateStore,
  JobEvent,
  JobRecord,
  JobStore,
  JsonObject,
  PutDesiredCommand,
  PutDesiredResult,
} from "@edgeplane/store";
import { CoalescingRunner } from "./coalescing-runner.js";
import type { NodeRegistry, PlacementView } from "./node-registry.js";
import {
  assignmentSignature,
  computeAssignments,
  isPlacedJobState,
  isPlacedWithRollouts,
  PLACED_JOB_STATES,
  type PlacementJob,
  placementJob,
  type VersionLookup,
} from "./placement.js";
import { WorkQueue } from "./work-queue.js";

/** What placement needs from the registry (a narrow seam; the registry implements it). */
export type PlacementRegistry = Pick<
  NodeRegistry,
  "select" | "ids" | "placementView" | "desiredChanged" | "onNodeChange"
>;

/** What placement needs from the job store. */
export type PlacementJobSource = Pick<JobStore, "getJob" | "listJobs" | "readEvents" | "updateStatus"> &
  Partial<Pick<JobStore, "getVersion">>;

/**
 * Where the version of a job each node runs comes from when rollouts decide it (the deployment
 * runtime's versions-per-node map). With it, placement assigns each matching node the version
 * named here (or nothing), writes no job states (the rollout runtime owns them), and a new job
 * version changes nothing until a deployment assigns it.
 */
export interface PlacementVersionSource {
  /**
   * Makes `versionOf` answer for this job (loads it once); `undefined` when it already can. A
   * rejection fails the node sync (retried with backoff): never guess a version.
   */
  ensure(jobId: string): Promise<void> | undefined;
  /** The version `nodeId` runs, and the deployment that assigned it; undefined: none. */
  versionOf(
    jobId: string,
    nodeId: string,
  ): { readonly version: number; readonly deploymentId: string } | undefined;
  /**
   * Optional reverse index: the loaded jobs `nodeId` runs a version of. With it (and
   * `generation`), a node sync looks at those jobs only, once every placed job is loaded.
   */
  jobsOn?(nodeId: string): ReadonlySet<string>;
  /** Bumps whenever what was loaded is forgotten (a new leadership term). */
  readonly generation?: number;
}

/** Whether placement may write now (the leader lease); when it is not, node syncs do nothing. */
export interface PlacementGate {
  isActive(): boolean;
}

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
  /**
   * Workers; default 8. A worker syncs one job, or a batch of up to `batchSize` queued nodes (so
   * up to concurrency × batchSize node syncs are in flight).
   */
  readonly concurrency?: number;
  /**
   * The most nodes one worker syncs together: their sets computed, written in one store round
   * trip (`putMany`), then pushed. Default 128; 1 = one node at a time.
   */
  readonly batchSize?: number;
  /** Rollouts decide versions (see {@link PlacementVersionSource}); default: every node gets the current version. */
  readonly versions?: PlacementVersionSource;
  /** Write only while this says so (the leader lease); call `resync()` when it starts saying so. */
  readonly gate?: PlacementGate;
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
  /** Executions stored as desired "stopped" (cancelled through the Executions API): kept stopped. */
  readonly stopped: ReadonlySet<string>;
}

/** A node's write, planned by a batch sync. */
interface PendingWrite {
  readonly cmd: PutDesiredCommand;
  readonly signature: string;
  /** The jobs of the set it replaces. */
  readonly before: ReadonlySet<string>;
}

const NOTHING: ReadonlySet<string> = new Set();

/** Whether two sets hold the same items. */
function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/** Node keys (`n:<id>`) are synced in batches; job keys (`j:<id>`) one at a time. */
const isNodeKey = (key: string): boolean => key.startsWith("n:");
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
  readonly #batchSize: number;
  readonly #versions: PlacementVersionSource | undefined;
  readonly #gate: PlacementGate | undefined;
  /** Specs of job versions other than the current one (`<job>:<version>`), immutable. */
  readonly #specs = new Map<string, JsonObject>();
  /**
   * Versions (`<job>:<version>`) the job store did not have when asked (a node assigned one is
   * not placed). Asked again on the next resync (cleared), so the set stays small.
   */
  readonly #goneSpecs = new Set<string>();
  /** Placed jobs whose versions may not be loaded in the source yet (the indexed lookup). */
  #unloaded = new Set<string>();
  #sourceGeneration = -1;
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
  readonly #poller = new CoalescingRunner(() => this.#poll());
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
    this.#versions = options.versions;
    this.#gate = options.gate;
    this.#concurrency = options.concurrency ?? 8;
    this.#batchSize = Math.max(1, Math.floor(options.batchSize ?? 128));
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
    this.#workers = this.#queue.runBatched((keys) => this.#sync(keys), {
      concurrency: this.#concurrency,
      maxBatch: this.#batchSize,
      batchable: isNodeKey,
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
    await this.#poller.stop();
    this.#queue.shutDown();
    await this.#workers;
  }

  /** Queues every placed job and every node again (also run every `resyncIntervalMs`). */
  async resync(): Promise<void> {
    this.#goneSpecs.clear();
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
    while (this.#queue.length > 0 || this.#queue.inFlight > 0 || this.#poller.running !== undefined) {
      await (this.#poller.running ?? this.#queue.drain());
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Polls the job change stream once now (the timer does it every `pollIntervalMs`). */
  pollNow(): Promise<void> {
    return this.#poller.run();
  }

  /** Counters. */
  stats(): PlacementStats {
    return {
      placedJobs: this.#jobs.size,
      ...this.#counters,
      queued: this.#queue.length + this.#queue.inFlight,
    };
  }

  /** Queues these nodes (their versions changed: a rollout assigned or withdrew one). */
  nodesChanged(nodeIds: Iterable<string>): void {
    for (const id of nodeIds) this.#queue.add(`n:${id}`);
  }

  /**
   * Makes sure the cached job is at least at `version` (a rollout is about to assign it, maybe
   * before the change stream's next poll): re-reads it when older or unknown.
   */
  async ensureJob(jobId: string, version: number): Promise<void> {
    const cached = this.#jobs.get(jobId);
    if (cached !== undefined && cached.job.version >= version) return;
    const fresh = await this.#jobStore.getJob(jobId);
    if (fresh === undefined || !this.#isPlaced(fresh)) return;
    const now = this.#jobs.get(jobId);
    if (now !== undefined && now.job.revision >= fresh.revision) return;
    this.#putJob(
      jobId,
      now !== undefined && now.job.version === fresh.version
        ? { job: fresh, selector: now.selector }
        : placementJob(fresh),
    );
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
        for (const ev of events) if (this.#mayChangePlacement(ev)) this.#queue.add(`j:${ev.jobId}`);
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

  /**
   * Whether a change-stream event can change what placement does. With rollouts, a status change
   * of a placed job that stays in a placed state at the cached version (the runtime moving it
   * between pending, queued and running, or marking a version stable) cannot: versions come from
   * the rollout, and the spec is the cached version's. Without rollouts every event counts.
   */
  #mayChangePlacement(ev: JobEvent): boolean {
    if (this.#versions === undefined || ev.kind !== "status" || !isPlacedJobState(ev.state)) return true;
    const cached = this.#jobs.get(ev.jobId);
    return cached === undefined || cached.job.version !== ev.version;
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
  /** Caches a placed job (and, with rollouts, makes the next node sync load its versions). */
  #putJob(jobId: string, job: PlacementJob): void {
    if (this.#versions !== undefined && !this.#jobs.has(jobId)) this.#unloaded.add(jobId);
    this.#jobs.set(jobId, job);
  }

  #isPlaced(job: JobRecord): boolean {
    return this.#versions ? isPlacedWithRollouts(job) : isPlacedJobState(job.state);
  }

  async #loadJobs(onNew?: (id: string) => void): Promise<void> {
    let cursor: Awaited<ReturnType<PlacementJobSource["listJobs"]>>["next"];
    do {
      const page = await this.#jobStore.listJobs({
        namespace: "*",
        limit: LIST_PAGE,
        cursor,
        states: this.#versions ? [...PLACED_JOB_STATES, "failed"] : [...PLACED_JOB_STATES],
        orderBy: "created_at",
        order: "asc",
        includeDeleted: false,
      });
      for (const job of page.items) {
        if (!this.#isPlaced(job)) continue;
        if (!this.#jobs.has(job.id)) {
          this.#putJob(job.id, placementJob(job));
          onNew?.(job.id);
        }
      }
      cursor = page.next;
    } while (cursor !== undefined);
  }

  // ── Syncs ──────────────────────────────────────────────────────────────────────────────────

  /** Syncs one job key, or a batch of node keys (see `runBatched`); returns the keys that failed. */
  async #sync(keys: readonly string[]): Promise<ReadonlyMap<string, unknown> | undefined> {
    const first = keys[0] as string;
    if (!isNodeKey(first)) {
      this.#counters.jobSyncs++;
      await this.#syncJob(first.slice(2));
      return undefined;
    }
    const ids = keys.map((k) => k.slice(2));
    this.#counters.nodeSyncs += ids.length;
    try {
      const failed = await this.#syncNodes(ids);
      if (failed === undefined || failed.size === 0) return undefined;
      const byKey = new Map<string, unknown>();
      for (const [id, err] of failed) byKey.set(`n:${id}`, err);
      return byKey;
    } finally {
      for (const id of ids) this.#settled(id);
    }
  }

  async #syncJob(jobId: string): Promise<void> {
    const fresh = await this.#jobStore.getJob(jobId);
    const cached = this.#jobs.get(jobId);
    const placed = fresh !== undefined && this.#isPlaced(fresh);
    let current: PlacementJob | undefined;
    if (placed) {
      current =
        cached !== undefined && cached.job.version === fresh.version
          ? { job: fresh, selector: cached.selector }
          : placementJob(fresh);
      this.#putJob(jobId, current);
      if (current.selector === undefined && cached?.job.version !== fresh.version)
        this.#log.warn("a placed job has a selector that cannot be compiled; it matches no node", {
          job: jobId,
        });
    } else this.#jobs.delete(jobId);

    const placedChanged = placed !== (cached !== undefined);
    const relevant = placedChanged || (placed && cached?.job.version !== fresh?.version);
    if (relevant) {
      const targets = new Set(this.#holders.get(jobId) ?? NOTHING);
      // With rollouts, a new version changes nothing until a deployment assigns it (the runtime
      // queues those nodes); holders are synced in case the selector no longer matches them. A
      // job that starts being placed runs on the nodes its versions map names (none, for a new
      // job: its deployment assigns them), not on every node it matches.
      if (current?.selector !== undefined && this.#versions === undefined)
        for (const id of this.#registry.select(current.selector)) targets.add(id);
      else if (current?.selector !== undefined && placedChanged) {
        const versions = this.#versions as PlacementVersionSource;
        await versions.ensure(jobId);
        for (const id of this.#registry.select(current.selector))
          if (versions.versionOf(jobId, id) !== undefined) targets.add(id);
      }
      for (const nodeId of targets) this.#settle(jobId, nodeId);
    }
    if (this.#versions !== undefined) return;
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

  /** Whether placement may write now (the leader gate). */
  #leads(): boolean {
    return this.#gate === undefined || this.#gate.isActive();
  }

  /**
   * Syncs a batch of nodes: loads what their computations need (rollouts: job versions, old
   * specs), computes every node's set, writes the changed ones in one `putMany` (each
   * check-and-set on the revision this controller holds), and pushes each written one (after
   * it is stored). Returns the nodes that failed (they are retried with backoff).
   */
  async #syncNodes(ids: readonly string[]): Promise<Map<string, unknown> | undefined> {
    if (!this.#leads()) return undefined;
    const nodes: PlacementView[] = [];
    for (const id of ids) {
      const node = this.#registry.placementView(id);
      if (node !== undefined) nodes.push(node);
    }
    const jobLists = this.#versions === undefined ? undefined : await this.#jobsFor(nodes);
    const failed = new Map<string, unknown>();
    const writes: PendingWrite[] = [];
    const now = this.#clock.now();
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i] as PlacementView;
      try {
        const write = this.#plan(node, jobLists?.[i], now);
        if (write !== undefined) writes.push(write);
      } catch (err) {
        failed.set(node.id, err);
      }
    }
    // The lease may have gone while this batch loaded what it needed.
    if (writes.length === 0 || !this.#leads()) return failed;
    let results: PutDesiredResult[];
    try {
      results = await this.#desiredStore.putMany(writes.map((w) => w.cmd));
    } catch (err) {
      for (const w of writes) failed.set(w.cmd.nodeId, err);
      return failed;
    }
    const conflicts: string[] = [];
    for (let i = 0; i < writes.length; i++) {
      const w = writes[i] as PendingWrite;
      const r = results[i];
      if (r?.ok === true) {
        this.#written(w, r.record);
        continue;
      }
      const error = r?.error ?? new EdgeplaneError("internal", "the store returned no result for a write");
      failed.set(w.cmd.nodeId, error);
      if (error.code === "aborted") conflicts.push(w.cmd.nodeId);
    }
    // Someone else wrote (another replica, an operator tool): re-read; the retry decides again.
    if (conflicts.length > 0) await Promise.all(conflicts.map((id) => this.#reread(id)));
    return failed;
  }

  /** A node's new set, when it differs from the stored one (or the agent is ahead of it). */
  #plan(
    node: PlacementView,
    jobs: Iterable<PlacementJob> | undefined,
    now: number,
  ): PendingWrite | undefined {
    const current: Held = this.#held.get(node.id) ?? {
      revision: node.desiredRevision,
      signature: "",
      jobIds: NOTHING,
      stopped: NOTHING,
    };
    let assignments = computeAssignments(
      jobs ?? this.#jobs.values(),
      { id: node.id, labels: node.labels, state: node.state, heldJobIds: current.jobIds },
      this.#versions === undefined ? undefined : this.#lookup,
    );
    // An execution cancelled through the Executions API stays stopped while it stays in the set.
    if (current.stopped.size > 0)
      assignments = assignments.map((a) =>
        current.stopped.has(a.executionId) ? { ...a, desiredState: "stopped" as const } : a,
      );
    const signature = assignmentSignature(assignments);
    const ahead = node.appliedRevision > current.revision;
    if (signature === current.signature && !ahead) return undefined;
    return {
      before: current.jobIds,
      signature,
      cmd: {
        nodeId: node.id,
        assignments,
        now,
        expectedRevision: current.revision,
        minRevision: ahead ? node.appliedRevision + 1 : undefined,
      },
    };
  }

  /** A write is stored: remember it, queue the jobs that gained or lost the node, push it. */
  #written(w: PendingWrite, record: DesiredStateRecord): void {
    this.#counters.desiredWrites++;
    this.#remember(record, w.signature);
    const after = this.#held.get(record.nodeId)?.jobIds ?? NOTHING;
    // A job's state follows its holders only without rollouts (with them, the runtime decides it).
    if (after !== w.before && this.#versions === undefined) {
      for (const j of w.before) if (!after.has(j)) this.#queue.add(`j:${j}`);
      for (const j of after) if (!w.before.has(j)) this.#queue.add(`j:${j}`);
    }
    this.#registry.desiredChanged(record);
  }

  /** Re-reads a node's stored state after a lost check-and-set (errors are left to the retry). */
  async #reread(nodeId: string): Promise<void> {
    try {
      const stored = await this.#desiredStore.get(nodeId);
      if (stored === undefined) return;
      this.#remember(stored);
      // The registry holds the revision of nodes with an empty set: bring it up to date too.
      this.#registry.desiredChanged(stored);
    } catch {
      // The node's retry re-reads what it needs.
    }
  }

  /**
   * Rollouts: the jobs each node's sync looks at, loading what the computations need first (job
   * versions, old specs). With the source's reverse index only the jobs a node runs a version of
   * are looked at, once every placed job's versions are loaded.
   */
  async #jobsFor(nodes: readonly PlacementView[]): Promise<PlacementJob[][]> {
    const source = this.#versions as PlacementVersionSource;
    const lists: PlacementJob[][] = [];
    let generation: number | undefined;
    if (source.jobsOn !== undefined && source.generation !== undefined) {
      generation = source.generation;
      if (generation !== this.#sourceGeneration) {
        this.#sourceGeneration = generation;
        this.#unloaded = new Set(this.#jobs.keys());
      }
      if (this.#unloaded.size > 0) {
        for (const jobId of [...this.#unloaded]) {
          if (this.#jobs.has(jobId)) {
            const loading = source.ensure(jobId);
            if (loading !== undefined) await loading;
          }
          this.#unloaded.delete(jobId);
        }
      }
      for (const node of nodes) {
        const list: PlacementJob[] = [];
        for (const jobId of source.jobsOn(node.id)) {
          const pj = this.#jobs.get(jobId);
          if (pj !== undefined) list.push(pj);
        }
        lists.push(list);
      }
    } else {
      for (const node of nodes) {
        const list: PlacementJob[] = [];
        for (const pj of this.#jobs.values()) {
          if (pj.selector === undefined || !pj.selector.matches(node)) continue;
          const loading = source.ensure(pj.job.id);
          if (loading !== undefined) await loading;
          list.push(pj);
        }
        lists.push(list);
      }
    }
    // Versions other than the current one need their specs (kept by the job store). Checked again
    // after every load (versions may move meanwhile), so none is missing when the sets are
    // computed, right after the last check: a missing spec would drop the assignment.
    for (;;) {
      const missing = new Map<string, { jobId: string; version: number }>();
      for (let i = 0; i < nodes.length; i++) {
        const nodeId = (nodes[i] as PlacementView).id;
        for (const { job } of lists[i] as PlacementJob[]) {
          const v = source.versionOf(job.id, nodeId);
          if (v === undefined || v.version === job.version) continue;
          const key = `${job.id}:${v.version}`;
          if (!this.#specs.has(key) && !this.#goneSpecs.has(key))
            missing.set(key, { jobId: job.id, version: v.version });
        }
      }
      if (missing.size === 0) break;
      for (const { jobId, version } of missing.values()) await this.#loadSpec(jobId, version);
    }
    // Forgotten meanwhile (a new term): computing now could drop assignments; retry instead.
    if (generation !== undefined && source.generation !== generation)
      throw new EdgeplaneError("aborted", "the version source was reset during a node sync");
    return lists;
  }

  /** Rollouts: the version of a job a node runs (what the source says, with that version's spec). */
  readonly #lookup: VersionLookup = (job, nodeId) => {
    const v = (this.#versions as PlacementVersionSource).versionOf(job.id, nodeId);
    if (v === undefined) return undefined;
    const spec = v.version === job.version ? job.spec : this.#specs.get(`${job.id}:${v.version}`);
    return spec === undefined ? undefined : { version: v.version, spec, deploymentId: v.deploymentId };
  };

  async #loadSpec(jobId: string, version: number): Promise<void> {
    const key = `${jobId}:${version}`;
    if (this.#specs.has(key)) return;
    const found = await this.#jobStore.getVersion?.(jobId, version);
    if (found === undefined) {
      if (!this.#goneSpecs.has(key))
        this.#log.warn("a node is assigned a job version the job store no longer keeps; it is not placed", {
          job: jobId,
          version,
        });
      this.#goneSpecs.add(key);
      return;
    }
    this.#goneSpecs.delete(key);
    this.#specs.set(key, found.spec);
  }

  // ── Bookkeeping ────────────────────────────────────────────────────────────────────────────

  /** Records a stored desired state: the held set and the reverse index. */
  #remember(record: DesiredStateRecord, signature = assignmentSignature(record.assignments)): void {
    const nodeId = record.nodeId;
    const before = this.#held.get(nodeId)?.jobIds ?? NOTHING;
    let jobIds: ReadonlySet<string> = NOTHING;
    let stopped: Set<string> | undefined;
    if (record.assignments.length > 0) {
      const ids = new Set<string>();
      for (const a of record.assignments) {
        ids.add(a.jobId);
        if (a.desiredState !== "stopped") continue;
        stopped ??= new Set();
        stopped.add(a.executionId);
      }
      // The same jobs as before (a new version, say): keep the set, and the index as it is.
      jobIds = sameSet(ids, before) ? before : ids;
    }
    if (jobIds !== before) {
      for (const j of before) {
        if (jobIds.has(j)) continue;
        const set = this.#holders.get(j);
        set?.delete(nodeId);
        if (set?.size === 0) this.#holders.delete(j);
      }
      for (const j of jobIds) {
        if (before.has(j)) continue;
        let set = this.#holders.get(j);
        if (set === undefined) {
          set = new Set<string>();
          this.#holders.set(j, set);
        }
        set.add(nodeId);
      }
    }
    if (jobIds.size === 0) this.#held.delete(nodeId);
    else
      this.#held.set(nodeId, { revision: record.revision, signature, jobIds, stopped: stopped ?? NOTHING });
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
