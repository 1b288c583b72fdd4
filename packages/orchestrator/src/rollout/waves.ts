/**
 * Rollout arithmetic: the order nodes are updated in, the canary count, the wave size, and the
 * wave plan a dry run shows. The planner uses the same functions, so a dry run and a real rollout
 * agree.
 *
 * Worked example: 25 targets, `strategy: canary`, `canary_percent: 10`, `max_parallel: 4`,
 * `max_parallel_percent: 20`.
 * - canaries: ⌈10% × 25⌉ = ⌈2.5⌉ = 3 nodes (wave 1);
 * - wave size: min(4, ⌈20% × 25⌉ = 5) = 4;
 * - rolling waves over the other 22 nodes: ⌈22 / 4⌉ = 6 (waves 2..7; the last has 2 nodes);
 * - counters.waves = 1 + 6 = 7.
 */
import { type JobSpec, waveSize } from "@edgeplane/core";
import type { RolloutSpec } from "./types.js";

/** FNV-1a (32 bit) over UTF-16 code units: small, fast, stable across versions and platforms. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * The order a job's nodes are updated in: by a hash of (job namespace/name, node id), ties broken
 * by node id. Deterministic (the same job and nodes always give the same order, so a dry run
 * shows the real canaries), but spread: with ids like `berlin-001..berlin-050, paris-001..`, the
 * canaries and first waves mix sites instead of taking the first names alphabetically, and
 * different jobs pick different canaries (no node is every job's guinea pig). Duplicates dropped.
 */
export function rolloutOrder(targets: Iterable<string>, job: Pick<JobSpec, "namespace" | "name">): string[] {
  const salt = `${job.namespace}/${job.name}\n`;
  const unique = [...new Set(targets)];
  const keyed = unique.map((id) => ({ id, key: fnv1a(salt + id) }));
  keyed.sort((a, b) => a.key - b.key || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return keyed.map((k) => k.id);
}

/**
 * How many canaries a canary rollout over `targets` nodes starts with: `canary_count` when set
 * (> 0), else ⌈canary_percent × targets / 100⌉ (at least 1); never more than the targets; 0 for
 * other strategies. Example: `canary_percent: 10` of 25 targets → ⌈2.5⌉ = 3.
 */
export function canaryCount(rollout: RolloutSpec, targets: number): number {
  if (rollout.strategy !== "canary" || targets <= 0) return 0;
  const count = rollout.canary_count ?? 0;
  if (count > 0) return Math.min(count, targets);
  const pct = rollout.canary_percent ?? 0;
  if (pct > 0) return Math.min(targets, Math.max(1, Math.ceil((pct * targets) / 100)));
  return 0;
}

/**
 * How many nodes may be updating at once: every target for `immediate`, core's `waveSize` (the
 * smaller of `max_parallel` and ⌈max_parallel_percent⌉, 0 = all) for rolling and canary phases.
 * Example: `max_parallel_percent: 25` of 10 targets → ⌈2.5⌉ = 3.
 */
export function rolloutWaveSize(rollout: RolloutSpec, targets: number): number {
  if (rollout.strategy === "immediate") return Math.max(0, targets);
  return waveSize({ deployment: rollout }, targets);
}

/** A dry run: which nodes are canaries and which nodes form each rolling wave. */
export interface WavePlan {
  /** All targets in rollout order. */
  readonly order: readonly string[];
  /** The canary set (wave 1 of a canary deployment); empty for other strategies. */
  readonly canaries: readonly string[];
  /** The waves after the canaries (or all waves), in dispatch order. */
  readonly waves: readonly (readonly string[])[];
  /** Nodes updating at once after the canaries. */
  readonly waveSize: number;
}

/**
 * The waves as the planner would dispatch them if every node became done at once. The planner
 * keeps a sliding window (a node of wave k+1 starts as soon as a node of wave k is done), so in
 * a real rollout waves overlap; their composition and order are these.
 */
export function planWaves(
  targets: Iterable<string>,
  spec: Pick<JobSpec, "namespace" | "name" | "deployment">,
): WavePlan {
  return wavesOf(rolloutOrder(targets, spec), spec.deployment);
}

/** {@link planWaves} over targets already in rollout order, with the given settings. */
export function wavesOf(order: readonly string[], rollout: RolloutSpec): WavePlan {
  const canaryN = canaryCount(rollout, order.length);
  const canaries = order.slice(0, canaryN);
  const rest = order.slice(canaryN);
  const size = rolloutWaveSize(rollout, order.length);
  const waves: string[][] = [];
  for (let i = 0; i < rest.length; i += size) waves.push(rest.slice(i, i + size));
  return { order, canaries, waves, waveSize: size };
}
