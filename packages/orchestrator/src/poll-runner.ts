/**
 * Runs a poll on demand, never two at once: a request while a poll runs gets one more poll after
 * it (the write that asks may come after the running poll's read), and every request made during
 * the same run shares that one. The rollout runtime and placement read their change streams this
 * way, on their timers and whenever the API wrote a job.
 */
export class PollRunner {
  readonly #poll: () => Promise<void>;
  #running: Promise<void> | undefined;
  #again: Promise<void> | undefined;
  #stopped = false;

  constructor(poll: () => Promise<void>) {
    this.#poll = poll;
  }

  /** The poll in progress, if any. */
  get running(): Promise<void> | undefined {
    return this.#running;
  }

  /** Polls now, or once more after the poll in progress; resolves when that poll is done. */
  run(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#running !== undefined) {
      // After the running poll, however it ended (its caller sees its failure).
      this.#again ??= this.#running
        .catch(() => undefined)
        .then(() => {
          this.#again = undefined;
          return this.run();
        });
      return this.#again;
    }
    this.#running = this.#poll().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** No more polls; resolves once the ones started are done (their failures are theirs). */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running?.catch(() => undefined);
    await this.#again?.catch(() => undefined);
  }
}
