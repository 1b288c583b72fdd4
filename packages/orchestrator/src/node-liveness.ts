/**
 * Node liveness, pure: which state a silent node is in at a given time. The registry runs it in a
 * periodic sweep with an injected clock; a heartbeat (not the sweep) brings a node back.
 *
 * Timings (defaults; see docs/nodes.md):
 * - heartbeat interval 5 s (sent to agents in the register reply);
 * - `disconnected` after 3 missed intervals (15 s without a heartbeat);
 * - `lost` after `lost_after` (5 min without a heartbeat).
 *
 * **Grace after the view begins.** The registry's view of the fleet begins when it starts (loading
 * persisted nodes whose `last_heartbeat` is coarse, possibly minutes old) and again whenever its
 * own bus connection comes back (it heard nothing while it was away). Neither may turn into a mass
 * "disconnected"/"lost": a node is never marked `disconnected` sooner than `restart_grace`
 * (default 2 × the disconnect threshold, 30 s) after the view began, nor `lost` sooner than
 * `lost_after` after it. While the bus is down the sweep does not run at all.
 *
 * Worked example (defaults): the control plane restarts at 12:00:00 and loads node n1 as
 * `ready` with `last_heartbeat` 11:58:30 (persisted coarsely). If n1 is alive it heartbeats
 * within 5 s and nothing changes. If it is dead: at 12:00:30 (grace over, silent > 15 s) it
 * becomes `disconnected`; at 12:05:00 (5 min after the view began, although silent since 11:58:30)
 * it becomes `lost`.
 */
import { formatDuration, invalidArgument } from "@edgeplane/core";
import type { NodeStateType } from "@edgeplane/store";

/** Tunable timings of {@link livenessConfig}. */
export interface LivenessOptions {
  /** How often agents heartbeat; default 5000 ms. */
  readonly heartbeatIntervalMs?: number;
  /** Missed intervals before `disconnected`; default 3. */
  readonly missedHeartbeats?: number;
  /** Silence before `lost`; default 5 min. Must exceed the disconnect threshold. */
  readonly lostAfterMs?: number;
  /** No `disconnected` sooner than this after the view began; default 2 × disconnect threshold. */
  readonly restartGraceMs?: number;
}

/** Resolved timings. */
export interface LivenessConfig {
  readonly heartbeatIntervalMs: number;
  readonly missedHeartbeats: number;
  /** heartbeatIntervalMs × missedHeartbeats. */
  readonly disconnectAfterMs: number;
  readonly lostAfterMs: number;
  readonly restartGraceMs: number;
}

/** The defaults. */
export const LIVENESS_DEFAULTS = {
  heartbeatIntervalMs: 5000,
  missedHeartbeats: 3,
  lostAfterMs: 5 * 60_000,
} as const;

function positive(field: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) throw invalidArgument(field, `must be a positive number (got ${v})`);
  return v;
}

/** Validates and completes the timings. */
export function livenessConfig(options: LivenessOptions = {}): LivenessConfig {
  const heartbeatIntervalMs = positive(
    "heartbeat_interval_ms",
    options.heartbeatIntervalMs ?? LIVENESS_DEFAULTS.heartbeatIntervalMs,
  );
  const missedHeartbeats = positive(
    "missed_heartbeats",
    options.missedHeartbeats ?? LIVENESS_DEFAULTS.missedHeartbeats,
  );
  const disconnectAfterMs = heartbeatIntervalMs * missedHeartbeats;
  const lostAfterMs = positive("lost_after_ms", options.lostAfterMs ?? LIVENESS_DEFAULTS.lostAfterMs);
  if (lostAfterMs <= disconnectAfterMs) {
    throw invalidArgument(
      "lost_after_ms",
      `must exceed the disconnect threshold of ${disconnectAfterMs} ms (heartbeat interval × missed heartbeats)`,
    );
  }
  const restartGraceMs = positive("restart_grace_ms", options.restartGraceMs ?? 2 * disconnectAfterMs);
  return { heartbeatIntervalMs, missedHeartbeats, disconnectAfterMs, lostAfterMs, restartGraceMs };
}

/** What liveness looks at on a node. */
export interface LivenessSubject {
  readonly state: NodeStateType;
  readonly drained: boolean;
  /** The last heartbeat or registration, ms. */
  readonly lastHeartbeat: number;
}

/** The state of a node that heartbeats: `draining` when drained, else `ready`. */
export function liveState(drained: boolean): NodeStateType {
  return drained ? "draining" : "ready";
}

/**
 * The state the sweep moves `node` to at `now`, or `undefined` when it stays. `viewSince` is when
 * the registry's view began (start, or its bus reconnecting). Never returns a live state for a
 * silent node: only a heartbeat revives one.
 */
export function sweepState(
  node: LivenessSubject,
  now: number,
  viewSince: number,
  config: LivenessConfig,
): NodeStateType | undefined {
  if (node.state === "lost") return undefined;
  const silentMs = now - node.lastHeartbeat;
  const viewMs = now - viewSince;
  if (silentMs > config.lostAfterMs && viewMs >= config.lostAfterMs) return "lost";
  if (node.state === "disconnected") return undefined;
  if (silentMs > config.disconnectAfterMs && viewMs >= config.restartGraceMs) return "disconnected";
  return undefined;
}

/** The message that goes with a state liveness decided. */
export function livenessMessage(state: NodeStateType, lastHeartbeat: number, config: LivenessConfig): string {
  const last = new Date(lastHeartbeat).toISOString();
  if (state === "disconnected") return `missed ${config.missedHeartbeats} heartbeats (last at ${last})`;
  if (state === "lost")
    return `no heartbeat for more than ${formatDuration(config.lostAfterMs)} (last at ${last})`;
  return "";
}
