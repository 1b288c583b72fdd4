/**
 * `edgectl deployment simulate -f job.yaml --nodes N --fail-rate R`: the real planner over a
 * random (seeded, so reproducible) fleet in virtual time, and the timeline it prints.
 */
import { formatDuration, type JobSpec, parseDuration } from "@edgeplane/core";
import {
  type FleetModel,
  type FleetResult,
  type NodeBehavior,
  runFleet,
  type VersionBehavior,
} from "./fleet.js";
import type { Control } from "./states.js";
import type { DeploymentRecord } from "./types.js";

/** Options of {@link simulate}. */
export interface SimulateOptions {
  /** The job spec to roll out (validated, defaults applied); `spec.type` decides run-once or not. */
  readonly spec: JobSpec;
  /** Fleet size. */
  readonly nodes: number;
  /** Probability that a node goes bad on the new version (crashes, or stays unhealthy). 0..1. */
  readonly failRate: number;
  /** Seed of the random fleet (same seed, same timeline). */
  readonly seed: number;
  /** Probability that a node is offline at the start (it comes back after 30 s..2×deadline). */
  readonly offlineRate?: number;
  /** Probability that a node is lost at some point in the first 30 minutes. */
  readonly lostRate?: number;
  /** The job's stable version before this rollout (its spec differs); enables auto-rollback. */
  readonly stableVersion?: number;
  /** A person promotes a canary deployment this long after it awaits promotion (default: never). */
  readonly promoteAfterMs?: number;
  /** Controls sent at virtual instants (ms after the start). */
  readonly controls?: readonly { readonly at: number; readonly control: Control }[];
  /** The range of delays between delivery and the execution running (default 5 s..60 s). */
  readonly startDelayMs?: readonly [number, number];
}

/** The result of a simulation (what formatTimeline prints). */
export interface SimulationResult extends FleetResult {
  readonly options: Omit<SimulateOptions, "spec"> & { readonly strategy: string; readonly jobType: string };
}

/** mulberry32: a tiny seeded PRNG (deterministic across platforms). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Node ids `node-01`..`node-NN` (zero-padded to the fleet size's width). */
export function fleetNodeIds(n: number): string[] {
  const width = Math.max(2, String(n).length);
  return Array.from({ length: n }, (_, i) => `node-${String(i + 1).padStart(width, "0")}`);
}

/** A random fleet: behaviors drawn once per node and version, in a fixed order, from the seed. */
export function randomFleet(
  options: Omit<SimulateOptions, "spec"> & { readonly deadlineMs: number },
): FleetModel {
  const ids = fleetNodeIds(options.nodes);
  const random = seededRandom(options.seed);
  // Whole seconds keep printed timelines readable.
  const between = (lo: number, hi: number) => Math.round((lo + random() * (hi - lo)) / 1000) * 1000;
  const [dLo, dHi] = options.startDelayMs ?? [5_000, 60_000];
  const nodeBehaviors = new Map<string, NodeBehavior>();
  for (const id of ids) {
    const offline = random() < (options.offlineRate ?? 0);
    const offlineUntil = between(30_000, Math.max(60_000, 2 * options.deadlineMs));
    const lost = random() < (options.lostRate ?? 0);
    const lostAt = between(0, 30 * 60_000);
    nodeBehaviors.set(id, { ...(offline ? { offlineUntil } : {}), ...(lost ? { lostAt } : {}) });
  }
  const versions = new Map<string, VersionBehavior>();
  return {
    nodeIds: ids,
    node: (id) => nodeBehaviors.get(id) ?? {},
    version(id, version, role) {
      const key = `${id}\n${version}`;
      const known = versions.get(key);
      if (known) return known;
      const bad = role === "new" && random() < options.failRate;
      const crash = random() < 0.5;
      const blip = random() < 0.1;
      const behavior: VersionBehavior = {
        startDelayMs: between(dLo, dHi),
        outcome: bad ? (crash ? "error" : "unhealthy") : "healthy",
        runMs: between(5_000, 60_000),
        ...(blip && !bad ? { blips: [[between(5_000, 20_000), between(22_000, 30_000)] as const] } : {}),
      };
      versions.set(key, behavior);
      return behavior;
    },
  };
}

/** Runs the planner over a random fleet (see {@link SimulateOptions}). */
export function simulate(options: SimulateOptions): SimulationResult {
  const { spec, ...rest } = options;
  const deadline = spec.deployment.health_check.deadline;
  const deadlineMs = (deadline === undefined ? undefined : parseDuration(deadline)) || 300_000;
  const fleet = randomFleet({ ...rest, deadlineMs });
  const result = runFleet({
    spec,
    fleet,
    ...(options.stableVersion !== undefined
      ? { stable: { version: options.stableVersion, specEqualsCurrent: false } }
      : {}),
    ...(options.promoteAfterMs !== undefined ? { promoteAfterMs: options.promoteAfterMs } : {}),
    ...(options.controls ? { controls: options.controls } : {}),
  });
  return { ...result, options: { ...rest, strategy: spec.deployment.strategy, jobType: spec.type } };
}

function listNodes(nodes: readonly string[], total: number): string {
  if (nodes.length === 0) return "";
  const shown = nodes.slice(0, 6);
  const more = total - shown.length;
  return ` [${shown.join(", ")}${more > 0 ? `, +${more} more` : ""}]`;
}

function summary(d: DeploymentRecord): string {
  const c = d.counters;
  const state = d.state.replace("_", " ");
  const message = d.message.startsWith(state) ? d.message : `${state}: ${d.message}`;
  return `${d.id} (version ${d.jobVersion}${d.isRollback ? ", rollback" : ""}, ${c.healthy}/${c.targets} done, ${c.failed} failed) ${message}`;
}

/**
 * The timeline as `edgectl deployment simulate` prints it: a header, one line per event
 * (`+1m30s  d-1  dispatched  wave 2 of 4: ... [node-03, node-07]`), and the outcome.
 */
export function formatTimeline(result: SimulationResult | FleetResult): string {
  const lines: string[] = [];
  if ("options" in result) {
    const o = result.options;
    const extras = [
      o.offlineRate ? `offline-rate ${o.offlineRate}` : "",
      o.lostRate ? `lost-rate ${o.lostRate}` : "",
      o.stableVersion !== undefined ? `stable version ${o.stableVersion}` : "",
    ].filter(Boolean);
    lines.push(
      `simulation: ${o.jobType} job, ${o.strategy}, ${o.nodes} nodes, fail-rate ${o.failRate}, seed ${o.seed}${extras.length ? `, ${extras.join(", ")}` : ""}`,
    );
  }
  const ids = new Set(result.timeline.map((e) => e.deploymentId));
  const idWidth = Math.max(0, ...[...ids].map((id) => id.length));
  const kindWidth = Math.max(0, ...result.timeline.map((e) => e.kind.length));
  const timeWidth = Math.max(
    0,
    ...result.timeline.map((e) => formatDuration(e.time - result.startedAt).length + 1),
  );
  for (const e of result.timeline) {
    const when = `+${formatDuration(e.time - result.startedAt)}`.padEnd(timeWidth);
    const total = Number(e.details.nodes_total ?? e.nodes.length);
    lines.push(
      `${when}  ${e.deploymentId.padEnd(idWidth)}  ${e.kind.padEnd(kindWidth)}  ${e.reason}${listNodes(e.nodes, total)}`,
    );
  }
  lines.push(
    `ended at +${formatDuration(result.endedAt - result.startedAt)} after ${result.steps} planner calls`,
  );
  for (const d of result.deployments) lines.push(`result: ${summary(d)}`);
  lines.push(`stable version: ${result.stableVersion ?? "none"}`);
  if (result.stalled)
    lines.push("WARNING: the simulation stalled (an active deployment with nothing left to move it)");
  if (result.truncated) lines.push("WARNING: the simulation was cut short (time or step limit)");
  return `${lines.join("\n")}\n`;
}
