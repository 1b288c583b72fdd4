/**
 * Wakes log followers. The store is the truth (a follower always re-reads it); the feed only says
 * "look now" when this process appended lines or saw the execution change, so a follower does not
 * wait for its poll. Lines appended by another replica are found by the poll (`followPollMs`).
 */

/** Wake-ups per execution id. */
export class LogFeed {
  readonly #waiters = new Map<string, Set<() => void>>();
  #closed = false;
  readonly #onClose = new Set<() => void>();

  /** Something changed for this execution: wake its followers. */
  notify(executionId: string): void {
    const set = this.#waiters.get(executionId);
    if (set === undefined) return;
    this.#waiters.delete(executionId);
    for (const wake of set) wake();
  }

  /** Whether the feed was closed (the service stops: followers end). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Followers waiting now (tests, metrics). */
  get waiting(): number {
    let n = 0;
    for (const s of this.#waiters.values()) n += s.size;
    return n;
  }

  /**
   * Resolves on a notify for `executionId`, after `timeoutMs`, when `signal` aborts, or when the
   * feed closes; never rejects.
   */
  wait(executionId: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#closed || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      let set = this.#waiters.get(executionId);
      if (set === undefined) {
        set = new Set();
        this.#waiters.set(executionId, set);
      }
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        this.#onClose.delete(done);
        const s = this.#waiters.get(executionId);
        s?.delete(done);
        if (s?.size === 0) this.#waiters.delete(executionId);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      set.add(done);
      this.#onClose.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /** Wakes every follower for good (they see `closed` and end). */
  close(): void {
    this.#closed = true;
    for (const done of [...this.#onClose]) done();
  }
}
