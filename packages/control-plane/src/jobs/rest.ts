/**
 * REST routes of the Jobs API (see docs/api.md). Each route validates its query parameters and
 * calls the {@link JobsService}; responses are the proto JSON form.
 */
import { EdgeplaneError } from "@edgeplane/core";
import { parseQuery } from "../http/query.js";
import type { Router } from "../http/router.js";
import { jobToJson, versionToJson } from "./convert.js";
import type { JobsService } from "./service.js";

function positiveInt(field: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (value < 0) {
    throw new EdgeplaneError("invalid_argument", `${field}: must not be negative`, {
      details: [{ field, description: "must not be negative" }],
    });
  }
  return value;
}

/** Registers the Jobs routes. */
export function registerJobRoutes(router: Router, jobs: JobsService): void {
  router.add("POST", "/api/v1/jobs", async (req) => {
    const q = parseQuery(req.query, { expected_version: "int", expected_revision: "int" });
    const header = req.headers["idempotency-key"];
    const outcome = await jobs.put(await req.json(), {
      expectedVersion: positiveInt("expected_version", q.expected_version),
      expectedRevision: positiveInt("expected_revision", q.expected_revision),
      idempotencyKey: typeof header === "string" ? header : undefined,
    });
    return {
      status: outcome.created ? 201 : 200,
      body: { job: jobToJson(outcome.job), changed: outcome.changed, message: outcome.message },
    };
  });

  router.add("GET", "/api/v1/jobs", async (req) => {
    const q = parseQuery(req.query, {
      namespace: "string",
      limit: "int",
      next_token: "string",
      labels: "string",
      states: "list",
      types: "list",
      order_by: "string",
      order: "string",
      include_deleted: "bool",
    });
    const page = await jobs.list({
      namespace: q.namespace,
      limit: q.limit,
      nextToken: q.next_token,
      labels: q.labels,
      states: q.states,
      types: q.types,
      orderBy: q.order_by,
      order: q.order,
      includeDeleted: q.include_deleted,
    });
    // next_token is always present: "" on the last page.
    return { body: { items: page.items.map(jobToJson), next_token: page.nextToken } };
  });

  router.add("GET", "/api/v1/jobs/:id", async (req) => {
    const q = parseQuery(req.query, { namespace: "string" });
    return { body: { job: jobToJson(await jobs.get(req.params.id ?? "", q.namespace)) } };
  });

  router.add("POST", "/api/v1/jobs/:id/stop", async (req) => {
    const q = parseQuery(req.query, { expected_revision: "int", reason: "string" });
    const body = (await req.json()) as { reason?: unknown } | undefined;
    const reason = typeof body?.reason === "string" ? body.reason : (q.reason ?? "");
    return { body: { job: jobToJson(await jobs.stop(req.params.id ?? "", reason, q.expected_revision)) } };
  });

  router.add("DELETE", "/api/v1/jobs/:id", async (req) => {
    const q = parseQuery(req.query, { expected_revision: "int" });
    return { body: { job: jobToJson(await jobs.delete(req.params.id ?? "", q.expected_revision)) } };
  });

  router.add("GET", "/api/v1/jobs/:id/versions", async (req) => {
    const q = parseQuery(req.query, { limit: "int", next_token: "string" });
    const page = await jobs.versions(req.params.id ?? "", { limit: q.limit, nextToken: q.next_token });
    return { body: { items: page.items.map(versionToJson), next_token: page.nextToken } };
  });

  router.add("GET", "/api/v1/jobs/:id/versions/:n", async (req) => {
    parseQuery(req.query, {});
    const n = Number(req.params.n);
    return { body: { version: versionToJson(await jobs.version(req.params.id ?? "", n)) } };
  });

  router.add("GET", "/api/v1/jobs/:id/diff", async (req) => {
    const q = parseQuery(req.query, { from: "int", to: "int" });
    const d = await jobs.diff(req.params.id ?? "", positiveInt("from", q.from), positiveInt("to", q.to));
    return { body: d };
  });

  router.add("POST", "/api/v1/jobs/:id/revert", async (req) => {
    const q = parseQuery(req.query, { expected_revision: "int" });
    const body = (await req.json()) as { version?: unknown } | undefined;
    const version = body?.version;
    if (typeof version !== "number" || !Number.isInteger(version) || version < 1) {
      throw new EdgeplaneError(
        "invalid_argument",
        'version: send {"version": n} with the version to revert to',
        {
          details: [{ field: "version", description: "must be a positive integer" }],
        },
      );
    }
    const outcome = await jobs.revert(req.params.id ?? "", version, q.expected_revision);
    return { body: { job: jobToJson(outcome.job), changed: outcome.changed, message: outcome.message } };
  });
}
