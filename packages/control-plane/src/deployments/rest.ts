/**
 * REST routes of the Deployments API (docs/api.md, "Deployments") and the dry run
 * `POST /api/v1/jobs/plan`. Responses are the proto JSON form with proto field names.
 */
import { invalidArgument } from "@edgeplane/core";
import { rollout } from "@edgeplane/orchestrator";
import { parseQuery } from "../http/query.js";
import type { Router } from "../http/router.js";
import { deploymentToJson, planToJson } from "./convert.js";
import type { DeploymentsService } from "./service.js";

function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body)) throw invalidArgument("body", "must be a JSON object");
  return body as Record<string, unknown>;
}

/** Registers the Deployments routes and `POST /api/v1/jobs/plan`. */
export function registerDeploymentRoutes(router: Router, service: DeploymentsService): void {
  router.add("GET", "/api/v1/deployments", async (req) => {
    const q = parseQuery(req.query, { job_id: "string", limit: "int", next_token: "string" });
    const page = await service.list({ jobId: q.job_id, limit: q.limit, nextToken: q.next_token });
    // next_token is always present: "" on the last page.
    return { body: { items: page.items.map(deploymentToJson), next_token: page.nextToken } };
  });

  router.add("GET", "/api/v1/deployments/:id", async (req) => {
    parseQuery(req.query, {});
    return { body: { deployment: deploymentToJson(await service.get(req.params.id ?? "")) } };
  });

  // Server-sent events: one `deployment` event per change, until it ends or the client leaves.
  router.add("GET", "/api/v1/deployments/:id/watch", async (req) => {
    parseQuery(req.query, {});
    const id = req.params.id ?? "";
    const first = await service.get(id); // 404 before the stream starts
    const res = req.raw.res;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
    });
    res.write(`: watching deployment ${first.id}\n\n`);
    try {
      for await (const d of service.watch(id, req.signal)) {
        res.write(`event: deployment\ndata: ${JSON.stringify(deploymentToJson(d))}\n\n`);
      }
    } finally {
      res.end();
    }
    return undefined;
  });

  for (const control of rollout.CONTROLS) {
    router.add("POST", `/api/v1/deployments/:id/${control}`, async (req) => {
      parseQuery(req.query, {});
      const body = objectBody(await req.json());
      for (const key of Object.keys(body))
        if (key !== "reason") throw invalidArgument(key, "is not a field of this request; use reason");
      if (body.reason !== undefined && typeof body.reason !== "string")
        throw invalidArgument("reason", "must be a string");
      const d = await service.control(req.params.id ?? "", control, body.reason ?? "");
      return { body: { deployment: deploymentToJson(d) } };
    });
  }

  router.add("POST", "/api/v1/jobs/plan", async (req) => {
    parseQuery(req.query, {});
    return { body: planToJson(await service.plan(await req.json())) };
  });
}
