/**
 * The leader lease, from the orchestrator's side: one elector per control plane tries to take or
 * renew the lease every tick. It acts only while it holds the lease *and* its last successful
 * renewal is recent enough, so a control plane that loses the lease (Redis unreachable, another
 * replica took it, the process was paused) stops acting within one tick; its late writes carry
 * an old epoch, which the stores refuse (fencing).
 *
 * Worked example (ttl 10 s, tick 2 s): renewed at 12:00:00.0 → acts until 12:00:08.0 at the
 * latest (ttl − tick), renewed again at 12:00:02.0, and so on. Paused (SIGSTOP) at 12:00:03:
 * resumed at 12:00:20, it no longer acts (20 > 02 + 8) before its next tick even runs; meanwhile
 * another replica took the lease at 12:00:12 (expiry) with epoch + 1.
 */
import { type Clock, createLogger, EdgeplaneError, type Logger, systemClock } from "@edgeplane/core";
import type { LeaderLease } from "@edgeplane/store";

/** Options of {@link LeaderElector}. */
export interface LeaderElectorOptions {
  readonly lease: LeaderLease;
  /** Who this control plane is (unique per process). */
  readonly holder: string;
  /** Lease time to live; default 10 s. */
  readonly ttlMs?: number;
  /** How often the lease is renewed or tried; default ttl / 5. */
  readonly tickMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** A change of leadership: `epoch` is set when this control plane became the leader. */
export type LeadershipListener = (leading: boolean, epoch: number) => void;

/** Takes, renews and gives up the leader lease. */
export class LeaderElector {
  readonly #lease: LeaderLease;
  readonly #holder: string;
  readonly #ttlMs: number;
  readonly #tickMs: number;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #listeners = new Set<LeadershipListener>();
  #epoch = 0;
  #leading = false;
  /** When the last successful renewal started (ms): the lease is ours until + ttl at least. */
  #renewedAt = Number.NEGATIVE_INFINITY;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #ticking: Promise<void> | undefined;
  #stopped = false;
  #failing = false;

  constructor(options: LeaderElectorOptions) {
    this.#lease = options.lease;
    this.#holder = options.holder;
    this.#ttlMs = options.ttlMs ?? 10_000;
    this.#tickMs = options.tickMs ?? Math.max(10, Math.floor(this.#ttlMs / 5));
    if (this.#tickMs * 2 >= this.#ttlMs)
      throw new EdgeplaneError("invalid_argument", "leader tick must be shorter than half the lease ttl");
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? createLogger({ component: "leader" });
  }

  /** This control plane's holder id. */
  get holder(): string {
    return this.#holder;
  }

  /** The epoch of the current term (0 before the first). */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * Whether this control plane may act now: it holds the lease and renewed it less than
   * `ttl − tick` ago (so it stops before the lease can expire under it).
   */
  isLeader(): boolean {
    if (!this.#leading) return false;
    if (this.#clock.now() - this.#renewedAt < this.#ttlMs - this.#tickMs) return true;
    this.#lose("the lease was not renewed in time (paused or cut off)");
    return false;
  }

  /** Calls `listener` on every change of leadership; returns the function that removes it. */
  onChange(listener: LeadershipListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Tries at once, then every tick. */
  async start(): Promise<void> {
    await this.tick();
    this.#schedule();
  }

  /** Stops trying; releases the lease if held (the next leader starts at once). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#ticking;
    const epoch = this.#epoch;
    const held = this.#leading;
    this.#lose("stopping");
    if (held) await this.#lease.release(this.#holder, epoch).catch(() => undefined);
  }

  /** One attempt to take or renew the lease (the timer calls it every tick). */
  tick(): Promise<void> {
    this.#ticking ??= this.#tick().finally(() => {
      this.#ticking = undefined;
    });
    return this.#ticking;
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    const started = this.#clock.now();
    try {
      const outcome = await this.#lease.acquire(this.#holder, this.#ttlMs);
      if (this.#failing) this.#log.info("reaching the lease again");
      this.#failing = false;
      if (this.#stopped) return;
      if (!outcome.held) {
        this.#lose(`the lease is held by ${outcome.holder.holder} (epoch ${outcome.holder.epoch})`);
        return;
      }
      const renewedInTime = this.#leading && outcome.epoch === this.#epoch && !outcome.fresh;
      this.#renewedAt = started;
      if (renewedInTime) return;
      if (this.#leading) this.#lose("the lease was lost and taken again");
      this.#epoch = outcome.epoch;
      this.#leading = true;
      this.#log.info("became the leader", { holder: this.#holder, epoch: outcome.epoch });
      this.#emit(true);
    } catch (err) {
      if (!this.#failing) this.#log.warn("cannot reach the lease; not acting until it is back", { err });
      this.#failing = true;
      this.#lose("the lease cannot be reached");
    }
  }

  #lose(why: string): void {
    if (!this.#leading) return;
    this.#leading = false;
    this.#log.warn("stopped acting as the leader", { holder: this.#holder, epoch: this.#epoch, why });
    this.#emit(false);
  }

  #emit(leading: boolean): void {
    for (const l of this.#listeners) {
      try {
        l(leading, this.#epoch);
      } catch (err) {
        this.#log.error("a leadership listener failed", { err });
      }
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.tick().finally(() => this.#schedule());
    }, this.#tickMs);
    this.#timer.unref?.();
  }
}
