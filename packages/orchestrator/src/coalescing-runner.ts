/**
 * Runs a task on demand, never two at once: a request while it runs gets one more run after it
 * (what asks may have changed after the running one started reading), and every request made
 * during the same run shares that one. The rollout runtime and placement read their change
 * streams this way (on their timers, and whenever the API wrote a job), and the node registry
 * writes its batches of changed nodes.
 */
export class CoalescingRunner {
  readonly #task: () => Promise<void>;
  #running: Promise<void> | undefined;
  #again: Promise<void> | undefined;
  #stopped = false;

  constructor(task: () => Promise<void>) {
    this.#task = task;
  }

  /** The run in progress, if any. */
  get running(): Promise<void> | undefined {
    return this.#running;
  }

  /** Runs now, or once more after the run in progress; resolves when that run is done. */
  run(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#running !== undefined) {
      // After the running one, however it ended (its caller sees its failure).
      this.#again ??= this.#running
        .catch(() => undefined)
        .then(() => {
          this.#again = undefined;
          return this.run();
        });
      return this.#again;
    }
    this.#running = this.#task().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** No more runs; resolves once the ones started are done (their failures are theirs). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running?.catch(() => undefined);
    await this.#again?.catch(() => undefined);
  }
}
