/**
 * A key-deduplicating work queue with client-go semantics (`util/workqueue`): triggers only add
 * keys; a worker `get`s a key, syncs it by re-reading state, and calls `done`.
 *
 * - A key is queued at most once: adding a key that is already waiting is a no-op.
 * - A key being processed is never handed to a second worker: adding it while it is in flight
 *   marks it dirty, and `done` queues it again, so no change is missed and no key is synced
 *   concurrently with itself.
 * - `addAfter(key, ms)` adds later (the earliest pending time wins); `addRateLimited(key)` adds
 *   after a per-key exponential backoff (base · 2^failures, capped) that `forget(key)` resets.
 * - `shutDown()` stops accepting keys and wakes idle workers; keys already queued are still
 *   handed out, then `get()` resolves `undefined`. `drain()` waits until nothing is in flight.
 *
 * Timers are injectable, so unit tests drive `addAfter` without real time.
 */

/** The timer functions the queue uses (default: the global ones). */
export interface QueueTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** A monotonic time in ms, to compare pending delays. */
  now(): number;
}

/** Options of {@link WorkQueue}. */
export interface WorkQueueOptions {
  /** First retry delay of `addRateLimited`, doubled per failure; default 5 ms. */
  readonly baseDelayMs?: number;
  /** Cap of the retry delay; default 30 s. */
  readonly maxDelayMs?: number;
  readonly timers?: QueueTimers;
}

const globalTimers: QueueTimers = {
  setTimeout: (callback, ms) => {
    const t = setTimeout(callback, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  now: () => performance.now(),
};

/** What {@link WorkQueue.run} calls per key; a rejection retries the key with backoff. */
export type SyncHandler<K> = (key: K) => Promise<void>;

/** A key-deduplicating work queue. */
export class WorkQueue<K = string> {
  /** Keys waiting, in order; every key here is also in `#dirty`. */
  #queue: K[] = [];
  #head = 0;
  /** Keys that need processing (queued, or added again while in flight). */
  readonly #dirty = new Set<K>();
  readonly #processing = new Set<K>();
  readonly #waiting = new Map<K, { at: number; handle: unknown }>();
  readonly #failures = new Map<K, number>();
  readonly #getters: Array<(key: K | undefined) => void> = [];
  readonly #drainers: Array<() => void> = [];
  readonly #timers: QueueTimers;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  #shuttingDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.#timers = options.timers ?? globalTimers;
    this.#baseDelayMs = options.baseDelayMs ?? 5;
    this.#maxDelayMs = options.maxDelayMs ?? 30_000;
  }

  /** Keys waiting to be handed out. */
  get length(): number {
    return this.#queue.length - this.#head;
  }

  /** Keys handed out and not yet `done`. */
  get inFlight(): number {
    return this.#processing.size;
  }

  /** Keys waiting in `addAfter`/`addRateLimited` timers. */
  get delayed(): number {
    return this.#waiting.size;
  }

  /** Whether `shutDown` was called. */
  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Whether the key is queued or will be queued again when its processing ends. */
  isDirty(key: K): boolean {
    return this.#dirty.has(key);
  }

  /** Queues a key unless it is already queued; a key in flight is queued again on `done`. */
  add(key: K): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return;
    const getter = this.#getters.shift();
    if (getter !== undefined) {
      this.#dirty.delete(key);
      this.#processing.add(key);
      getter(key);
      return;
    }
    this.#queue.push(key);
  }

  /** Adds the key after `ms` (at once when `ms` <= 0); of several pending delays, the earliest wins. */
  addAfter(key: K, ms: number): void {
    if (this.#shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const at = this.#timers.now() + ms;
    const pending = this.#waiting.get(key);
    if (pending !== undefined) {
      if (pending.at <= at) return;
      this.#timers.clearTimeout(pending.handle);
    }
    const handle = this.#timers.setTimeout(() => {
      this.#waiting.delete(key);
      this.add(key);
    }, ms);
    this.#waiting.set(key, { at, handle });
  }

  /** Adds the key after its backoff (base · 2^failures, capped) and counts a failure. */
  addRateLimited(key: K): void {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    this.addAfter(key, Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** failures));
  }

  /** Forgets the key's failures (call after a successful sync). */
  forget(key: K): void {
    this.#failures.delete(key);
  }

  /** How many times in a row the key failed. */
  failures(key: K): number {
    return this.#failures.get(key) ?? 0;
  }

  /** The next key (waiting for one); `undefined` once shut down and empty. */
  get(): Promise<K | undefined> {
    if (this.length > 0) {
      const key = this.#queue[this.#head] as K;
      this.#head++;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      this.#dirty.delete(key);
      this.#processing.add(key);
      return Promise.resolve(key);
    }
    if (this.#shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#getters.push(resolve));
  }

  /**
   * Hands out, without waiting, up to `max` keys that are waiting now, from the head of the queue
   * while `accept` says yes (the first key it refuses stays, as does everything after it). Each
   * key is in flight exactly as if `get` had returned it (call `done` for every one).
   */
  takeMany(max: number, accept?: (key: K) => boolean): K[] {
    const out: K[] = [];
    while (out.length < max && this.length > 0) {
      const key = this.#queue[this.#head] as K;
      if (accept !== undefined && !accept(key)) break;
      this.#head++;
      this.#dirty.delete(key);
      this.#processing.add(key);
      out.push(key);
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return out;
  }

  /** Marks the key's processing finished; queues it again if it was added meanwhile. */
  done(key: K): void {
    if (!this.#processing.delete(key)) return;
    if (this.#dirty.has(key)) {
      this.#dirty.delete(key);
      this.add(key);
    }
    if (this.#processing.size === 0) for (const d of this.#drainers.splice(0)) d();
  }

  /** Stops accepting keys, cancels delayed adds and releases idle workers. */
  shutDown(): void {
    this.#shuttingDown = true;
    for (const { handle } of this.#waiting.values()) this.#timers.clearTimeout(handle);
    this.#waiting.clear();
    for (const g of this.#getters.splice(0)) g(undefined);
  }

  /** Resolves when no key is in flight. */
  drain(): Promise<void> {
    if (this.#processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainers.push(resolve));
  }

  /**
   * Runs `concurrency` workers until shut down: each gets a key, calls `handler`, then `forget`s
   * the key on success or `addRateLimited`s it on failure (reported to `onError`), and `done`s it.
   * Resolves when every worker has stopped.
   */
  async run(
    handler: SyncHandler<K>,
    options: { concurrency?: number; onError?: (key: K, error: unknown) => void } = {},
  ): Promise<void> {
    const worker = async (): Promise<void> => {
      for (;;) {
        const key = await this.get();
        if (key === undefined) return;
        try {
          await handler(key);
          this.forget(key);
        } catch (err) {
          options.onError?.(key, err);
          this.addRateLimited(key);
        } finally {
          this.done(key);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 1) }, worker));
  }

  /**
   * Like {@link run}, but a worker whose key is `batchable` also takes the batchable keys queued
   * right behind it (up to `maxBatch` in all, see {@link takeMany}) and hands them to `handler`
   * together; other keys go to `handler` alone. `handler` returns the keys that failed (with
   * their errors); a rejection fails every key of the call. Each key is then `forget`-ed or
   * `addRateLimited`-ed (reported to `onError`), and `done`, on its own.
   */
  async runBatched(
    handler: (keys: readonly K[]) => Promise<ReadonlyMap<K, unknown> | undefined>,
    options: {
      concurrency?: number;
      maxBatch: number;
      batchable: (key: K) => boolean;
      onError?: (key: K, error: unknown) => void;
    },
  ): Promise<void> {
    const worker = async (): Promise<void> => {
      for (;;) {
        const key = await this.get();
        if (key === undefined) return;
        const keys =
          options.maxBatch > 1 && options.batchable(key)
            ? [key, ...this.takeMany(options.maxBatch - 1, options.batchable)]
            : [key];
        let failed: ReadonlyMap<K, unknown> | undefined;
        let all: { error: unknown } | undefined;
        try {
          failed = await handler(keys);
        } catch (error) {
          all = { error };
        }
        for (const k of keys) {
          if (all !== undefined || failed?.has(k) === true) {
            options.onError?.(k, all !== undefined ? all.error : failed?.get(k));
            this.addRateLimited(k);
          } else this.forget(k);
          this.done(k);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 1) }, worker));
  }
}
