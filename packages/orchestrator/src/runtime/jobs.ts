/**
 * The job side of the runtime, one sync per job (`j:<job id>`), level-triggered:
 *
 * 1. The job is not placed any more (stopped, failed, completed, deleted): an active deployment
 *    of it ends (`cancelled`, or `superseded` where cancel is not allowed), with the reason.
 * 2. `total_timeout` (counted from when the current version was submitted, an absolute time)
 *    passed: the job fails with the reason and its executions stop (placement drops it).
 * 3. A version no deployment covers yet (a spec change): a deployment of it starts over the
 *    nodes matching now, and becomes the job's active one (the previous one, if still active,
 *    is superseded at its next sync). Versions written by a rollback are deployed by the
 *    applier instead.
 * 4. No active deployment: nodes that match but run no version (or an older one than the stable
 *    version) get the stable version (late nodes); then the job is `queued` when no node runs it
 *    (`queue_timeout` counted from entering queued, stored as an absolute deadline) and
 *    `running` again when one does.
 */
import type { JobSpec } from "@edgeplane/core";
import type { JobRecord } from "@edgeplane/store";
import { createDeployment } from "../rollout/create.js";
import { plan } from "../rollout/plan.js";
import { plural } from "../rollout/plural.js";
import { isActiveDeployment, isTerminalDeployment } from "../rollout/states.js";
import type { DeploymentRecord } from "../rollout/types.js";
import { abandon, nameRollbackActive } from "./applier.js";
import type { RuntimeContext } from "./context.js";
import { createdRecord, createWriteOf, deploymentIdFor } from "./records.js";
import { deploymentTargets, selectorOf } from "./targets.js";

const PLACED = new Set(["pending", "queued", "running"]);

/**
 * Whether deployment `d` must end because its job is not placed any more: the job is gone,
 * deleted, stopped, completed or failed; except a deployment rolling back a failed job (a
 * manual rollback of a deployment that failed without one: the rollback makes the job pending).
 */
export function jobEnded(job: JobRecord | undefined, d: Pick<DeploymentRecord, "state">): boolean {
  if (job === undefined) return true;
  if (PLACED.has(job.state)) return false;
  return !(job.state === "failed" && d.state === "rolling_back");
}

/** Why a deployment of a job that is not placed any more ends. */
export function endReason(job: JobRecord | undefined): string {
  if (job === undefined) return "the job no longer exists";
  if (job.state === "deleted") return `job ${job.id} was deleted`;
  return `job ${job.id} is ${job.state}${job.stateMessage ? `: ${job.stateMessage}` : ""}`;
}

/** Syncs one job (see the module header). `selectors` is the runtime's cache of placed jobs. */
export async function syncJob(
  ctx: RuntimeContext,
  jobId: string,
  placedJobs: Map<string, ReturnType<typeof selectorOf>>,
): Promise<void> {
  ctx.counters.jobSyncs++;
  const job = await ctx.freshJob(jobId);
  const active = job?.deploymentId ? await ctx.record(job.deploymentId) : undefined;
  if (job === undefined || !PLACED.has(job.state)) {
    placedJobs.delete(jobId);
    const ids = new Set(ctx.activeByJob.get(jobId) ?? []);
    if (active !== undefined) ids.add(active.id);
    for (const id of ids) {
      const d = await ctx.record(id);
      if (d !== undefined && isActiveDeployment(d.state) && jobEnded(job, d))
        await abandon(ctx, d, endReason(job));
    }
    // A deleted job's versions map goes too (its name may be reused, by a new job id).
    if (job?.state === "deleted") await ctx.versions.drop(jobId, ctx.fence());
    return;
  }
  const spec = job.spec as unknown as JobSpec;
  placedJobs.set(jobId, selectorOf(job.spec));
  const now = ctx.clock.now();

  // total_timeout, from the submission of the current version.
  const total = spec.timeouts?.total_timeout ?? 0;
  if (total > 0) {
    const version = await ctx.spec(job.id, job.version);
    if (version !== undefined) {
      const deadline = version.createdAt + total * 1000;
      if (now >= deadline) {
        await ctx.writeJob(job.id, (j) =>
          j.version !== job.version || !PLACED.has(j.state)
            ? undefined
            : {
                state: "failed",
                message: `total_timeout ${total}s passed (version ${job.version} submitted at ${new Date(version.createdAt).toISOString()}); its executions are stopped`,
                details: { reason: "total_timeout", total_deadline: String(deadline) },
              },
        );
        ctx.enqueue(`j:${jobId}`);
        return;
      }
      ctx.enqueue(`j:${jobId}`, deadline - now);
    }
  }

  // A version no deployment covers: start one.
  if (active === undefined || active.jobVersion < job.version) {
    // Only a rolling-back deployment's own rollback version is the applier's to deploy; the
    // version's kind is read only then (a new job's first sync reads nothing it does not need).
    const version = active?.state === "rolling_back" ? await ctx.spec(job.id, job.version) : undefined;
    if (active === undefined || version?.kind !== "rollback") {
      await startDeployment(ctx, job, active);
      return;
    }
    // The applier created the rollback deployment and recorded it in `active`, and a crash came
    // before the job write naming it: finish that write.
    if (active.rollbackDeploymentId === deploymentIdFor(job.id, job.version))
      await nameRollbackActive(ctx, job.id, active, job.version, version.sourceVersion);
  }
  if (active !== undefined && isActiveDeployment(active.state)) return;

  // Late nodes, then queued / running.
  const selector = selectorOf(job.spec);
  const matching = selector === undefined ? [] : ctx.registry.select(selector);
  const map = await ctx.versions.map(jobId);
  // A succeeded deployment whose mark_stable was lost (a crash between writes): mark it now.
  const stable = Math.max(job.stableVersion, active?.state === "succeeded" ? active.jobVersion : 0);
  if (stable > job.stableVersion) {
    await ctx.writeJob(job.id, (j) =>
      j.stableVersion >= stable
        ? undefined
        : { state: j.state, message: j.stateMessage, details: j.stateDetails, stableVersion: stable },
    );
  }
  if (stable > 0) {
    const late = matching.filter(
      (id) => ctx.registry.stateOf(id) === "ready" && (map.get(id)?.version ?? 0) < stable,
    );
    if (late.length > 0) {
      const changed = await ctx.versions.assign(jobId, stable, active?.id ?? "", late, ctx.fence());
      ctx.counters.versionWrites++;
      if (changed.length > 0) {
        ctx.log.info("nodes that started matching get the stable version", {
          job: jobId,
          version: stable,
          nodes: changed.length,
        });
        await ctx.placeNodes(jobId, job.version, changed);
      }
    }
  }
  let holders = 0;
  for (const id of matching) if (ctx.versions.versionOf(jobId, id) !== undefined) holders++;
  await queuedOrRunning(ctx, job, holders, now);
}

/** Keeps a job with no active deployment `queued` (timing it) or `running`. */
async function queuedOrRunning(
  ctx: RuntimeContext,
  job: JobRecord,
  holders: number,
  now: number,
): Promise<void> {
  const spec = job.spec as unknown as JobSpec;
  const queueTimeout = spec.timeouts?.queue_timeout ?? 0;
  if (holders > 0) {
    if (job.state === "running") return;
    await ctx.writeJob(job.id, (j) =>
      j.version !== job.version || j.state === "running" || !PLACED.has(j.state)
        ? undefined
        : {
            state: "running",
            message: `version ${j.stableVersion || j.version} runs on ${plural(holders, "node")}`,
          },
    );
    return;
  }
  if (job.state !== "queued") {
    const queued = queuedPatch(job, now);
    await ctx.writeJob(job.id, (j) =>
      j.version !== job.version || j.state === "queued" || !PLACED.has(j.state) ? undefined : queued.patch,
    );
    if (queued.deadline > 0) ctx.enqueue(`j:${job.id}`, queued.deadline - now);
    return;
  }
  const deadline = Number(job.stateDetails.queue_deadline ?? 0);
  if (queueTimeout <= 0 || !(deadline > 0)) return;
  if (now < deadline) {
    ctx.enqueue(`j:${job.id}`, deadline - now);
    return;
  }
  await ctx.writeJob(job.id, (j) =>
    j.state !== "queued" || j.version !== job.version
      ? undefined
      : {
          state: "failed",
          message: `queue_timeout ${queueTimeout}s passed and no node matches the selector`,
          details: { reason: "queue_timeout", queued_at: job.stateDetails.queued_at ?? "" },
        },
  );
}

/** The job write entering `queued` at `now` (no node matches), and the queue_timeout deadline (0: none). */
function queuedPatch(job: JobRecord, now: number) {
  const queueTimeout = (job.spec as unknown as JobSpec).timeouts?.queue_timeout ?? 0;
  const deadline = queueTimeout > 0 ? now + queueTimeout * 1000 : 0;
  const patch = {
    state: "queued" as const,
    message:
      queueTimeout > 0
        ? `no node matches the selector; waiting up to queue_timeout ${queueTimeout}s for one`
        : "no node matches the selector; waiting for one",
    details: {
      queued_at: String(now),
      ...(deadline > 0 ? { queue_deadline: String(deadline) } : {}),
    },
  };
  return { patch, deadline };
}

/**
 * Starts the deployment of the job's current version over the nodes matching now.
 *
 * With no node matching there is nothing to roll out: the deployment is planned to its end at
 * once (started and succeeded: the planner's own verdict, so its timeline reads like any other)
 * and created that way, and one job write names it, marks the version stable and queues the job,
 * which is what its first sync, the mark_stable and the next job sync would have written in
 * three (a job submitted with no node to run on costs two writes after its PutJob, not five).
 */
async function startDeployment(
  ctx: RuntimeContext,
  job: JobRecord,
  previous: DeploymentRecord | undefined,
): Promise<void> {
  const id = deploymentIdFor(job.id, job.version);
  const spec = job.spec as unknown as JobSpec;
  const now = ctx.clock.now();
  let record = ctx.records.get(id);
  let empty = false;
  if (record === undefined) {
    const fresh = createDeployment({
      id,
      jobId: job.id,
      jobVersion: job.version,
      spec,
      targets: deploymentTargets(ctx.registry, job.spec),
      now,
    });
    empty = fresh.targets.length === 0;
    const draft = empty ? plan({ deployment: fresh, observations: {} }, now).deployment : fresh;
    if (empty && draft.state !== "succeeded")
      throw new Error(`bug: an empty deployment ended ${draft.state}`);
    const created = await ctx.deployments.create(createWriteOf(draft, now), ctx.fence());
    if (created.created) {
      ctx.counters.deploymentsCreated++;
      ctx.log.info("deployment created", {
        deployment: id,
        job: job.id,
        version: job.version,
        strategy: draft.strategy,
        targets: draft.targets.length,
      });
    }
    record = createdRecord(draft, created);
    ctx.remember(record);
    // Created by another leader meanwhile: it syncs as usual.
    empty &&= created.created;
  }
  if (empty) {
    const queued = queuedPatch(job, now);
    const version = job.version;
    await ctx.writeJob(job.id, (j) =>
      j.version !== version || j.deploymentId === id || !PLACED.has(j.state)
        ? undefined
        : {
            ...queued.patch,
            message: `version ${version} has no node to run on (deployment ${id}); ${queued.patch.message}`,
            details: { ...queued.patch.details, deployment_id: id },
            deploymentId: id,
            stableVersion: Math.max(j.stableVersion, version),
          },
    );
    if (queued.deadline > 0) ctx.enqueue(`j:${job.id}`, queued.deadline - now);
    if (previous !== undefined && isActiveDeployment(previous.state)) ctx.enqueue(`d:${previous.id}`);
    return;
  }
  const targets = record.targets.length;
  await ctx.writeJob(job.id, (j) =>
    j.version !== job.version || j.deploymentId === id
      ? undefined
      : {
          state: j.state,
          message: `version ${job.version}: deployment ${id} created (${record.strategy}, ${plural(targets, "node")})`,
          details: { deployment_id: id },
          deploymentId: id,
        },
  );
  // A deployment that had already ended (one leader created it and died before this write, or
  // it was created ended: no node to run on) is not synced again; the job sync settles the job
  // (its stable version, queued or running).
  ctx.enqueue(isTerminalDeployment(record.state) ? `j:${job.id}` : `d:${id}`);
  if (previous !== undefined && isActiveDeployment(previous.state)) ctx.enqueue(`d:${previous.id}`);
}
