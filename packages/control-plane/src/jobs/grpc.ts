/** The gRPC JobService over the {@link JobsService}: wire conversion only. */
import { toJson } from "@bufbuild/protobuf";
import { type JobService, JobSpecSchema, type ServiceImpl } from "@edgeplane/api";
import { EdgeplaneError } from "@edgeplane/core";
import { changeToMessage, JSON_OPTIONS, jobToMessage, versionToMessage } from "./convert.js";
import type { JobsService } from "./service.js";

/** The implementation of edgeplane.v1.JobService, but PlanJob (the rollout runtime answers it). */
export function createJobGrpcService(jobs: JobsService): Omit<ServiceImpl<typeof JobService>, "planJob"> {
  return {
    async putJob(req) {
      if (!req.spec) {
        throw new EdgeplaneError("invalid_argument", "spec: is required", {
          details: [{ field: "spec", description: "is required" }],
        });
      }
      const outcome = await jobs.put(toJson(JobSpecSchema, req.spec, JSON_OPTIONS), {
        expectedVersion: req.expectedVersion,
        expectedRevision: req.expectedRevision,
        idempotencyKey: req.idempotencyKey,
      });
      return { job: jobToMessage(outcome.job), changed: outcome.changed, message: outcome.message };
    },
    async getJob(req) {
      return { job: jobToMessage(await jobs.get(req.id || req.name, req.namespace)) };
    },
    async listJobs(req) {
      const page = await jobs.list({
        namespace: req.namespace,
        limit: req.limit,
        nextToken: req.nextToken,
        labels: req.labels,
        states: req.states,
        types: req.types,
        orderBy: req.orderBy,
        order: req.order,
        includeDeleted: req.includeDeleted,
      });
      return { items: page.items.map(jobToMessage), nextToken: page.nextToken };
    },
    async stopJob(req) {
      return { job: jobToMessage(await jobs.stop(req.id, req.reason, req.expectedRevision)) };
    },
    async deleteJob(req) {
      return { job: jobToMessage(await jobs.delete(req.id, req.expectedRevision)) };
    },
    async listJobVersions(req) {
      const page = await jobs.versions(req.id, { limit: req.limit, nextToken: req.nextToken });
      return { items: page.items.map(versionToMessage), nextToken: page.nextToken };
    },
    async getJobVersion(req) {
      return { version: versionToMessage(await jobs.version(req.id, req.version)) };
    },
    async diffJobVersions(req) {
      const d = await jobs.diff(req.id, req.from, req.to);
      return { from: d.from, to: d.to, changes: d.changes.map(changeToMessage) };
    },
    async revertJob(req) {
      const outcome = await jobs.revert(req.id, req.version, req.expectedRevision);
      return { job: jobToMessage(outcome.job), changed: outcome.changed, message: outcome.message };
    },
  };
}
