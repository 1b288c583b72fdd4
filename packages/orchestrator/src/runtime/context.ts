/**
 * What the loader, the applier and the job sync share within one leadership term: the stores,
 * the registry, the leader's caches (records it wrote, immutable job version specs, the active
 * deployments of each job) and the fence every orchestrator write carries.
 */
import { type Clock, EdgeplaneError, type Logger } from "@edgeplane/core";
import type {
  DeploymentStore,
  Fence,
  JobRecord,
  JobStore,
  JobVersionRecord,
  StatusUpdate,
  WriteGuard,
} from "@edgeplane/store";
import type { NodeRegistry } from "../node-registry.js";
import { isActiveDeployment } from "../rollout/states.js";
import type { DeploymentRecord } from "../rollout/types.js";
import { recordOf } from "./records.js";
import type { VersionCache } from "./versions.js";

/** What the runtime needs from the job store. */
export type RuntimeJobStore = Pick<
  JobStore,
  "getJob" | "getVersion" | "listVersions" | "putJob" | "updateStatus" | "readEvents" | "listJobs"
>;

/** What the runtime needs from the node registry. */
export type RuntimeRegistry = Pick<
  NodeRegistry,
  "select" | "observe" | "stateOf" | "placementView" | "onNodeChange" | "onExecutionChange"
>;

/** What the runtime tells placement. */
export interface RuntimePlacement {
  /** These nodes' versions changed: recompute and push their desired states. */
  nodesChanged(nodeIds: Iterable<string>): void;
  /** Placement must know the job at least at this version before it recomputes its nodes. */
  ensureJob?(jobId: string, version: number): Promise<void>;
  /** Recompute every node (a new leadership term). */
  resync(): Promise<void> | void;
}

/** `failed_precondition`: this control plane is not the leader (any more). */
export function notLeader(): EdgeplaneError {
  return new EdgeplaneError("failed_precondition", "this control plane is not the leader; not acting", {
    metadata: { fenced: true },
  });
}

/** The shared state of one runtime. */
export class RuntimeContext {
  readonly jobStore: RuntimeJobStore;
  readonly deployments: DeploymentStore;
  readonly versions: VersionCache;
  readonly registry: RuntimeRegistry;
  readonly clock: Clock;
  readonly log: Logger;
  readonly maxVersions: number;
  placement: RuntimePlacement | undefined;
  /** The current term's epoch. */
  epoch = 0;
  /** When the current term began (ms). */
  termStartedAt = 0;
  /** Records as this leader last wrote or read them (revision included). */
  readonly records = new Map<string, DeploymentRecord>();
  /** Active deployment ids per job. */
  readonly activeByJob = new Map<string, Set<string>>();
  /** Targets of active deployments. */
  readonly targetsOf = new Map<string, ReadonlySet<string>>();
  readonly #specs = new Map<string, JobVersionRecord>();
  /**
   * Jobs as this leader last read or wrote them. A deployment sync reads its job from here
   * instead of Redis: the runtime's own writes keep it current, and the change-stream poll drops
   * an entry another writer (the API: stop, delete, a new version) moved past it, so a sync sees
   * such a change within one poll period, as it would see it through the stream anyway.
   */
  readonly #jobs = new Map<string, JobRecord>();
  /**
   * The revision of each job this runtime wrote last. Its change-stream event needs no job sync:
   * whatever must follow the runtime's own write (a deployment that ended, a rollback) queues
   * itself; only other writers' changes (the API) do.
   */
  readonly #ownRevisions = new Map<string, number>();
  readonly #leader: () => boolean;
  readonly #enqueue: (key: string, afterMs?: number) => void;
  readonly counters = {
    deploymentSyncs: 0,
    jobSyncs: 0,
    deploymentWrites: 0,
    versionWrites: 0,
    jobWrites: 0,
    deploymentsCreated: 0,
    fenced: 0,
    conflicts: 0,
    errors: 0,
  };

  constructor(options: {
    jobStore: RuntimeJobStore;
    deployments: DeploymentStore;
    versions: VersionCache;
    registry: RuntimeRegistry;
    clock: Clock;
    log: Logger;
    maxVersions: number;
    leader: () => boolean;
    enqueue: (key: string, afterMs?: number) => void;
  }) {
    this.jobStore = options.jobStore;
    this.deployments = options.deployments;
    this.versions = options.versions;
    this.registry = options.registry;
    this.clock = options.clock;
    this.log = options.log;
    this.maxVersions = options.maxVersions;
    this.#leader = options.leader;
    this.#enqueue = options.enqueue;
  }

  /** Whether this control plane may act now. */
  isLeader(): boolean {
    return this.#leader();
  }

  /** The fence of the current term; throws (not the leader) when it may not act. */
  fence(): Fence {
    if (!this.#leader() || this.epoch === 0) throw notLeader();
    return { epoch: this.epoch };
  }

  /** Queues a key (`d:<deployment>` or `j:<job>`), now or after `afterMs`. */
  enqueue(key: string, afterMs?: number): void {
    this.#enqueue(key, afterMs);
  }

  /** Tells placement these nodes' versions of `jobId` changed (after it knows the job's `version`). */
  async placeNodes(jobId: string, version: number, nodeIds: readonly string[]): Promise<void> {
    if (nodeIds.length === 0 || this.placement === undefined) return;
    await this.placement.ensureJob?.(jobId, version);
    this.placement.nodesChanged(nodeIds);
  }

  /** A new term: forgets the caches. */
  resetTerm(epoch: number, now: number): void {
    this.epoch = epoch;
    this.termStartedAt = now;
    this.records.clear();
    this.#jobs.clear();
    this.#ownRevisions.clear();
    this.activeByJob.clear();
    this.targetsOf.clear();
    this.versions.reset();
  }

  /** A deployment record (cached, else read). */
  async record(id: string): Promise<DeploymentRecord | undefined> {
    const cached = this.records.get(id);
    if (cached !== undefined) return cached;
    const stored = await this.deployments.get(id);
    if (stored === undefined) return undefined;
    const record = recordOf(stored);
    this.remember(record);
    return record;
  }

  /** Caches a record and keeps the active indexes in step with it. */
  remember(d: DeploymentRecord): void {
    this.records.set(d.id, d);
    const active = isActiveDeployment(d.state);
    let set = this.activeByJob.get(d.jobId);
    if (active) {
      if (set === undefined) {
        set = new Set();
        this.activeByJob.set(d.jobId, set);
      }
      set.add(d.id);
      if (!this.targetsOf.has(d.id)) this.targetsOf.set(d.id, new Set(d.targets));
    } else {
      set?.delete(d.id);
      if (set?.size === 0) this.activeByJob.delete(d.jobId);
      this.targetsOf.delete(d.id);
    }
  }

  /** The job, from the cache (see `#jobs`) or read (and cached); undefined when unknown. */
  async job(id: string): Promise<JobRecord | undefined> {
    return this.#jobs.get(id) ?? this.freshJob(id);
  }

  /** The job read from the store now (and cached). */
  async freshJob(id: string): Promise<JobRecord | undefined> {
    const job = await this.jobStore.getJob(id);
    if (job === undefined) this.#jobs.delete(id);
    else this.rememberJob(job);
    return job;
  }

  /** Caches a job as read or written (an older revision never replaces a newer one). */
  rememberJob(job: JobRecord): void {
    const cached = this.#jobs.get(job.id);
    if (cached !== undefined && cached.revision > job.revision) return;
    if (cached === undefined && this.#jobs.size >= 20_000) this.#jobs.clear();
    this.#jobs.set(job.id, job);
  }

  /** Records that this runtime wrote `job` (see `#ownRevisions`) and caches it. */
  wroteJob(job: JobRecord): void {
    if (this.#ownRevisions.size >= 100_000) this.#ownRevisions.clear();
    this.#ownRevisions.set(job.id, job.revision);
    this.rememberJob(job);
  }

  /** Whether the change-stream event of job `id` at `revision` is this runtime's own write. */
  isOwnWrite(id: string, revision: number): boolean {
    return this.#ownRevisions.get(id) === revision;
  }

  /** The change stream says job `id` is at `revision`: a cached older copy is dropped. */
  jobChanged(id: string, revision: number): void {
    const cached = this.#jobs.get(id);
    if (cached !== undefined && cached.revision < revision) this.#jobs.delete(id);
  }

  /** Forgets a cached record (someone else wrote it). */
  forget(id: string): void {
    this.records.delete(id);
  }

  /** A job version (immutable once written: cached). */
  async spec(jobId: string, version: number): Promise<JobVersionRecord | undefined> {
    const key = `${jobId}:${version}`;
    const cached = this.#specs.get(key);
    if (cached !== undefined) return cached;
    const found = await this.jobStore.getVersion(jobId, version);
    if (found !== undefined) {
      if (this.#specs.size > 10_000) this.#specs.clear();
      this.#specs.set(key, found);
    }
    return found;
  }

  /**
   * A guarded job status write, re-read and retried on a revision conflict: `decide` sees the
   * job as it is and returns the update (or undefined: nothing to do). Only while the leader.
   * Resolves the written record, or undefined when nothing was written.
   */
  async writeJob(
    jobId: string,
    decide: (job: JobRecord) => Omit<StatusUpdate, "now"> | undefined,
    allowedFrom?: WriteGuard["allowedFrom"],
  ): Promise<JobRecord | undefined> {
    for (let attempt = 0; attempt < 8; attempt++) {
      // The first attempt decides on the cached job: a stale copy fails the revision guard and
      // the retry reads it fresh. "Nothing to do" is only believed of a fresh read.
      const cached = attempt === 0 ? this.#jobs.get(jobId) : undefined;
      let job = cached ?? (await this.freshJob(jobId));
      if (job === undefined || job.state === "deleted") return undefined;
      let update = decide(job);
      if (update === undefined && cached !== undefined) {
        job = await this.freshJob(jobId);
        if (job === undefined || job.state === "deleted") return undefined;
        update = decide(job);
      }
      if (update === undefined) return undefined;
      const fence = this.fence();
      try {
        const written = await this.jobStore.updateStatus(
          jobId,
          { ...update, now: this.clock.now() },
          { expectedRevision: job.revision, fence, ...(allowedFrom !== undefined ? { allowedFrom } : {}) },
        );
        this.counters.jobWrites++;
        this.wroteJob(written);
        return written;
      } catch (err) {
        const e = EdgeplaneError.from(err);
        if (e.code === "aborted") {
          this.counters.conflicts++;
          continue;
        }
        if (e.code === "failed_precondition" || e.code === "not_found") return undefined;
        throw e;
      }
    }
    throw new EdgeplaneError("aborted", `job ${jobId} kept changing; its status write is retried later`);
  }
}
