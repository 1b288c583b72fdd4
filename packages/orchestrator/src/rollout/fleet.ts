/**
 * A fake fleet in virtual time that drives the real planner: the engine behind
 * `edgectl deployment simulate` and the property tests. Deterministic: nodes follow scripted
 * behaviors, time jumps from one interesting instant to the next, and a model applier performs
 * the plan's actions the way the runtime must (assign, unassign, rollback, mark_stable).
 *
 * Sync triggers are the runtime's: a node's observation changing (a heartbeat), a plan's
 * `requeueAfterMs` (a timer), a control, another deployment of the job changing. The engine never
 * polls, so a missing requeue shows up as a stalled simulation.
 */
import type { JobSpec } from "@edgeplane/core";
import { createDeployment } from "./create.js";
import { plan } from "./plan.js";
import { type Control, isTerminalDeployment } from "./states.js";
import type {
  Action,
  DeploymentEvent,
  DeploymentRecord,
  NodeObservation,
  Plan,
  Snapshot,
  StableVersion,
} from "./types.js";

/** When a node is reachable. */
export interface NodeBehavior {
  /** Disconnected from the start until this instant (ms of virtual time); absent = online. */
  readonly offlineUntil?: number;
  /** Lost for good from this instant. */
  readonly lostAt?: number;
}

/** What a node's execution of one version does once delivered. */
export interface VersionBehavior {
  /** Delay between delivery and the execution running. */
  readonly startDelayMs: number;
  /**
   * healthy: runs healthy (run-once: finishes OK after `runMs`); unhealthy: runs but reports
   * unhealthy with error rate 0.5 (run-once: times out after `runMs`); error: the execution fails
   * (long-running: at start; run-once: after `runMs`).
   */
  readonly outcome: "healthy" | "unhealthy" | "error";
  /** Unhealthy stretches [from, to) in ms after the execution started (health blips). */
  readonly blips?: readonly (readonly [number, number])[];
  /** Run-once: from start to the end of the execution. */
  readonly runMs: number;
}

/** A scripted fleet. */
export interface FleetModel {
  readonly nodeIds: readonly string[];
  node(id: string): NodeBehavior;
  /** How `id` runs `version`; `role` says whether it is the version under test or a rollback. */
  version(id: string, version: number, role: "new" | "rollback"): VersionBehavior;
}

/** A timeline entry of a simulation (a deployment event with its deployment). */
export interface TimelineEntry extends DeploymentEvent {
  readonly deploymentId: string;
}

/** One planner call, for observers (property tests). */
export interface FleetStep {
  readonly now: number;
  readonly snapshot: Snapshot;
  readonly plan: Plan;
  /** The primary deployment (the one under test) or a rollback deployment. */
  readonly role: "primary" | "rollback";
}

/** Options of {@link runFleet}. */
export interface RunFleetOptions {
  /** The spec of the version under test. */
  readonly spec: JobSpec;
  readonly fleet: FleetModel;
  /** The version under test (default: stable + 1, or 1). */
  readonly version?: number;
  /** The job's stable version before this deployment, if any. */
  readonly stable?: StableVersion;
  /** Controls a person sends to the primary deployment, at virtual instants. */
  readonly controls?: readonly { readonly at: number; readonly control: Control }[];
  /** A person promotes this long after the deployment starts awaiting promotion. */
  readonly promoteAfterMs?: number;
  /** A newer version of the job starts its own deployment at this instant. */
  readonly supersedeAt?: number;
  /** Virtual start time (default 0). */
  readonly startAt?: number;
  /** Give up after this much virtual time (default 30 days). */
  readonly maxTimeMs?: number;
  /** Give up after this many planner calls (default 200 000). */
  readonly maxSteps?: number;
  readonly onStep?: (step: FleetStep) => void;
}

/** The outcome of {@link runFleet}. */
export interface FleetResult {
  /** Final records: the primary first, then its rollback (if any). */
  readonly deployments: readonly DeploymentRecord[];
  /** Every timeline entry of every deployment, in time order. */
  readonly timeline: readonly TimelineEntry[];
  /** Every action applied, in order, with its deployment and instant. */
  readonly actions: readonly {
    readonly at: number;
    readonly deploymentId: string;
    readonly action: Action;
  }[];
  /** The virtual instant the simulation ended. */
  readonly endedAt: number;
  readonly startedAt: number;
  /** The job's stable version at the end. */
  readonly stableVersion?: number;
  /** True when a deployment was still active with nothing left that could move it (a planner bug). */
  readonly stalled: boolean;
  /** True when maxTimeMs or maxSteps cut the simulation short. */
  readonly truncated: boolean;
  /** Planner calls made. */
  readonly steps: number;
}

interface Desired {
  readonly version: number;
  readonly at: number;
  readonly previous?: Desired;
}

interface Tracked {
  record: DeploymentRecord;
  readonly role: "primary" | "rollback";
}

const UNHEALTHY_ERROR_RATE = 0.5;

/** Runs the planner over a scripted fleet until every deployment ends or waits for a person. */
export function runFleet(options: RunFleetOptions): FleetResult {
  const { spec, fleet } = options;
  const startAt = options.startAt ?? 0;
  const maxTime = startAt + (options.maxTimeMs ?? 30 * 24 * 3_600_000);
  const maxSteps = options.maxSteps ?? 200_000;
  const runOnce = spec.type !== "pipeline";
  const version = options.version ?? (options.stable ? options.stable.version + 1 : 1);

  // Spec identities per version, to answer `specEqualsCurrent` like the snapshot loader would.
  const specOf = new Map<number, string>();
  let stableVersion = options.stable?.version;
  if (options.stable) specOf.set(options.stable.version, options.stable.specEqualsCurrent ? "new" : "stable");
  specOf.set(version, "new");
  let latestVersion = version;
  const roleOf = new Map<number, "new" | "rollback">([[version, "new"]]);

  const nodes = new Map<string, NodeBehavior>(fleet.nodeIds.map((id) => [id, fleet.node(id)]));
  const desired = new Map<string, Desired>();
  const behaviorCache = new Map<string, VersionBehavior>();
  const behaviorOf = (id: string, v: number): VersionBehavior => {
    const key = `${id}\n${v}`;
    let b = behaviorCache.get(key);
    if (b === undefined) {
      b = fleet.version(id, v, roleOf.get(v) ?? "new");
      behaviorCache.set(key, b);
    }
    return b;
  };

  const deliveredAt = (id: string, d: Desired): number | undefined => {
    const nb = nodes.get(id) ?? {};
    const at = Math.max(d.at, nb.offlineUntil ?? Number.NEGATIVE_INFINITY);
    return nb.lostAt !== undefined && nb.lostAt <= at ? undefined : at;
  };

  const observe = (id: string, t: number): NodeObservation => {
    const nb = nodes.get(id) ?? {};
    const liveness =
      nb.lostAt !== undefined && t >= nb.lostAt
        ? "lost"
        : nb.offlineUntil !== undefined && t < nb.offlineUntil
          ? "disconnected"
          : "ready";
    const want = desired.get(id);
    const at = want === undefined ? undefined : deliveredAt(id, want);
    if (want === undefined || at === undefined || t < at) {
      // Still on the stable version (long-running) or nothing to report.
      if (stableVersion === undefined) return { liveness };
      return {
        liveness,
        execution: {
          version: stableVersion,
          state: runOnce ? "finished" : "running",
          healthy: true,
          errorRate: 0,
          healthySince: startAt - 3_600_000,
        },
      };
    }
    const b = behaviorOf(id, want.version);
    const started = at + b.startDelayMs;
    if (t < started)
      return {
        liveness,
        execution: { version: want.version, state: "waiting", healthy: false, errorRate: 0 },
      };
    const end = started + b.runMs;
    if (runOnce) {
      const running = t < end;
      const state = running
        ? "running"
        : b.outcome === "healthy"
          ? "finished"
          : b.outcome === "error"
            ? "error"
            : "timed_out";
      return {
        liveness,
        execution: { version: want.version, state, healthy: b.outcome === "healthy", errorRate: 0 },
      };
    }
    if (b.outcome === "error") {
      return { liveness, execution: { version: want.version, state: "error", healthy: false, errorRate: 1 } };
    }
    if (b.outcome === "unhealthy") {
      return {
        liveness,
        execution: {
          version: want.version,
          state: "running",
          healthy: false,
          errorRate: UNHEALTHY_ERROR_RATE,
        },
      };
    }
    let since = started;
    for (const [from, to] of b.blips ?? []) {
      if (t >= started + from && t < started + to) {
        return {
          liveness,
          execution: { version: want.version, state: "running", healthy: false, errorRate: 0 },
        };
      }
      if (t >= started + to && started + to > since) since = started + to;
    }
    return {
      liveness,
      execution: {
        version: want.version,
        state: "running",
        healthy: true,
        errorRate: 0,
        healthySince: since,
      },
    };
  };

  /** The next instant after `t` at which some node's observation changes. */
  const nextNodeChange = (t: number): number | undefined => {
    let next: number | undefined;
    const consider = (x: number | undefined) => {
      if (x !== undefined && x > t && (next === undefined || x < next)) next = x;
    };
    for (const id of fleet.nodeIds) {
      const nb = nodes.get(id) ?? {};
      consider(nb.offlineUntil);
      consider(nb.lostAt);
      const want = desired.get(id);
      if (want === undefined) continue;
      const at = deliveredAt(id, want);
      if (at === undefined) continue;
      const b = behaviorOf(id, want.version);
      const started = at + b.startDelayMs;
      consider(at);
      consider(started);
      consider(started + b.runMs);
      for (const [from, to] of b.blips ?? []) {
        consider(started + from);
        consider(started + to);
      }
    }
    return next;
  };

  const tracked: Tracked[] = [];
  const timeline: TimelineEntry[] = [];
  const applied: { at: number; deploymentId: string; action: Action }[] = [];
  const primary = createDeployment({
    id: "d-1",
    jobId: "job-1",
    jobVersion: version,
    spec,
    targets: fleet.nodeIds,
    now: startAt,
  });
  tracked.push({ record: primary, role: "primary" });
  let activeId = primary.id;
  const pendingControls = [...(options.controls ?? [])].sort((a, b) => a.at - b.at);
  let awaitingSince: number | undefined;
  let promoteAt: number | undefined;
  const wakes: number[] = [];
  let steps = 0;
  let t = startAt;
  let stalled = false;
  let truncated = false;

  const stableFor = (d: DeploymentRecord): StableVersion | undefined =>
    stableVersion === undefined
      ? undefined
      : { version: stableVersion, specEqualsCurrent: specOf.get(stableVersion) === specOf.get(d.jobVersion) };

  const apply = (entry: Tracked, p: Plan, now: number): void => {
    // The model applier: one guarded write of the record (revision bump), then the actions.
    let record = p.changed ? { ...p.deployment, revision: p.deployment.revision + 1 } : entry.record;
    for (const action of p.actions) {
      applied.push({ at: now, deploymentId: record.id, action });
      switch (action.kind) {
        case "assign":
          for (const id of action.nodeIds) {
            const prev = desired.get(id);
            desired.set(id, { version: action.version, at: now, ...(prev ? { previous: prev } : {}) });
          }
          break;
        case "unassign":
          for (const id of action.nodeIds) {
            const cur = desired.get(id);
            if (cur?.version !== action.version) continue;
            if (cur.previous) desired.set(id, cur.previous);
            else desired.delete(id);
          }
          break;
        case "mark_stable":
          stableVersion = action.version;
          break;
        case "job_state":
          break;
        case "rollback": {
          // Idempotent per deployment: a repeated action finds the rollback already recorded.
          if (record.rollbackDeploymentId !== undefined) break;
          latestVersion++;
          specOf.set(latestVersion, specOf.get(action.toVersion) ?? "stable");
          roleOf.set(latestVersion, "rollback");
          const rb = createDeployment({
            id: `${record.id}-rollback`,
            jobId: record.jobId,
            jobVersion: latestVersion,
            spec,
            targets: fleet.nodeIds.filter((id) => observe(id, now).liveness !== "lost"),
            now,
            rollbackOf: { deployment: record, toVersion: action.toVersion },
          });
          tracked.push({ record: rb, role: "rollback" });
          activeId = rb.id;
          record = { ...record, rollbackDeploymentId: rb.id, revision: record.revision + 1 };
          break;
        }
      }
    }
    entry.record = record;
    for (const e of p.events) timeline.push({ ...e, deploymentId: record.id });
    if (p.requeueAfterMs !== undefined) wakes.push(now + p.requeueAfterMs);
  };

  const syncAll = (now: number): void => {
    // Repeat while something changed: a deployment ending can move another (rollback → rolled_back).
    for (let pass = 0; pass < 8; pass++) {
      let changed = false;
      for (const entry of tracked) {
        const d = entry.record;
        if (isTerminalDeployment(d.state)) continue;
        let requested: Control | undefined;
        if (entry.role === "primary") {
          const due = pendingControls[0];
          if (due !== undefined && due.at <= now) {
            requested = due.control;
            pendingControls.shift();
          } else if (promoteAt !== undefined && promoteAt <= now && d.state === "awaiting_promotion") {
            requested = "promote";
            promoteAt = undefined;
          }
        }
        const rb = d.rollbackDeploymentId
          ? tracked.find((x) => x.record.id === d.rollbackDeploymentId)
          : undefined;
        const observations: Record<string, NodeObservation> = {};
        for (const id of d.targets) observations[id] = observe(id, now);
        const stable = stableFor(d);
        const superseded =
          options.supersedeAt !== undefined && now >= options.supersedeAt
            ? "d-newer"
            : activeId !== d.id
              ? activeId
              : undefined;
        const snapshot: Snapshot = {
          deployment: d,
          observations,
          ...(stable ? { stable } : {}),
          ...(superseded ? { supersededBy: superseded } : {}),
          ...(requested ? { requested } : {}),
          ...(rb ? { rollback: { id: rb.record.id, state: rb.record.state } } : {}),
        };
        const p = plan(snapshot, now);
        steps++;
        options.onStep?.({ now, snapshot, plan: p, role: entry.role });
        const before = entry.record;
        apply(entry, p, now);
        if (entry.record !== before || p.actions.length > 0 || requested) changed = true;
        if (entry.role === "primary") {
          if (entry.record.state === "awaiting_promotion" && awaitingSince === undefined) {
            awaitingSince = now;
            if (options.promoteAfterMs !== undefined) promoteAt = now + options.promoteAfterMs;
          }
          if (entry.record.state !== "awaiting_promotion") awaitingSince = undefined;
        }
      }
      if (!changed) break;
    }
  };

  const waitingForPerson = (d: DeploymentRecord) => d.state === "awaiting_promotion" || d.state === "paused";

  while (true) {
    syncAll(t);
    const active = tracked.filter((x) => !isTerminalDeployment(x.record.state));
    if (active.length === 0) break;
    const candidates = [
      nextNodeChange(t),
      ...wakes.filter((w) => w > t),
      pendingControls[0]?.at,
      promoteAt,
      options.supersedeAt,
    ].filter((x): x is number => x !== undefined && x > t);
    if (candidates.length === 0) {
      stalled = active.some((x) => !waitingForPerson(x.record));
      break;
    }
    const next = Math.min(...candidates);
    if (next > maxTime || steps >= maxSteps) {
      truncated = true;
      break;
    }
    t = next;
    for (let i = wakes.length - 1; i >= 0; i--) if ((wakes[i] ?? 0) <= t) wakes.splice(i, 1);
  }

  return {
    deployments: tracked.map((x) => x.record),
    timeline: timeline.sort((a, b) => a.time - b.time),
    actions: applied,
    startedAt: startAt,
    endedAt: t,
    ...(stableVersion !== undefined ? { stableVersion } : {}),
    stalled,
    truncated,
    steps,
  };
}
