/**
 * REST routes of the Executions API (docs/executions.md): list a job's executions, get one, read
 * or follow its log (Server-Sent Events), cancel it. Responses are the proto JSON form.
 */
import type { ServerResponse } from "node:http";
import { EdgeplaneError, invalidArgument } from "@edgeplane/core";
import type { LogLineRecord } from "@edgeplane/store";
import { parseQuery } from "../http/query.js";
import type { Router } from "../http/router.js";
import { executionToJson, logLineText, logLineToJson } from "./convert.js";
import type { ExecutionsService } from "./service.js";

/** Options of {@link registerExecutionRoutes}. */
export interface ExecutionRoutesOptions {
  /** A comment is written to an idle event stream this often; default 15 s. */
  readonly keepAliveMs?: number;
}

function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body)) throw invalidArgument("body", "must be a JSON object");
  return body as Record<string, unknown>;
}

/** Writes `text`, waiting for the socket to drain when its buffer is full; false once it closed. */
async function write(res: ServerResponse, text: string, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted || res.destroyed) return false;
  if (res.write(text)) return true;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      res.off("drain", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    res.once("drain", done);
    signal.addEventListener("abort", done, { once: true });
  });
  return !signal.aborted && !res.destroyed;
}

/** Registers the Executions routes. */
export function registerExecutionRoutes(
  router: Router,
  executions: ExecutionsService,
  options: ExecutionRoutesOptions = {},
): void {
  const keepAliveMs = options.keepAliveMs ?? 15_000;

  router.add("GET", "/api/v1/jobs/:id/executions", async (req) => {
    const q = parseQuery(req.query, {
      state: "list",
      states: "list",
      node_id: "string",
      include_archived: "bool",
      namespace: "string",
      limit: "int",
      next_token: "string",
    });
    const page = await executions.list(
      req.params.id ?? "",
      {
        states: [...(q.state ?? []), ...(q.states ?? [])],
        nodeId: q.node_id,
        includeArchived: q.include_archived,
        namespace: q.namespace,
        limit: q.limit,
        nextToken: q.next_token,
      },
      q.state ? "state" : "states",
    );
    // next_token is always present: "" on the last page.
    return { body: { items: page.items.map(executionToJson), next_token: page.nextToken } };
  });

  router.add("GET", "/api/v1/executions/:id", async (req) => {
    parseQuery(req.query, {});
    return { body: { execution: executionToJson(await executions.get(req.params.id ?? "")) } };
  });

  router.add("GET", "/api/v1/executions/:id/logs", async (req) => {
    const q = parseQuery(req.query, { tail: "int", follow: "bool", format: "string" });
    const format = q.format ?? "json";
    if (format !== "json" && format !== "text") throw invalidArgument("format", 'must be "json" or "text"');
    const id = req.params.id ?? "";
    if (!q.follow) {
      const read = await executions.logs(id, { tail: q.tail });
      if (format === "json") return { body: { lines: read.lines.map(logLineToJson), dropped: read.dropped } };
      const text = read.lines.map((l) => `${logLineText(l)}\n`).join("");
      const { res } = req.raw;
      res.writeHead(200, {
        "content-type": "text/plain; charset=utf-8",
        "content-length": Buffer.byteLength(text),
        "cache-control": "no-store",
        "x-edgeplane-dropped": String(read.dropped),
      });
      res.end(text);
      return undefined;
    }

    // Follow: Server-Sent Events (json) or a chunked text stream. Resume with Last-Event-ID.
    const lastEventId = req.headers["last-event-id"];
    let after: number | undefined;
    if (typeof lastEventId === "string" && lastEventId !== "") {
      if (!/^\d{1,15}$/.test(lastEventId)) throw invalidArgument("Last-Event-ID", "must be a line position");
      after = Number(lastEventId);
    }
    const stream = executions.follow(id, { tail: q.tail, after, signal: req.signal });
    // The first chunk before any header: an unknown execution is still a plain 404.
    const first = await stream.next();
    const { res } = req.raw;
    const sse = format === "json";
    res.writeHead(200, {
      "content-type": sse ? "text/event-stream; charset=utf-8" : "text/plain; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.flushHeaders();
    let dropped = 0;
    let lastWrite = Date.now();
    const lines = (ls: readonly LogLineRecord[]): string =>
      sse
        ? ls.map((l) => `id: ${l.seq}\ndata: ${JSON.stringify(logLineToJson(l))}\n\n`).join("")
        : ls.map((l) => `${logLineText(l)}\n`).join("");
    try {
      let chunk = first;
      while (!chunk.done) {
        const c = chunk.value;
        let out = "";
        if (c.dropped !== dropped && sse)
          out += `event: dropped\ndata: ${JSON.stringify({ dropped: c.dropped })}\n\n`;
        dropped = c.dropped;
        out += lines(c.lines);
        if (c.end !== undefined && sse)
          out += `event: end\ndata: ${JSON.stringify({ state: c.end, dropped: c.dropped })}\n\n`;
        if (out === "" && Date.now() - lastWrite >= keepAliveMs) out = sse ? ": keep-alive\n\n" : "";
        if (out !== "") {
          if (!(await write(res, out, req.signal))) break;
          lastWrite = Date.now();
        }
        if (c.end !== undefined) break;
        chunk = await stream.next();
      }
    } catch (err) {
      // Headers are out: say what happened as an event, then end.
      const e = EdgeplaneError.from(err);
      if (sse && !res.destroyed) res.write(`event: error\ndata: ${JSON.stringify(e.toJSON().error)}\n\n`);
    } finally {
      await stream.return(undefined);
      if (!res.destroyed) res.end();
    }
    return undefined;
  });

  router.add("POST", "/api/v1/executions/:id/cancel", async (req) => {
    parseQuery(req.query, {});
    const body = objectBody(await req.json());
    const { reason = "" } = body;
    if (typeof reason !== "string") throw invalidArgument("reason", "must be a string");
    for (const key of Object.keys(body)) {
      if (key !== "reason") throw invalidArgument(key, "is not a field of this request; use reason");
    }
    return { body: { execution: executionToJson(await executions.cancel(req.params.id ?? "", reason)) } };
  });
}
