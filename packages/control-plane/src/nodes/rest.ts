/**
 * REST routes of the Nodes API (docs/nodes.md): list, get, drain, label. Responses are the proto
 * JSON form (`Node` with proto field names).
 */
import { invalidArgument } from "@edgeplane/core";
import { parseQuery } from "../http/query.js";
import type { Router } from "../http/router.js";
import { nodeToJson } from "./convert.js";
import type { NodesService } from "./service.js";

function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body)) throw invalidArgument("body", "must be a JSON object");
  return body as Record<string, unknown>;
}

/** Registers the Nodes routes. */
export function registerNodeRoutes(router: Router, nodes: NodesService): void {
  router.add("GET", "/api/v1/nodes", async (req) => {
    const q = parseQuery(req.query, {
      selector: "string",
      state: "list",
      states: "list",
      limit: "int",
      next_token: "string",
    });
    const states = [...(q.state ?? []), ...(q.states ?? [])];
    const page = nodes.list(
      { selector: q.selector, states, limit: q.limit, nextToken: q.next_token },
      q.state ? "state" : "states",
    );
    // next_token is always present: "" on the last page.
    return { body: { items: page.items.map(nodeToJson), next_token: page.nextToken } };
  });

  router.add("GET", "/api/v1/nodes/:id", async (req) => {
    parseQuery(req.query, {});
    return { body: { node: nodeToJson(nodes.get(req.params.id ?? "")) } };
  });

  router.add("POST", "/api/v1/nodes/:id/drain", async (req) => {
    parseQuery(req.query, {});
    const body = objectBody(await req.json());
    const { undrain = false, reason = "" } = body;
    if (typeof undrain !== "boolean") throw invalidArgument("undrain", "must be true or false");
    if (typeof reason !== "string") throw invalidArgument("reason", "must be a string");
    for (const key of Object.keys(body)) {
      if (key !== "undrain" && key !== "reason")
        throw invalidArgument(key, "is not a field of this request; use undrain, reason");
    }
    return { body: { node: nodeToJson(await nodes.drain(req.params.id ?? "", undrain, reason)) } };
  });

  router.add("POST", "/api/v1/nodes/:id/labels", async (req) => {
    parseQuery(req.query, {});
    const body = objectBody(await req.json());
    const { labels = {}, remove = [] } = body;
    if (typeof labels !== "object" || labels === null || Array.isArray(labels))
      throw invalidArgument("labels", 'must be an object of label → value, such as {"tier": "gold"}');
    if (!Array.isArray(remove))
      throw invalidArgument("remove", 'must be a list of label keys, such as ["tier"]');
    for (const key of Object.keys(body)) {
      if (key !== "labels" && key !== "remove")
        throw invalidArgument(key, "is not a field of this request; use labels, remove");
    }
    const node = await nodes.setLabels(req.params.id ?? "", labels as Record<string, unknown>, remove);
    return { body: { node: nodeToJson(node) } };
  });
}
