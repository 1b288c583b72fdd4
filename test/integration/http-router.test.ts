/** The REST router over a real HTTP server: routing, params, body limits, error mapping. */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { MAX_BODY_BYTES, Router } from "@edgeplane/control-plane";
import { createLogger, EdgeplaneError } from "@edgeplane/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let server: Server;
let base: string;

beforeAll(async () => {
  const router = new Router()
    .add("GET", "/api/v1/things/:id", async (req) => ({ body: { id: req.params.id, q: req.query.get("q") } }))
    .add("POST", "/api/v1/things", async (req) => ({ status: 201, body: { got: await req.json() } }))
    .add("GET", "/boom", async () => {
      throw new TypeError("kaput");
    })
    .add("GET", "/conflict", async () => {
      throw new EdgeplaneError("aborted", "expected version 3, current 4: re-read and retry", {
        metadata: { current_version: 4 },
      });
    });
  const log = createLogger({ component: "test", sink: () => undefined });
  server = createServer((req, res) => void router.handle(req, res, log));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe("Router", () => {
  it("routes by method and pattern, decoding params", async () => {
    const res = await fetch(`${base}/api/v1/things/a%2Fb?q=1`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: "a/b", q: "1" });
  });

  it("parses a JSON body", async () => {
    const res = await fetch(`${base}/api/v1/things`, { method: "POST", body: JSON.stringify({ a: 1 }) });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ got: { a: 1 } });
  });

  it("answers 404 with the error body for an unknown route", async () => {
    const res = await fetch(`${base}/nope`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("not_found");
  });

  it("answers 405 with Allow for a known path and another method", async () => {
    const res = await fetch(`${base}/api/v1/things`, { method: "DELETE" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
  });

  it("refuses a body over 1 MiB with 413 before parsing", async () => {
    const big = JSON.stringify({ pad: "x".repeat(MAX_BODY_BYTES) });
    const res = await fetch(`${base}/api/v1/things`, { method: "POST", body: big });
    expect(res.status).toBe(413);
    const body = (await res.json()) as { error: { code: string; details: Array<{ field: string }> } };
    expect(body.error.code).toBe("resource_exhausted");
    expect(body.error.details[0]?.field).toBe("body");
  });

  it("refuses an oversized chunked body (no content-length) with 413", async () => {
    const chunk = "x".repeat(64 * 1024);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new TextEncoder().encode(chunk));
        controller.close();
      },
    });
    const res = await fetch(`${base}/api/v1/things`, {
      method: "POST",
      body: stream,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(413);
  });

  it("answers 400 naming the body for invalid JSON", async () => {
    const res = await fetch(`${base}/api/v1/things`, { method: "POST", body: "{nope" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_argument");
  });

  it("maps errors once: unexpected → 500 internal, aborted → 409 with metadata", async () => {
    const boom = await fetch(`${base}/boom`);
    expect(boom.status).toBe(500);
    const conflict = await fetch(`${base}/conflict`);
    expect(conflict.status).toBe(409);
    expect(await conflict.json()).toEqual({
      error: {
        code: "aborted",
        message: "expected version 3, current 4: re-read and retry",
        details: [],
        metadata: { current_version: 4 },
      },
    });
  });
});
