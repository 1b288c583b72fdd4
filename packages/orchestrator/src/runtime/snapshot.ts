/**
 * The snapshot loader: everything one sync of one deployment needs, read fresh (the deployment
 * record, an observation of every target from the node registry, the job's stable version,
 * whether a newer deployment took over, a pending control, and while rolling back the rollback
 * deployment's state). See "For the runtime" in docs/rollouts.md.
 */
import { canonicalJson, type JobRecord } from "@edgeplane/store";
import { type Control, isControl } from "../rollout/states.js";
import type {
  DeploymentRecord,
  ExecutionState,
  NodeObservation,
  Snapshot,
  StableVersion,
} from "../rollout/types.js";
import type { RuntimeContext } from "./context.js";

/** The loader's answer. */
export interface LoadedSnapshot {
  readonly snapshot: Snapshot;
  /**
   * Set early in a leadership term while assigned targets have not been heard from yet (the
   * registry rebuilds executions from heartbeats): planning now would see them as not running
   * and restart their health clocks. The sync is postponed a little instead.
   */
  readonly postpone: boolean;
}

/** How long after a term begins unheard targets postpone a sync; default set by the runtime. */
export interface LoadOptions {
  readonly settleMs: number;
  readonly control?: string;
  /** The reason given with `control`. */
  readonly controlReason?: string;
}

/** Shared observations of a node whose execution does not matter (no allocation per node). */
const LIVENESS_ONLY: Readonly<Record<string, NodeObservation>> = {
  ready: { liveness: "ready" },
  draining: { liveness: "draining" },
  disconnected: { liveness: "disconnected" },
  lost: { liveness: "lost" },
};

/**
 * The observation of every target that can still change: a done or failed node is never judged
 * again (left out), a pending one only when it is lost (which fails it; any other liveness
 * changes nothing for it), an assigned one by its liveness and execution. On a 10,000-node
 * deployment this keeps a sync from building a 10,000-entry table when most nodes are settled or
 * waiting.
 */
function observe(
  ctx: RuntimeContext,
  d: DeploymentRecord,
): { obs: Record<string, NodeObservation>; unheard: number } {
  const obs: Record<string, NodeObservation> = {};
  let unheard = 0;
  const { targets, nodes } = d;
  for (let i = 0; i < targets.length; i++) {
    const node = nodes[i];
    const id = targets[i] as string;
    if (node === undefined || node.state === "done" || node.state === "failed") continue;
    if (node.state === "pending") {
      // A pending node is judged only by whether it is lost (evaluateNode): only lost ones need an
      // observation. Not in the registry: removed (or never known) counts as lost.
      const state = ctx.registry.stateOf(id);
      if (state === undefined || state === "lost") obs[id] = LIVENESS_ONLY.lost as NodeObservation;
      continue;
    }
    const seen = ctx.registry.observe(id, d.jobId, d.jobVersion);
    if (seen === undefined) {
      obs[id] = LIVENESS_ONLY.lost as NodeObservation;
      continue;
    }
    if (!seen.heard && node.withdrawnAt === undefined) unheard++;
    const e = seen.execution;
    obs[id] =
      e === undefined
        ? { liveness: seen.liveness }
        : {
            liveness: seen.liveness,
            execution: {
              version: e.version,
              state: e.state as ExecutionState,
              healthy: e.healthy,
              errorRate: e.errorRate,
              ...(e.healthySince !== undefined ? { healthySince: e.healthySince } : {}),
            },
          };
  }
  return { obs, unheard };
}

/** The job's stable version, and whether its spec equals the one `d` rolls out. */
async function stableOf(
  ctx: RuntimeContext,
  d: DeploymentRecord,
  job: JobRecord | undefined,
): Promise<StableVersion | undefined> {
  if (job === undefined || job.stableVersion <= 0) return undefined;
  if (job.stableVersion === d.jobVersion) return { version: d.jobVersion, specEqualsCurrent: true };
  const [stable, mine] = await Promise.all([
    ctx.spec(job.id, job.stableVersion),
    ctx.spec(job.id, d.jobVersion),
  ]);
  // A stable version dropped from the bounded history cannot be rolled back to.
  if (stable === undefined) return undefined;
  return {
    version: job.stableVersion,
    specEqualsCurrent: mine !== undefined && canonicalJson(stable.spec) === canonicalJson(mine.spec),
  };
}

/**
 * The newer deployment that took over, if any: the job's active deployment when it rolls out a
 * newer version than `d`. Never this deployment's own rollback, nor an older deployment the job
 * still names because a crash came between creating `d` and the job's write naming it (`d` is a
 * new version's deployment, or the rollback of the deployment the job names): the job sync
 * finishes that write.
 */
async function supersededBy(
  ctx: RuntimeContext,
  d: DeploymentRecord,
  job: JobRecord | undefined,
): Promise<string | undefined> {
  const active = job?.deploymentId;
  if (job === undefined || active === undefined || active === "" || active === d.id) return undefined;
  if (active === d.rollbackDeploymentId) return undefined;
  const other = (ctx.records.get(active) ?? (await ctx.deployments.getSummary(active))?.summary) as
    | { rollbackOfDeploymentId?: unknown; jobVersion?: unknown }
    | undefined;
  // The rollback of this deployment, made active just before its id was recorded here.
  if (other?.rollbackOfDeploymentId === d.id) return undefined;
  const version = typeof other?.jobVersion === "number" ? other.jobVersion : job.version;
  return version > d.jobVersion ? active : undefined;
}

/** Loads the snapshot of one sync of `d`. */
export async function loadSnapshot(
  ctx: RuntimeContext,
  d: DeploymentRecord,
  job: JobRecord | undefined,
  options: LoadOptions,
): Promise<LoadedSnapshot> {
  const { obs, unheard } = observe(ctx, d);
  const young = ctx.clock.now() - ctx.termStartedAt < options.settleMs;
  const [stable, newer] = await Promise.all([stableOf(ctx, d, job), supersededBy(ctx, d, job)]);
  let rollback: Snapshot["rollback"];
  if (d.rollbackDeploymentId !== undefined) {
    const rb =
      ctx.records.get(d.rollbackDeploymentId) ?? (await ctx.deployments.getSummary(d.rollbackDeploymentId));
    if (rb !== undefined)
      rollback = { id: d.rollbackDeploymentId, state: rb.state as Snapshot["deployment"]["state"] };
  }
  const requested: Control | undefined =
    options.control !== undefined && isControl(options.control) ? options.control : undefined;
  const snapshot: Snapshot = {
    deployment: d,
    observations: obs,
    ...(stable !== undefined ? { stable } : {}),
    ...(newer !== undefined ? { supersededBy: newer } : {}),
    ...(requested !== undefined ? { requested } : {}),
    ...(requested !== undefined && options.controlReason ? { requestedReason: options.controlReason } : {}),
    ...(rollback !== undefined ? { rollback } : {}),
  };
  return { snapshot, postpone: young && unheard > 0 };
}
