/**
 * The applier: performs a plan. If the record changed it is written first (one Lua script: the
 * expected revision, `deploymentAllowedFrom(state)` when the state moves, and the leader's
 * fencing epoch); then the actions, in order:
 *
 * | action        | what is written                                                                  |
 * |---------------|----------------------------------------------------------------------------------|
 * | `assign`      | the versions-per-node map (fenced), then placement pushes those nodes; an       |
 * |               | assign with only job writes before it goes in the record's own write (one script)|
 * | `unassign`    | the map, where the version is still this one (fenced), then placement           |
 * | `rollback`    | new job version (kind rollback, idempotency key per deployment) → its deployment |
 * |               | (deterministic id, created once) → this record's `rollbackDeploymentId`          |
 * |               | (fenced) → the job's active deployment                                           |
 * | `mark_stable` | the job's stable version (never lowered)                                         |
 * | `job_state`   | the job's state and message, only while this deployment is the job's active one |
 *
 * A write the fence refuses stops the sync (this control plane is no longer the leader). Every
 * step is idempotent, so a sync that fails half-way is simply run again.
 */
import { allowedFrom, canTransition, EdgeplaneError, type JobSpec, newId } from "@edgeplane/core";
import type { JobRecord, JobVersionRecord } from "@edgeplane/store";
import { createDeployment } from "../rollout/create.js";
import { deploymentAllowedFrom, isTerminalDeployment } from "../rollout/states.js";
import type { Action, DeploymentRecord, Plan } from "../rollout/types.js";
import type { RuntimeContext } from "./context.js";
import { createdRecord, createWriteOf, deploymentIdFor, sameLayout, updateWriteOf } from "./records.js";
import { deploymentTargets } from "./targets.js";

/** Writes a record under the revision guard and the fence; returns it with its new revision. */
export async function writeRecord(
  ctx: RuntimeContext,
  before: DeploymentRecord,
  next: DeploymentRecord,
): Promise<DeploymentRecord> {
  const revision = await ctx.deployments.update(
    updateWriteOf(before, next, ctx.clock.now()),
    guardOf(ctx, before, next),
  );
  return written(ctx, next, revision);
}

function guardOf(ctx: RuntimeContext, before: DeploymentRecord, next: DeploymentRecord) {
  return {
    expectedRevision: before.revision,
    ...(before.state !== next.state ? { allowedFrom: deploymentAllowedFrom(next.state) } : {}),
    fence: ctx.fence(),
  };
}

function written(ctx: RuntimeContext, next: DeploymentRecord, revision: number): DeploymentRecord {
  ctx.counters.deploymentWrites++;
  const record = sameLayout(next, { ...next, revision });
  ctx.remember(record);
  return record;
}

/**
 * Writes a record and, in the same script, the versions an `assign` action gives its nodes (a
 * rollout step is one round trip; the record saying nodes were dispatched and the versions map
 * dispatching them are never seen apart); then placement pushes the nodes that changed.
 */
async function writeRecordAssigning(
  ctx: RuntimeContext,
  before: DeploymentRecord,
  next: DeploymentRecord,
  assign: Extract<Action, { kind: "assign" }>,
): Promise<DeploymentRecord> {
  let revision = 0;
  const changed = await ctx.versions.assignBy(next.jobId, assign.version, next.id, async () => {
    const out = await ctx.deployments.updateAssigning(
      updateWriteOf(before, next, ctx.clock.now()),
      guardOf(ctx, before, next),
      assign,
    );
    revision = out.revision;
    return out.assigned;
  });
  ctx.counters.versionWrites++;
  const record = written(ctx, next, revision);
  await ctx.placeNodes(record.jobId, assign.version, changed);
  return record;
}

/** The first `assign` of `actions`, when only `job_state` actions come before it. */
function foldableAssign(actions: readonly Action[]): Extract<Action, { kind: "assign" }> | undefined {
  for (const a of actions) {
    if (a.kind === "assign") return a;
    if (a.kind !== "job_state") return undefined;
  }
  return undefined;
}

/** Applies `plan`, computed from `before`; resolves the record as written. */
export async function applyPlan(
  ctx: RuntimeContext,
  before: DeploymentRecord,
  plan: Plan,
): Promise<DeploymentRecord> {
  // The first assign goes in the record's own write when only job writes come before it (they
  // do not touch the versions map, so doing them after it changes nothing anyone relies on).
  const folded = plan.changed ? foldableAssign(plan.actions) : undefined;
  let d = before;
  if (folded !== undefined) d = await writeRecordAssigning(ctx, before, plan.deployment, folded);
  else if (plan.changed) d = await writeRecord(ctx, before, plan.deployment);
  // A success marks the version stable and moves the job's state: one job write when it can be.
  const state = plan.actions.find((a) => a.kind === "job_state");
  let stateWritten = false;
  for (const action of plan.actions) {
    if (action === folded) continue;
    if (action.kind === "mark_stable" && state?.kind === "job_state") {
      const written = await jobState(ctx, d, state.state, state.message, action.version);
      stateWritten = true;
      if (written === undefined || written.stableVersion < action.version)
        d = await applyAction(ctx, d, action);
      continue;
    }
    if (action.kind === "job_state" && stateWritten) continue;
    d = await applyAction(ctx, d, action);
  }
  return d;
}

async function applyAction(
  ctx: RuntimeContext,
  d: DeploymentRecord,
  action: Action,
): Promise<DeploymentRecord> {
  switch (action.kind) {
    case "assign": {
      const changed = await ctx.versions.assign(d.jobId, action.version, d.id, action.nodeIds, ctx.fence());
      ctx.counters.versionWrites++;
      await ctx.placeNodes(d.jobId, action.version, changed);
      return d;
    }
    case "unassign": {
      const changed = await ctx.versions.unassign(d.jobId, action.version, action.nodeIds, ctx.fence());
      ctx.counters.versionWrites++;
      await ctx.placeNodes(d.jobId, d.jobVersion, changed);
      return d;
    }
    case "rollback":
      return rollback(ctx, d, action.toVersion);
    case "mark_stable":
      await ctx.writeJob(d.jobId, (job) =>
        job.stableVersion >= action.version
          ? undefined
          : {
              state: job.state,
              message: job.stateMessage,
              details: job.stateDetails,
              stableVersion: action.version,
            },
      );
      return d;
    case "job_state":
      await jobState(ctx, d, action.state, action.message);
      return d;
  }
}

/**
 * Sets the job's state, only while `d` is its active deployment; with `stableVersion`, raises the
 * job's stable version in the same write (the caller marks it on its own when this wrote
 * nothing). Resolves the job as written, or undefined when nothing was written.
 */
async function jobState(
  ctx: RuntimeContext,
  d: DeploymentRecord,
  state: "pending" | "queued" | "running" | "completed" | "failed" | "stopped" | "deleted",
  message: string,
  stableVersion?: number,
): Promise<JobRecord | undefined> {
  // No target: the job is queued (no node matches), which the job sync decides and times.
  if (d.targets.length === 0 && (state === "running" || state === "completed")) {
    ctx.enqueue(`j:${d.jobId}`);
    return undefined;
  }
  return ctx.writeJob(
    d.jobId,
    (job) => {
      if (job.deploymentId !== d.id) return undefined;
      if (job.state === state && job.stateMessage === message) return undefined;
      if (job.state !== state && !canTransition(job.state, state)) return undefined;
      const raise = stableVersion !== undefined && job.stableVersion < stableVersion;
      return {
        state,
        message,
        details: { deployment_id: d.id, deployment_state: d.state, version: String(d.jobVersion) },
        ...(raise ? { stableVersion } : {}),
      };
    },
    [...allowedFrom(state), state],
  );
}

/**
 * The version the rollback wrote. A replayed put (same idempotency key) answers the job as it is
 * now, so the version is checked: the current one if it is the rollback's, else the newest kept
 * version of kind rollback from `toVersion` above the failed version.
 */
async function rollbackVersion(
  ctx: RuntimeContext,
  job: JobRecord,
  failedVersion: number,
  toVersion: number,
): Promise<JobVersionRecord | undefined> {
  const isOurs = (v: JobVersionRecord | undefined) =>
    v !== undefined && v.kind === "rollback" && v.sourceVersion === toVersion && v.version > failedVersion;
  const current = await ctx.spec(job.id, job.version);
  if (isOurs(current)) return current;
  const page = await ctx.jobStore.listVersions(job.id, { limit: 50 });
  return page.items.find((v) => isOurs(v));
}

/** The `rollback` action (idempotent per deployment: the planner repeats it until recorded). */
async function rollback(
  ctx: RuntimeContext,
  d: DeploymentRecord,
  toVersion: number,
): Promise<DeploymentRecord> {
  if (d.rollbackDeploymentId !== undefined) return d;
  const job = await ctx.jobStore.getJob(d.jobId);
  // A job that stopped or was deleted is not restarted by a rollback.
  if (job === undefined || !["pending", "queued", "running", "failed"].includes(job.state)) return d;
  const stable = await ctx.spec(d.jobId, toVersion);
  if (stable === undefined) {
    throw new EdgeplaneError(
      "failed_precondition",
      `cannot roll back deployment ${d.id}: version ${toVersion} is no longer kept`,
    );
  }
  const now = ctx.clock.now();
  const fence = ctx.fence();
  const spec = stable.spec as unknown as JobSpec;
  const put = await ctx.jobStore.putJob({
    namespace: job.namespace,
    name: job.name,
    type: spec.type,
    labels: spec.labels ?? {},
    spec: stable.spec,
    newId: newId("job", now),
    now,
    kind: "rollback",
    sourceVersion: toVersion,
    idempotencyKey: `rollback:${d.id}`,
    maxVersions: ctx.maxVersions,
    fence,
  });
  ctx.counters.jobWrites++;
  if (put.changed) ctx.wroteJob(put.job);
  else ctx.rememberJob(put.job);
  const version = await rollbackVersion(ctx, put.job, d.jobVersion, toVersion);
  if (version === undefined) {
    // A newer version was submitted meanwhile: it supersedes this deployment; nothing to roll back.
    ctx.log.warn("the rollback version cannot be found; a newer version took over", { deployment: d.id });
    return d;
  }
  const rbId = deploymentIdFor(job.id, version.version);
  const record = createDeployment({
    id: rbId,
    jobId: job.id,
    jobVersion: version.version,
    spec,
    targets: deploymentTargets(ctx.registry, stable.spec),
    now,
    rollbackOf: { deployment: d, toVersion },
  });
  const created = await ctx.deployments.create(createWriteOf(record, now), ctx.fence());
  if (created.created) ctx.counters.deploymentsCreated++;
  ctx.remember(createdRecord(record, created));
  // Recorded here before the job names it active, so a sync in between never sees it as a takeover.
  const updated = await writeRecord(ctx, d, { ...d, rollbackDeploymentId: rbId, updatedAt: now });
  await nameRollbackActive(ctx, job.id, d, version.version, toVersion);
  ctx.enqueue(`d:${rbId}`);
  return updated;
}

/**
 * The job write that makes the rollback deployment of `d` (rolling out `version`, the spec of
 * `toVersion`) the job's active one. The applier's last step of a rollback; the job sync repeats
 * it when a crash came before it (the job still names `d`, which names its rollback).
 */
export async function nameRollbackActive(
  ctx: RuntimeContext,
  jobId: string,
  d: Pick<DeploymentRecord, "id" | "jobVersion">,
  version: number,
  toVersion: number,
): Promise<void> {
  const rbId = deploymentIdFor(jobId, version);
  await ctx.writeJob(jobId, (j) =>
    j.deploymentId === rbId || j.version !== version
      ? undefined
      : {
          state: j.state === "running" ? "running" : canTransition(j.state, "running") ? "running" : j.state,
          message: `rolling back version ${d.jobVersion} to the spec of version ${toVersion} (as version ${version}), deployment ${rbId}`,
          details: { deployment_id: rbId, rollback_of: d.id },
          deploymentId: rbId,
        },
  );
}

/** Ends an active deployment whose job stopped, failed on a timeout, or was deleted. */
export async function abandon(ctx: RuntimeContext, d: DeploymentRecord, reason: string): Promise<void> {
  if (isTerminalDeployment(d.state)) return;
  const to = canTransitionDeployment(d.state) ? "cancelled" : "superseded";
  const now = ctx.clock.now();
  const event = { time: now, kind: to, reason, nodes: [], details: { cause: "job_ended" } } as const;
  const events = [...d.events, event].slice(-200);
  await writeRecord(ctx, d, {
    ...d,
    state: to,
    message: `${to}: ${reason}`,
    finishedAt: now,
    updatedAt: now,
    nextSteps: [],
    events,
  });
  if (d.rollbackOfDeploymentId !== undefined) ctx.enqueue(`d:${d.rollbackOfDeploymentId}`);
}

function canTransitionDeployment(state: DeploymentRecord["state"]): boolean {
  return deploymentAllowedFrom("cancelled").includes(state);
}
