/** The gRPC DeploymentService and JobService.PlanJob over the {@link DeploymentsService}: wire conversion only. */
import { toJson } from "@bufbuild/protobuf";
import { type DeploymentService, type JobService, JobSpecSchema, type ServiceImpl } from "@edgeplane/api";
import { EdgeplaneError } from "@edgeplane/core";
import { JSON_OPTIONS } from "../jobs/convert.js";
import { deploymentToMessage, planToMessage } from "./convert.js";
import type { DeploymentsService } from "./service.js";

/** The implementation of edgeplane.v1.DeploymentService. */
export function createDeploymentGrpcService(
  service: DeploymentsService,
): ServiceImpl<typeof DeploymentService> {
  const control = async (
    req: { id: string; reason: string },
    c: "pause" | "resume" | "promote" | "rollback" | "cancel",
  ) => ({
    deployment: deploymentToMessage(await service.control(req.id, c, req.reason)),
  });
  return {
    async listDeployments(req) {
      const page = await service.list({ jobId: req.jobId, limit: req.limit, nextToken: req.nextToken });
      return { items: page.items.map(deploymentToMessage), nextToken: page.nextToken };
    },
    async getDeployment(req) {
      return { deployment: deploymentToMessage(await service.get(req.id)) };
    },
    async *watchDeployment(req, ctx) {
      for await (const d of service.watch(req.id, ctx.signal)) yield { deployment: deploymentToMessage(d) };
    },
    pauseDeployment: (req) => control(req, "pause"),
    resumeDeployment: (req) => control(req, "resume"),
    promoteDeployment: (req) => control(req, "promote"),
    rollbackDeployment: (req) => control(req, "rollback"),
    cancelDeployment: (req) => control(req, "cancel"),
  };
}

/**
 * The handler of JobService.PlanJob (the dry run), for the JobService implementation:
 * `{ ...createJobGrpcService(jobs), planJob: createPlanJobHandler(deployments.service) }`.
 */
export function createPlanJobHandler(service: DeploymentsService): ServiceImpl<typeof JobService>["planJob"] {
  return async (req) => {
    if (!req.spec) {
      throw new EdgeplaneError("invalid_argument", "spec: is required", {
        details: [{ field: "spec", description: "is required" }],
      });
    }
    return planToMessage(await service.plan(toJson(JobSpecSchema, req.spec, JSON_OPTIONS)));
  };
}
