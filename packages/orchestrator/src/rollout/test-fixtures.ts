/**
 * Builders for the planner's tests (not exported from the package): specs through core's real
 * validation (so defaults are the real ones), observations, and a tiny in-memory "applier" that
 * feeds a plan's record into the next snapshot.
 */
import { type JobSpec, validateJobSpec } from "@edgeplane/core";
import { createDeployment } from "./create.js";
import { plan } from "./plan.js";
import type { Control } from "./states.js";
import type { DeploymentRecord, NodeObservation, Plan, Snapshot, StableVersion } from "./types.js";

/** Accepts every selector expression (the tests do not use them). */
const anySyntax = { parseExpression: (e: string) => e };

/** A valid `config` of each job type (core validates it at submit). */
export const SAMPLE_CONFIG: Record<string, Record<string, unknown>> = {
  pipeline: { input: { generate: { interval: "1s", message: {} } }, output: { discard: {} } },
  query: { command: "uptime" },
  update: { command: "true" },
  config: { files: [{ path: "app.conf", content: "x" }] },
};

/** A validated, defaulted spec: `{name: "web", type: "pipeline", deployment}` plus overrides. */
export function makeSpec(
  deployment: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): JobSpec {
  const type = typeof extra.type === "string" ? extra.type : "pipeline";
  return validateJobSpec(
    { name: "web", type: "pipeline", config: SAMPLE_CONFIG[type], deployment, ...extra },
    anySyntax,
  );
}

/** Node ids n01..nNN. */
export function ids(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `n${String(i + 1).padStart(2, "0")}`);
}

/** A new deployment of version 2 at t=0 over `targets`. */
export function makeDeployment(spec: JobSpec, targets: readonly string[], version = 2): DeploymentRecord {
  return createDeployment({ id: "d1", jobId: "j1", jobVersion: version, spec, targets, now: 0 });
}

/** A ready node still running version 1 (healthy). */
export const onOld: NodeObservation = {
  liveness: "ready",
  execution: { version: 1, state: "running", healthy: true, errorRate: 0 },
};

/** A ready node running `version` healthily since `since`. */
export function healthy(version: number, since?: number): NodeObservation {
  return {
    liveness: "ready",
    execution: {
      version,
      state: "running",
      healthy: true,
      errorRate: 0,
      ...(since !== undefined ? { healthySince: since } : {}),
    },
  };
}

/** A ready node running `version`, reporting unhealthy. */
export function unhealthy(version: number, errorRate = 0.5): NodeObservation {
  return { liveness: "ready", execution: { version, state: "running", healthy: false, errorRate } };
}

/** A node whose execution of `version` is in `state`. */
export function execution(
  version: number,
  state: NonNullable<NodeObservation["execution"]>["state"],
): NodeObservation {
  return { liveness: "ready", execution: { version, state, healthy: state === "running", errorRate: 0 } };
}

export const disconnected: NodeObservation = { liveness: "disconnected" };
export const lost: NodeObservation = { liveness: "lost" };

/**
 * Drives one deployment through syncs like the runtime would: each call plans over the latest
 * record with the given observations and instant, then stores the plan's record.
 */
export class Driver {
  record: DeploymentRecord;
  readonly obs: Record<string, NodeObservation> = {};
  stable: StableVersion | undefined;
  readonly plans: Plan[] = [];

  constructor(record: DeploymentRecord, options: { stable?: StableVersion; initial?: NodeObservation } = {}) {
    this.record = record;
    this.stable = options.stable;
    for (const id of record.targets) this.obs[id] = options.initial ?? onOld;
  }

  /** Sets observations. */
  set(nodes: readonly string[], o: NodeObservation): this {
    for (const id of nodes) this.obs[id] = o;
    return this;
  }

  /** One sync at `now`. */
  sync(
    now: number,
    extra: Partial<Omit<Snapshot, "deployment" | "observations">> & { requested?: Control } = {},
  ): Plan {
    const snapshot: Snapshot = {
      deployment: this.record,
      observations: { ...this.obs },
      ...(this.stable ? { stable: this.stable } : {}),
      ...extra,
    };
    const p = plan(snapshot, now);
    this.plans.push(p);
    this.record = p.changed ? { ...p.deployment, revision: p.deployment.revision + 1 } : p.deployment;
    return p;
  }

  /** Node ids in a rollout state. */
  nodesIn(state: string): string[] {
    return this.record.targets.filter((_, i) => this.record.nodes[i]?.state === state);
  }

  /** Ids assigned by a plan. */
  static assigned(p: Plan): string[] {
    return p.actions.flatMap((a) => (a.kind === "assign" ? [...a.nodeIds] : []));
  }
}
