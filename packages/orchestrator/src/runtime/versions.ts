/**
 * The leader's copy of the versions-per-node map (which job version each node runs), loaded per
 * job from the {@link NodeVersionStore} once per leadership term and kept in step with every
 * write this leader makes (it is the only writer: the writes are fenced). Placement reads it
 * synchronously for every node it computes (`PlacementVersionSource`), through a reverse index
 * (node → the jobs it runs a version of), so a node sync costs what the node runs, not what the
 * fleet runs.
 *
 * Writes of one job go one at a time (a promise chain per job), so the copy applies them in the
 * order Redis did.
 */
import type { Fence, NodeVersion, NodeVersionStore } from "@edgeplane/store";
import type { PlacementVersionSource } from "../placement-controller.js";

const NONE: ReadonlySet<string> = new Set();

/** The versions-per-node map, cached per job. */
export class VersionCache implements PlacementVersionSource {
  readonly #store: NodeVersionStore;
  readonly #maps = new Map<string, Map<string, NodeVersion>>();
  /** node → jobs it has a version of (in loaded maps). */
  readonly #byNode = new Map<string, Set<string>>();
  readonly #loading = new Map<string, Promise<void>>();
  readonly #chains = new Map<string, Promise<unknown>>();
  #term = 0;

  constructor(store: NodeVersionStore) {
    this.#store = store;
  }

  /** Bumps on every {@link reset}: what was loaded before is gone. */
  get generation(): number {
    return this.#term;
  }

  /** Forgets everything (a new leadership term reloads from the store). */
  reset(): void {
    this.#term++;
    this.#maps.clear();
    this.#byNode.clear();
    this.#loading.clear();
  }

  /** Whether a job's map is loaded. */
  isLoaded(jobId: string): boolean {
    return this.#maps.has(jobId);
  }

  /** Loads a job's map unless loaded; `undefined` when it is loaded already. */
  ensure(jobId: string): Promise<void> | undefined {
    if (this.#maps.has(jobId)) return undefined;
    let p = this.#loading.get(jobId);
    if (p === undefined) {
      const term = this.#term;
      p = this.#store.load(jobId).then(
        (m) => {
          if (term === this.#term && !this.#maps.has(jobId)) {
            this.#maps.set(jobId, m);
            for (const [node, v] of m) if (v.version > 0) this.#index(node, jobId, true);
          }
          this.#loading.delete(jobId);
        },
        (err: unknown) => {
          this.#loading.delete(jobId);
          throw err;
        },
      );
      this.#loading.set(jobId, p);
    }
    return p;
  }

  /** The map of a job (loading it first if needed). */
  async map(jobId: string): Promise<ReadonlyMap<string, NodeVersion>> {
    await this.ensure(jobId);
    return this.#maps.get(jobId) ?? new Map();
  }

  /** The version a node runs (after `ensure`). */
  versionOf(jobId: string, nodeId: string): NodeVersion | undefined {
    const v = this.#maps.get(jobId)?.get(nodeId);
    return v === undefined || v.version === 0 ? undefined : v;
  }

  /** The loaded jobs a node runs a version of. */
  jobsOn(nodeId: string): ReadonlySet<string> {
    return this.#byNode.get(nodeId) ?? NONE;
  }

  /** Assigns `version` to nodes (store first, then the copy); returns the nodes that changed. */
  assign(
    jobId: string,
    version: number,
    deploymentId: string,
    nodeIds: readonly string[],
    fence: Fence,
  ): Promise<string[]> {
    return this.assignBy(jobId, version, deploymentId, () =>
      this.#store.assign({ jobId, version, deploymentId, nodeIds, fence }),
    );
  }

  /**
   * Assigns `version` by `deploymentId` through `write`, a store write that does it and resolves
   * the nodes that changed (a deployment update assigning in the same script), in this job's write
   * order; then the copy. Returns the nodes that changed.
   */
  assignBy(
    jobId: string,
    version: number,
    deploymentId: string,
    write: () => Promise<readonly string[]>,
  ): Promise<string[]> {
    return this.#serial(jobId, async () => {
      await this.ensure(jobId);
      const changed = [...(await write())];
      const m = this.#maps.get(jobId);
      if (m !== undefined) {
        for (const id of changed) {
          const cur = m.get(id);
          m.set(id, {
            version,
            deploymentId,
            previousVersion: cur?.version ?? 0,
            previousDeploymentId: cur?.deploymentId ?? "",
          });
          this.#index(id, jobId, true);
        }
      }
      return changed;
    });
  }

  /** Withdraws `version` where nodes still have it; returns the nodes that changed. */
  unassign(jobId: string, version: number, nodeIds: readonly string[], fence: Fence): Promise<string[]> {
    return this.#serial(jobId, async () => {
      await this.ensure(jobId);
      const changed = await this.#store.unassign({ jobId, version, nodeIds, fence });
      const m = this.#maps.get(jobId);
      if (m !== undefined) {
        for (const id of changed) {
          const cur = m.get(id);
          if (cur === undefined || cur.previousVersion === 0) {
            m.delete(id);
            this.#index(id, jobId, false);
          } else
            m.set(id, {
              version: cur.previousVersion,
              deploymentId: cur.previousDeploymentId,
              previousVersion: 0,
              previousDeploymentId: "",
            });
        }
      }
      return changed;
    });
  }

  /** Drops a deleted job's map. */
  drop(jobId: string, fence: Fence): Promise<void> {
    return this.#serial(jobId, async () => {
      await this.#store.drop(jobId, fence);
      this.#forgetJob(jobId);
    });
  }

  #index(nodeId: string, jobId: string, has: boolean): void {
    let set = this.#byNode.get(nodeId);
    if (has) {
      if (set === undefined) {
        set = new Set();
        this.#byNode.set(nodeId, set);
      }
      set.add(jobId);
    } else if (set !== undefined) {
      set.delete(jobId);
      if (set.size === 0) this.#byNode.delete(nodeId);
    }
  }

  #forgetJob(jobId: string): void {
    const m = this.#maps.get(jobId);
    if (m === undefined) return;
    for (const node of m.keys()) this.#index(node, jobId, false);
    this.#maps.delete(jobId);
  }

  #serial<T>(jobId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#chains.get(jobId) ?? Promise.resolve();
    const guarded = async (): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        // A write may have partly applied (chunks): reload the map rather than guess.
        this.#forgetJob(jobId);
        throw err;
      }
    };
    const next = prev.then(guarded, guarded);
    const tail = next.catch(() => undefined);
    this.#chains.set(jobId, tail);
    void tail.then(() => {
      if (this.#chains.get(jobId) === tail) this.#chains.delete(jobId);
    });
    return next;
  }
}
