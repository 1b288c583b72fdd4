/**
 * One poller of the deployment change stream per control plane, shared by every watcher
 * (`WatchDeployment`, `edgectl deployment watch`): it runs only while someone watches, and wakes
 * the watchers of the deployments that changed. Any replica serves watches, whoever leads.
 */
import { createLogger, type Logger } from "@edgeplane/core";
import type { DeploymentStore } from "@edgeplane/store";

/** A shared poller of the deployment change stream. */
export class DeploymentFeed {
  readonly #store: Pick<DeploymentStore, "readChanges" | "lastChange">;
  readonly #intervalMs: number;
  readonly #log: Logger;
  readonly #watchers = new Map<string, Set<() => void>>();
  #cursor: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #failing = false;
  #stopped = false;

  constructor(
    store: Pick<DeploymentStore, "readChanges" | "lastChange">,
    options: { intervalMs?: number; logger?: Logger } = {},
  ) {
    this.#store = store;
    this.#intervalMs = options.intervalMs ?? 150;
    this.#log = options.logger ?? createLogger({ component: "deployment-feed" });
  }

  /** Calls `wake` whenever deployment `id` changes; returns the function that stops it. */
  subscribe(id: string, wake: () => void): () => void {
    let set = this.#watchers.get(id);
    if (set === undefined) {
      set = new Set();
      this.#watchers.set(id, set);
    }
    set.add(wake);
    if (this.#timer === undefined && !this.#stopped) this.#schedule();
    return () => {
      set.delete(wake);
      if (set.size === 0) this.#watchers.delete(id);
    };
  }

  /** Stops polling; watchers are not woken any more. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#timer = setTimeout(() => void this.#poll(), this.#intervalMs);
    this.#timer.unref?.();
  }

  async #poll(): Promise<void> {
    try {
      if (this.#cursor === undefined) {
        // Starting: whatever changed before the cursor was set is covered by waking everyone.
        this.#cursor = await this.#store.lastChange();
        for (const set of this.#watchers.values()) for (const wake of set) wake();
      }
      for (;;) {
        const changes = await this.#store.readChanges(this.#cursor, 1000);
        for (const c of changes) for (const wake of this.#watchers.get(c.deploymentId) ?? []) wake();
        const last = changes[changes.length - 1];
        if (last !== undefined) this.#cursor = last.id;
        if (changes.length < 1000) break;
      }
      this.#failing = false;
    } catch (err) {
      if (!this.#failing) this.#log.warn("cannot read the deployment change stream; retrying", { err });
      this.#failing = true;
    }
    if (this.#watchers.size === 0) {
      // Nobody watches: stop, and start again from the stream's end next time.
      this.#timer = undefined;
      this.#cursor = undefined;
      return;
    }
    if (!this.#stopped) this.#schedule();
  }
}
