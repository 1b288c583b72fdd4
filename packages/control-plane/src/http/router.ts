/**
 * A small HTTP router for the REST API: method + path pattern (`/api/v1/jobs/:id`) → handler.
 * Handlers return data; this file owns the HTTP details: JSON bodies with a size limit checked
 * before parsing, query parameters, the one error → status mapping, and request logging.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { EdgeplaneError, type Logger } from "@edgeplane/core";

/** The largest request body accepted (1 MiB); larger is a 413 before any parsing. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** What a handler gets. */
export interface RouteRequest {
  readonly method: string;
  readonly path: string;
  /** Path parameters (`:id` → params.id), URL-decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage["headers"];
  /** The JSON body (`undefined` when empty); 413 over {@link MAX_BODY_BYTES}, 400 when not JSON. */
  json(): Promise<unknown>;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
  /** The raw objects, for streaming responses (SSE). */
  readonly raw: { readonly req: IncomingMessage; readonly res: ServerResponse };
}

/** What a handler returns: a JSON body (status 200 unless given), or `undefined` when it wrote the response. */
export type RouteResult = { readonly status?: number; readonly body: unknown } | undefined;

export type RouteHandler = (req: RouteRequest) => Promise<RouteResult>;

interface Route {
  readonly method: string;
  readonly segments: readonly string[];
  readonly handler: RouteHandler;
}

/** Reads a request body up to `limit` bytes; rejects with resource_exhausted beyond it. */
export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(tooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function tooLarge(limit: number): EdgeplaneError {
  return new EdgeplaneError(
    "resource_exhausted",
    `request body is larger than ${limit} bytes; send a smaller spec (config is limited to 256 KiB)`,
    { details: [{ field: "body", description: `larger than ${limit} bytes` }] },
  );
}

/** The router. */
export class Router {
  readonly #routes: Route[] = [];

  /** Adds a route; `pattern` segments starting with ":" are parameters. */
  add(method: string, pattern: string, handler: RouteHandler): this {
    this.#routes.push({ method, segments: pattern.split("/").filter(Boolean), handler });
    return this;
  }

  /** Finds the route of a request: the handler and params, or the methods allowed on that path. */
  match(
    method: string,
    path: string,
  ): { handler: RouteHandler; params: Record<string, string> } | { allowed: string[] } {
    const parts = path.split("/").filter(Boolean);
    const allowed: string[] = [];
    for (const route of this.#routes) {
      if (route.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length && ok; i++) {
        const seg = route.segments[i] as string;
        const part = parts[i] as string;
        if (seg.startsWith(":")) {
          try {
            params[seg.slice(1)] = decodeURIComponent(part);
          } catch {
            ok = false;
          }
        } else ok = seg === part;
      }
      if (!ok) continue;
      if (route.method === method || (method === "HEAD" && route.method === "GET")) {
        return { handler: route.handler, params };
      }
      allowed.push(route.method);
    }
    return { allowed };
  }

  /** Serves one request: routing, JSON, errors. Never throws. */
  async handle(req: IncomingMessage, res: ServerResponse, log: Logger): Promise<void> {
    const started = performance.now();
    const url = new URL(req.url ?? "/", "http://localhost");
    const method = req.method ?? "GET";
    const controller = new AbortController();
    res.on("close", () => controller.abort());
    try {
      const found = this.match(method, url.pathname);
      if ("allowed" in found) {
        if (found.allowed.length > 0) {
          // 405 is the one HTTP status with no error code of its own: answer it here.
          res.setHeader("allow", found.allowed.join(", "));
          const e = new EdgeplaneError(
            "unimplemented",
            `${method} is not allowed on ${url.pathname}; use ${found.allowed.join(" or ")}`,
          );
          sendJson(res, 405, e.toJSON());
          return;
        }
        throw new EdgeplaneError("not_found", `no route ${method} ${url.pathname}; see docs/api.md`);
      }
      let bodyPromise: Promise<unknown> | undefined;
      const request: RouteRequest = {
        method,
        path: url.pathname,
        params: found.params,
        query: url.searchParams,
        headers: req.headers,
        signal: controller.signal,
        raw: { req, res },
        json: () => {
          bodyPromise ??= readBody(req).then((buf) => parseJson(buf));
          return bodyPromise;
        },
      };
      const result = await found.handler(request);
      if (result !== undefined) sendJson(res, result.status ?? 200, result.body);
    } catch (err) {
      const e = EdgeplaneError.from(err);
      if (e.code === "internal")
        log.error("request failed", { method, path: url.pathname, err: e, cause: e.cause });
      if (!res.headersSent) sendJson(res, e.httpStatus, e.toJSON());
      else res.end();
    } finally {
      log.debug("request", {
        method,
        path: url.pathname,
        status: res.statusCode,
        ms: Math.round((performance.now() - started) * 10) / 10,
      });
    }
  }
}

function parseJson(buf: Buffer): unknown {
  if (buf.length === 0) return undefined;
  try {
    return JSON.parse(buf.toString("utf8"));
  } catch (err) {
    throw new EdgeplaneError(
      "invalid_argument",
      `request body is not valid JSON: ${(err as Error).message}`,
      {
        details: [{ field: "body", description: "not valid JSON" }],
      },
    );
  }
}

/** Writes a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(text);
}
