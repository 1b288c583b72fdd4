/**
 * The rollout runtime: the leader-only reconcile loop around the pure planner.
 *
 * ```
 * triggers ─────────────────────────────────────────────────────▶ WorkQueue (key-deduplicating)
 *   job change stream (poll) ─────────────▶ j:<job>                    │
 *   deployment changes (poll: controls) ──▶ d:<deployment>             │ only while the leader
 *   registry: node joins/labels/state ────▶ d:<targeting> + j:<matching placed jobs>
 *   registry: execution changes ──────────▶ d:<active deployments of the job>
 *   timers (plan.requeueAfterMs, deadlines) ▶ d:/j:                    ▼
 * sync d:<id>  record ▶ repair the versions map from it ▶ loadSnapshot ▶ plan(snapshot, now)
 *              ▶ applyPlan (guarded record write, then assign/unassign/rollback/mark_stable/
 *                job_state) ▶ clear the control ▶ requeue; a deployment that ended queues its job
 *                and the deployment it rolled back
 * sync j:<id>  jobs.ts: start deployments of new versions, end those of stopped jobs, timeouts,
 *              late nodes, queued/running
 * ```
 * Leadership (`leader.ts`): on becoming the leader the caches are dropped, every active
 * deployment and placed job is queued, and placement recomputes every node; on losing it nothing
 * more is written (syncs check the lease first, and the stores refuse the old epoch).
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { type Clock, createLogger, EdgeplaneError, type Logger, systemClock } from "@edgeplane/core";
import { type DeploymentStore, isFenced, type LeaderLease, type NodeVersionStore } from "@edgeplane/store";
import { CoalescingRunner } from "../coalescing-runner.js";
import { plan } from "../rollout/plan.js";
import { isActiveDeployment, isTerminalDeployment } from "../rollout/states.js";
import type { DeploymentRecord } from "../rollout/types.js";
import { type QueueTimers, WorkQueue } from "../work-queue.js";
import { abandon, applyPlan } from "./applier.js";
import {
  RuntimeContext,
  type RuntimeJobStore,
  type RuntimePlacement,
  type RuntimeRegistry,
} from "./context.js";
import { endReason, jobEnded, syncJob } from "./jobs.js";
import { LeaderElector } from "./leader.js";
import { loadSnapshot } from "./snapshot.js";
import type { selectorOf } from "./targets.js";
import { VersionCache } from "./versions.js";

/** Options of {@link DeploymentRuntime}. */
export interface DeploymentRuntimeOptions {
  readonly jobStore: RuntimeJobStore;
  readonly deployments: DeploymentStore;
  readonly versionStore: NodeVersionStore;
  readonly lease: LeaderLease;
  readonly registry: RuntimeRegistry;
  /** Placement to notify (or attach later with {@link DeploymentRuntime.attachPlacement}). */
  readonly placement?: RuntimePlacement;
  /** This control plane's lease holder id; default `<hostname>-<pid>-<random>`. */
  readonly holder?: string;
  /** Lease time to live; default 10 s. */
  readonly leaseTtlMs?: number;
  /** Lease renewal period; default ttl / 5. */
  readonly leaseTickMs?: number;
  /** How often the job and deployment change streams are polled; default 200 ms. */
  readonly pollIntervalMs?: number;
  /** Keys synced in parallel; default 16. */
  readonly concurrency?: number;
  /**
   * Early in a leadership term, a sync waits (up to this long after the term began) for assigned
   * targets the registry has not heard from since it started; default 10 s.
   */
  readonly settleMs?: number;
  /** Versions kept per job (the rollback writes a version); default 50. */
  readonly maxVersions?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Timers of the work queue (tests drive `addAfter` in virtual time); default the global ones. */
  readonly timers?: QueueTimers;
  /**
   * The versions cache, when placement was built before the runtime (it needs the cache; the
   * runtime needs the registry, built with placement). Default: a new one over `versionStore`.
   */
  readonly versions?: VersionCache;
  /** The lease elector, when built beforehand (placement's gate); default: a new one over `lease`. */
  readonly elector?: LeaderElector;
}

/** Counters of the runtime. */
export interface RuntimeStats {
  readonly leader: boolean;
  readonly epoch: number;
  readonly deploymentSyncs: number;
  readonly jobSyncs: number;
  readonly deploymentWrites: number;
  readonly versionWrites: number;
  readonly jobWrites: number;
  readonly deploymentsCreated: number;
  /** Writes refused by the fence (this control plane had been deposed). */
  readonly fenced: number;
  readonly conflicts: number;
  readonly errors: number;
  readonly queued: number;
  readonly activeDeployments: number;
}

const PAGE = 1000;

/** Creates a {@link DeploymentRuntime}; call `start()` (after the registry's). */
export function createDeploymentRuntime(options: DeploymentRuntimeOptions): DeploymentRuntime {
  return new DeploymentRuntime(options);
}

/** The rollout runtime (see the module header). */
export class DeploymentRuntime {
  readonly versions: VersionCache;
  readonly elector: LeaderElector;
  readonly #ctx: RuntimeContext;
  readonly #jobStore: RuntimeJobStore;
  readonly #deployments: DeploymentStore;
  readonly #registry: RuntimeRegistry;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #pollIntervalMs: number;
  readonly #concurrency: number;
  readonly #settleMs: number;
  readonly #queue: WorkQueue<string>;
  /** Placed jobs and their selectors (for late nodes). */
  readonly #placedJobs = new Map<string, ReturnType<typeof selectorOf>>();
  /** Deployments with a control to read in their next sync. */
  readonly #controls = new Set<string>();
  /**
   * Deployments whose versions map was checked against their record in this term (the repair
   * runs on the first sync of each, and again after a failed sync: from then on this leader's
   * own applier keeps the two in step).
   */
  readonly #repaired = new Set<string>();
  readonly #offs: Array<() => void> = [];
  #jobCursor = "0";
  #changeCursor = "0";
  #workers: Promise<void> | undefined;
  #pollTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #poller = new CoalescingRunner(() => this.#poll());
  #pollFailing = false;
  #bootstrapping: Promise<void> | undefined;
  #stopped = false;

  constructor(options: DeploymentRuntimeOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? createLogger({ component: "rollouts" });
    this.#jobStore = options.jobStore;
    this.#deployments = options.deployments;
    this.#registry = options.registry;
    this.#pollIntervalMs = options.pollIntervalMs ?? 200;
    this.#concurrency = options.concurrency ?? 16;
    this.#settleMs = options.settleMs ?? 10_000;
    this.#queue = new WorkQueue<string>(options.timers ? { timers: options.timers } : {});
    this.versions = options.versions ?? new VersionCache(options.versionStore);
    this.elector =
      options.elector ??
      new LeaderElector({
        lease: options.lease,
        holder: options.holder ?? `${hostname()}-${process.pid}-${randomBytes(4).toString("hex")}`,
        ttlMs: options.leaseTtlMs,
        tickMs: options.leaseTickMs,
        clock: this.#clock,
        logger: this.#log.child("leader"),
      });
    this.#ctx = new RuntimeContext({
      jobStore: options.jobStore,
      deployments: options.deployments,
      versions: this.versions,
      registry: options.registry,
      clock: this.#clock,
      log: this.#log,
      maxVersions: options.maxVersions ?? 50,
      leader: () => this.elector.isLeader(),
      enqueue: (key, afterMs) => {
        if (afterMs !== undefined && afterMs > 0) this.#queue.addAfter(key, afterMs);
        else this.#queue.add(key);
      },
    });
    this.#ctx.placement = options.placement;
    // Registered at once, so changes between construction and start() are not missed.
    this.#offs.push(
      this.#registry.onExecutionChange((_nodeId, jobId) => this.#jobTouched(jobId)),
      this.#registry.onNodeChange((nodeId, change) => this.#nodeChanged(nodeId, change)),
      this.elector.onChange((leading, epoch) => this.#leadership(leading, epoch)),
    );
  }

  /** Placement to notify of version changes (it reads {@link versions}). */
  attachPlacement(placement: RuntimePlacement): void {
    this.#ctx.placement = placement;
  }

  /** Whether this control plane acts now (holds the lease). */
  isLeader(): boolean {
    return this.elector.isLeader();
  }

  /**
   * Starts the workers and the pollers, then tries the lease (becoming the leader queues every
   * active deployment and placed job). Call after the registry's `start()`.
   */
  async start(): Promise<void> {
    this.#jobCursor = await this.#jobStreamEnd();
    this.#changeCursor = await this.#deployments.lastChange();
    this.#workers = this.#queue.run((key) => this.#sync(key), {
      concurrency: this.#concurrency,
      onError: (key, err) => {
        this.#repaired.delete(key.slice(2));
        const e = EdgeplaneError.from(err);
        if (isFenced(e)) {
          this.#ctx.counters.fenced++;
          this.#log.warn("a write was refused: this control plane is no longer the leader", {
            key,
            err: e.message,
          });
          return;
        }
        if (e.code === "aborted") this.#ctx.counters.conflicts++;
        else this.#ctx.counters.errors++;
        if (e.code !== "aborted")
          this.#log.warn("rollout sync failed; retrying with backoff", { key, err: e.message });
      },
    });
    this.#schedulePoll();
    await this.elector.start();
  }

  /** Stops acting: the lease is released, keys in flight finish, the pollers stop. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const off of this.#offs.splice(0)) off();
    if (this.#pollTimer) clearTimeout(this.#pollTimer);
    await this.#poller.stop();
    this.#queue.shutDown();
    await this.#workers;
    await this.#bootstrapping?.catch(() => undefined);
    await this.elector.stop();
  }

  /** Queues a deployment (an API control, an execution report): it syncs soon. */
  kick(deploymentId: string, withControl = false): void {
    if (withControl) this.#controls.add(deploymentId);
    this.#queue.add(`d:${deploymentId}`);
  }

  /** Queues a job (its spec or status changed outside the change stream's poll period). */
  kickJob(jobId: string): void {
    this.#queue.add(`j:${jobId}`);
  }

  /**
   * The executions side reports that an execution of `jobId` finished (or changed): the job's
   * active deployments sync (a run-once job completes when every node finished).
   */
  executionChanged(jobId: string): void {
    this.#jobTouched(jobId);
  }

  /** Polls the change streams once now (the timer does it every `pollIntervalMs`). */
  pollNow(): Promise<void> {
    return this.#poller.run();
  }

  /** Resolves once nothing is queued or in flight (delayed keys aside): for tests. */
  async idle(): Promise<void> {
    while (this.#queue.length > 0 || this.#queue.inFlight > 0 || this.#bootstrapping !== undefined) {
      await (this.#bootstrapping ?? this.#queue.drain());
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Counters. */
  stats(): RuntimeStats {
    let active = 0;
    for (const set of this.#ctx.activeByJob.values()) active += set.size;
    return {
      leader: this.elector.isLeader(),
      epoch: this.elector.epoch,
      ...this.#ctx.counters,
      queued: this.#queue.length + this.#queue.inFlight,
      activeDeployments: active,
    };
  }

  // ── Triggers ───────────────────────────────────────────────────────────────────────────────

  #jobTouched(jobId: string): void {
    const set = this.#ctx.activeByJob.get(jobId);
    if (set === undefined) return;
    for (const id of set) this.#queue.add(`d:${id}`);
  }

  #nodeChanged(nodeId: string, change: string): void {
    if (!this.elector.isLeader()) return;
    for (const [id, targets] of this.#ctx.targetsOf) if (targets.has(nodeId)) this.#queue.add(`d:${id}`);
    if (change === "revision") return;
    // Late nodes: placed jobs whose selector picks the node.
    const labels = this.#registry.placementView(nodeId)?.labels;
    if (labels === undefined) return;
    for (const [jobId, selector] of this.#placedJobs) {
      if (selector?.matches({ id: nodeId, labels })) this.#queue.add(`j:${jobId}`);
    }
  }

  #leadership(leading: boolean, epoch: number): void {
    if (!leading) return;
    this.#ctx.resetTerm(epoch, this.#clock.now());
    this.#placedJobs.clear();
    this.#repaired.clear();
    const run = this.#bootstrap(epoch).catch((err: unknown) => {
      this.#log.warn("could not load the rollouts to resume; retrying", { err });
      setTimeout(() => {
        if (this.elector.isLeader() && this.elector.epoch === epoch) this.#leadership(true, epoch);
      }, 1000).unref();
    });
    this.#bootstrapping = run.finally(() => {
      if (this.#bootstrapping === tracked) this.#bootstrapping = undefined;
    });
    const tracked = this.#bootstrapping;
  }

  /** A new term: every active deployment and placed job is synced; placement recomputes all. */
  async #bootstrap(epoch: number): Promise<void> {
    const active = await this.#deployments.listActive();
    for (const id of active) this.#queue.add(`d:${id}`);
    let cursor: Awaited<ReturnType<RuntimeJobStore["listJobs"]>>["next"];
    let jobs = 0;
    do {
      const page = await this.#jobStore.listJobs({
        namespace: "*",
        limit: PAGE,
        cursor,
        states: ["pending", "queued", "running"],
        orderBy: "created_at",
        order: "asc",
        includeDeleted: false,
      });
      for (const job of page.items) {
        this.#queue.add(`j:${job.id}`);
        jobs++;
      }
      cursor = page.next;
    } while (cursor !== undefined);
    if (this.elector.epoch !== epoch) return;
    await this.#ctx.placement?.resync();
    this.#log.info("resuming rollouts as the leader", {
      epoch,
      activeDeployments: active.length,
      placedJobs: jobs,
    });
  }

  #schedulePoll(): void {
    if (this.#stopped) return;
    this.#pollTimer = setTimeout(() => {
      void this.pollNow().finally(() => this.#schedulePoll());
    }, this.#pollIntervalMs);
    this.#pollTimer.unref?.();
  }

  async #poll(): Promise<void> {
    try {
      for (;;) {
        const events = await this.#jobStore.readEvents(this.#jobCursor, PAGE);
        for (const ev of events) {
          // The runtime's own writes queue what must follow them; other writers' need a sync.
          if (this.#ctx.isOwnWrite(ev.jobId, ev.revision)) continue;
          this.#ctx.jobChanged(ev.jobId, ev.revision);
          this.#queue.add(`j:${ev.jobId}`);
        }
        const last = events[events.length - 1];
        if (last !== undefined) this.#jobCursor = last.id;
        if (events.length < PAGE) break;
      }
      for (;;) {
        const changes = await this.#deployments.readChanges(this.#changeCursor, PAGE);
        for (const c of changes) {
          if (c.kind === "control") {
            this.#controls.add(c.deploymentId);
            this.#queue.add(`d:${c.deploymentId}`);
            continue;
          }
          const cached = this.#ctx.records.get(c.deploymentId);
          // Written by someone else (an old leader before it noticed): read it again.
          if (cached !== undefined && c.revision > cached.revision) {
            this.#ctx.forget(c.deploymentId);
            this.#queue.add(`d:${c.deploymentId}`);
          }
        }
        const last = changes[changes.length - 1];
        if (last !== undefined) this.#changeCursor = last.id;
        if (changes.length < PAGE) break;
      }
      if (this.#pollFailing) this.#log.info("reading the change streams again");
      this.#pollFailing = false;
    } catch (err) {
      if (!this.#pollFailing) this.#log.warn("cannot read the change streams; retrying", { err });
      this.#pollFailing = true;
    }
  }

  async #jobStreamEnd(): Promise<string> {
    let cursor = "0";
    for (;;) {
      const events = await this.#jobStore.readEvents(cursor, PAGE);
      const last = events[events.length - 1];
      if (last !== undefined) cursor = last.id;
      if (events.length < PAGE) return cursor;
    }
  }

  // ── Syncs ──────────────────────────────────────────────────────────────────────────────────

  async #sync(key: string): Promise<void> {
    // Not acting: a new term queues everything again.
    if (!this.elector.isLeader()) return;
    const id = key.slice(2);
    if (key.startsWith("d:")) await this.#syncDeployment(id);
    else await syncJob(this.#ctx, id, this.#placedJobs);
  }

  async #syncDeployment(id: string): Promise<void> {
    const ctx = this.#ctx;
    ctx.counters.deploymentSyncs++;
    let control: string | undefined;
    let controlReason: string | undefined;
    if (this.#controls.has(id)) {
      this.#controls.delete(id);
      const summary = await this.#deployments.getSummary(id);
      control = summary?.control;
      controlReason = summary?.controlReason;
    }
    let d = await ctx.record(id);
    if (d === undefined) return;
    if (control === undefined && isTerminalDeployment(d.state) && d.state !== "failed") return;
    const job = await ctx.job(d.jobId);
    // The job stopped, was deleted, or failed on a timeout: its active deployment ends (never
    // planned further: a failure would roll back and so restart a job a person stopped).
    if (isActiveDeployment(d.state) && jobEnded(job, d)) {
      if (control !== undefined) await this.#deployments.clearControl(id, control);
      await abandon(ctx, d, endReason(job));
      ctx.enqueue(`j:${d.jobId}`);
      return;
    }
    if (!this.#repaired.has(id)) {
      await this.#repairVersions(d, job?.deploymentId);
      this.#repaired.add(id);
    }
    const loaded = await loadSnapshot(ctx, d, job, { settleMs: this.#settleMs, control, controlReason });
    if (loaded.postpone) {
      if (control !== undefined) this.#controls.add(id);
      ctx.enqueue(`d:${id}`, 250);
      return;
    }
    const before = d;
    const p = plan(loaded.snapshot, this.#clock.now());
    d = await applyPlan(ctx, before, p);
    if (control !== undefined) {
      await this.#deployments.clearControl(id, control);
      if (p.rejected) this.#log.info("a control was refused", { deployment: id, ...p.rejected });
    }
    if (p.requeueAfterMs !== undefined) ctx.enqueue(`d:${id}`, Math.max(1, p.requeueAfterMs));
    if (isTerminalDeployment(d.state) && !isTerminalDeployment(before.state)) {
      ctx.enqueue(`j:${d.jobId}`);
      if (d.rollbackOfDeploymentId !== undefined) ctx.enqueue(`d:${d.rollbackOfDeploymentId}`);
      this.#log.info("deployment ended", { deployment: id, state: d.state, message: d.message });
    }
  }

  /**
   * Level-triggered repair of the versions map from the record (a leader that died between
   * writing a record and its `assign`/`unassign` left them out of step): nodes the record says
   * were assigned the version get it; nodes whose assignment was withdrawn lose it.
   */
  async #repairVersions(d: DeploymentRecord, activeOfJob: string | undefined): Promise<void> {
    if (!isActiveDeployment(d.state) && d.state !== "failed") return;
    const ctx = this.#ctx;
    await ctx.versions.ensure(d.jobId);
    const owner = activeOfJob === d.id && d.state !== "rolling_back" && isActiveDeployment(d.state);
    const assign: string[] = [];
    const withdraw: string[] = [];
    for (let i = 0; i < d.targets.length; i++) {
      const id = d.targets[i] as string;
      const node = d.nodes[i];
      if (node === undefined || node.assignedAt === undefined) continue;
      const has = ctx.versions.versionOf(d.jobId, id)?.version === d.jobVersion;
      if (node.withdrawnAt !== undefined) {
        if (has) withdraw.push(id);
      } else if (owner && !has) assign.push(id);
    }
    if (assign.length > 0) {
      const changed = await ctx.versions.assign(d.jobId, d.jobVersion, d.id, assign, ctx.fence());
      await ctx.placeNodes(d.jobId, d.jobVersion, changed);
      this.#log.info("repaired assignments the record holds", { deployment: d.id, nodes: changed.length });
    }
    if (withdraw.length > 0) {
      const changed = await ctx.versions.unassign(d.jobId, d.jobVersion, withdraw, ctx.fence());
      await ctx.placeNodes(d.jobId, d.jobVersion, changed);
    }
  }
}
