/**
 * Deployment views (the summaries the orchestrator keeps next to each record) → API messages and
 * their JSON form. REST JSON is always produced from the proto message with proto field names,
 * defaults included (a counter at 0 is shown as 0), so REST and gRPC cannot disagree on a shape.
 */
import { create, type JsonValue, toJson } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Deployment,
  DeploymentSchema,
  type PlanJobResponse,
  PlanJobResponseSchema,
} from "@edgeplane/api";
import type { rollout } from "@edgeplane/orchestrator";
import { changeToMessage } from "../jobs/convert.js";
import type { SpecChangeJson } from "../jobs/diff.js";

/** What the API shows of a deployment: the record without its per-node table. */
export type DeploymentView = Omit<rollout.DeploymentRecord, "nodes" | "targets">;

/** JSON options of the Deployments API: proto field names, defaults emitted. */
export const DEPLOYMENT_JSON_OPTIONS = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;

function ts(ms: number | undefined): Timestamp | undefined {
  return ms !== undefined && ms > 0 ? timestampFromMs(ms) : undefined;
}

/** A deployment view as the proto message. */
export function deploymentToMessage(d: DeploymentView): Deployment {
  const c = d.counters;
  return create(DeploymentSchema, {
    id: d.id,
    jobId: d.jobId,
    namespace: d.namespace,
    jobName: d.jobName,
    jobVersion: d.jobVersion,
    strategy: d.strategy,
    state: d.state,
    progress: d.progress,
    counters: {
      targets: c.targets,
      waves: c.waves,
      currentWave: c.currentWave,
      updated: c.updated,
      healthy: c.healthy,
      unhealthy: c.unhealthy,
      failed: c.failed,
      canaries: c.canaries,
    },
    nextSteps: [...d.nextSteps],
    message: d.message,
    createdAt: ts(d.createdAt),
    updatedAt: ts(d.updatedAt),
    finishedAt: ts(d.finishedAt),
    revision: d.revision,
    isRollback: d.isRollback,
    rollbackOfDeploymentId: d.rollbackOfDeploymentId ?? "",
    rollbackDeploymentId: d.rollbackDeploymentId ?? "",
    events: d.events.map((e) => ({
      time: ts(e.time),
      kind: e.kind,
      reason: e.reason,
      nodes: [...e.nodes],
      details: { ...e.details },
    })),
  });
}

/** A deployment view in its REST JSON form. */
export function deploymentToJson(d: DeploymentView): JsonValue {
  return toJson(DeploymentSchema, deploymentToMessage(d), DEPLOYMENT_JSON_OPTIONS);
}

/** A dry run (`PlanJob`), as the service computes it. */
export interface PlanResult {
  /** The job the spec would update; "" when it would create one. */
  readonly jobId: string;
  /** The version it would replace (0 when new). */
  readonly currentVersion: number;
  readonly changed: boolean;
  readonly changes: readonly SpecChangeJson[];
  /** Every node the selector matches now, sorted. */
  readonly matchingNodeIds: readonly string[];
  /** The canary set (index 0, canary) and the waves, in dispatch order, over the targets. */
  readonly waves: ReadonlyArray<{
    readonly index: number;
    readonly canary: boolean;
    readonly nodeIds: readonly string[];
  }>;
  readonly warnings: readonly string[];
}

/** A dry run as the proto message. */
export function planToMessage(p: PlanResult): PlanJobResponse {
  return create(PlanJobResponseSchema, {
    jobId: p.jobId,
    currentVersion: p.currentVersion,
    changed: p.changed,
    changes: p.changes.map(changeToMessage),
    matchingNodeIds: [...p.matchingNodeIds],
    waves: p.waves.map((w) => ({ index: w.index, canary: w.canary, nodeIds: [...w.nodeIds] })),
    warnings: [...p.warnings],
  });
}

/** A dry run in its REST JSON form. */
export function planToJson(p: PlanResult): JsonValue {
  return toJson(PlanJobResponseSchema, planToMessage(p), DEPLOYMENT_JSON_OPTIONS);
}
