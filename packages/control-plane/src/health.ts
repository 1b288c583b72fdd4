/**
 * Liveness and readiness of the control plane.
 *
 * Liveness (`/healthz`, gRPC health service "") says the process serves requests. Readiness
 * (`/readyz`, gRPC health service "edgeplane.v1") says its dependencies answer: every registered
 * probe (Redis PING, NATS connection) passed within its timeout. A draining server reports
 * NOT_SERVING on both, so load balancers stop sending before it closes.
 */

/** A dependency check: resolves when healthy, rejects (with a reason) otherwise. */
export type ReadinessProbe = (signal: AbortSignal) => Promise<void>;

/** The result of one readiness check. */
export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: Record<string, { ok: boolean; error?: string; ms: number }>;
}

/** Serving states, as the gRPC health protocol names them. */
export type ServingState = "SERVING" | "NOT_SERVING";

/** Health of one control plane process. */
export class Health {
  readonly #probes = new Map<string, ReadinessProbe>();
  readonly #listeners = new Set<() => void>();
  #serving: ServingState = "NOT_SERVING";

  /** Registers a readiness probe under a name ("redis", "nats"). */
  addProbe(name: string, probe: ReadinessProbe): void {
    this.#probes.set(name, probe);
  }

  get serving(): ServingState {
    return this.#serving;
  }

  /** Sets the serving state and tells watchers. */
  setServing(state: ServingState): void {
    if (state === this.#serving) return;
    this.#serving = state;
    for (const listener of this.#listeners) listener();
  }

  /** Calls `listener` on every change until the returned function is called. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Runs every probe (in parallel, each with `timeoutMs`). */
  async check(timeoutMs = 2000): Promise<ReadinessReport> {
    const checks: ReadinessReport["checks"] = {};
    await Promise.all(
      [...this.#probes].map(async ([name, probe]) => {
        const started = performance.now();
        const signal = AbortSignal.timeout(timeoutMs);
        try {
          await Promise.race([
            probe(signal),
            new Promise<never>((_, reject) =>
              signal.addEventListener("abort", () => reject(new Error(`no answer within ${timeoutMs} ms`)), {
                once: true,
              }),
            ),
          ]);
          checks[name] = { ok: true, ms: Math.round(performance.now() - started) };
        } catch (err) {
          checks[name] = {
            ok: false,
            error: err instanceof Error ? err.message : String(err),
            ms: Math.round(performance.now() - started),
          };
        }
      }),
    );
    const ready = this.#serving === "SERVING" && Object.values(checks).every((c) => c.ok);
    return { ready, checks };
  }
}
