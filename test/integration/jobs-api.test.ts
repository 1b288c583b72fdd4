/**
 * The Jobs API end to end: a real control plane (memory store and real Redis), driven over REST
 * and over gRPC through the generic client, including the bad inputs the issue lists.
 */
import { randomUUID } from "node:crypto";
import { type Client, createClient, JobService } from "@edgeplane/api";
import { type ControlPlane, startControlPlane } from "@edgeplane/control-plane";
import { type EdgeplaneError, fromGrpcStatus } from "@edgeplane/core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

type Json = Record<string, unknown>;
interface JobJson {
  id: string;
  spec: Json & { name: string; namespace: string; labels?: Record<string, string> };
  status: {
    version: number;
    revision: number;
    state: { state_type: string; message?: string };
    created_at: string;
  };
}

const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

describe.each(["memory", "redis"] as const)("Jobs API on the %s store", (kind) => {
  let cp: ControlPlane;
  let grpc: Client<typeof JobService>;

  async function http(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const res = await fetch(`${cp.httpUrl}${path}`, {
      method,
      headers: { "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Json };
  }
  const put = (spec: unknown, query = "", headers?: Record<string, string>) =>
    http("POST", `/api/v1/jobs${query}`, spec, headers);
  const pipelineConfig = { input: { generate: { interval: "1s", message: {} } }, output: { stdout: {} } };
  const queryConfig = { command: "uname", args: ["-a"] };
  const spec = (name: string, extra: Json = {}) => ({
    name,
    type: "pipeline",
    namespace: ns,
    config: pipelineConfig,
    ...extra,
  });
  let ns = "";

  beforeAll(async () => {
    cp = await startControlPlane({
      grpcAddr: "127.0.0.1:0",
      httpAddr: "127.0.0.1:0",
      store: kind === "memory" ? "memory" : inject("redisUrl"),
      redisPrefix: `t${randomUUID().slice(0, 8)}`,
      logger: quiet,
    });
    grpc = createClient(JobService, cp.grpcAddress, { fromStatus: fromGrpcStatus, defaultTimeoutMs: 10_000 });
  });

  afterAll(async () => {
    grpc?.close();
    await cp?.stop({ graceMs: 1000 });
  });

  // Each test gets its own namespace so they do not see each other's jobs.
  let counter = 0;
  const fresh = () => {
    ns = `ns${++counter}-${randomUUID().slice(0, 6)}`;
    return ns;
  };

  it("creates with server id, version 1, revision 1, pending, defaults applied", async () => {
    fresh();
    const res = await put(spec("log-processor", { labels: { env: "production" } }));
    expect(res.status).toBe(201);
    const job = res.body.job as JobJson;
    expect(res.body.changed).toBe(true);
    expect(job.id).toMatch(/^job-/);
    expect(job.status.version).toBe(1);
    expect(job.status.revision).toBe(1);
    expect(job.status.state.state_type).toBe("pending");
    expect(job.status.created_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(job.spec).toMatchObject({
      name: "log-processor",
      namespace: ns,
      priority: 50,
      deployment: { strategy: "immediate", max_failed_nodes: 10, health_check: { min_healthy_time: "30s" } },
    });
  });

  it("an identical spec is a no-op that says so; a change bumps version and revision", async () => {
    fresh();
    const a = (await put(spec("svc"))).body.job as JobJson;
    const same = await put(spec("svc", { priority: 50 }));
    expect(same.status).toBe(200);
    expect(same.body.changed).toBe(false);
    expect(String(same.body.message)).toMatch(/unchanged/);
    expect((same.body.job as JobJson).status.version).toBe(1);
    const changed = await put(spec("svc", { priority: 60 }));
    expect(changed.body.changed).toBe(true);
    const job = changed.body.job as JobJson;
    expect(job.id).toBe(a.id);
    expect(job.status.version).toBe(2);
    // The placement controller may already have moved the job to "queued" (a status change bumps
    // the revision only), so the revision is at least the version, not exactly 2.
    expect(job.status.revision).toBeGreaterThanOrEqual(2);
    expect(job.status.revision).toBeGreaterThanOrEqual(job.status.version);
  });

  it("check-and-set: a mismatch is 409 with the current values; of 50 concurrent updates exactly one wins", async () => {
    fresh();
    await put(spec("cas"));
    const miss = await put(spec("cas", { priority: 1 }), "?expected_version=7");
    expect(miss.status).toBe(409);
    expect(miss.body.error).toMatchObject({ code: "aborted", metadata: { current_version: 1 } });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => put(spec("cas", { priority: 100 + i }), "?expected_version=1")),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(49);
  });

  it("an idempotency key makes a retried submit apply once", async () => {
    fresh();
    const key = randomUUID();
    const first = await put(spec("idem", { priority: 7 }), "", { "idempotency-key": key });
    const again = await put(spec("idem", { priority: 7 }), "", { "idempotency-key": key });
    expect((again.body.job as JobJson).id).toBe((first.body.job as JobJson).id);
    expect((again.body.job as JobJson).status.version).toBe(1);
  });

  it.each([
    [{ name: "x", type: "pipeline", colour: "blue" }, 400, "spec.colour"],
    [{ name: "x", type: "pipeline", id: "job-1" }, 400, "spec.id"],
    [{ name: "x", type: "pipeline", status: {} }, 400, "spec.status"],
    [{ name: "x", type: "batch" }, 400, "spec.type"],
    [{ type: "pipeline" }, 400, "spec.name"],
    [
      { name: "x", type: "pipeline", selector: { match_expressions: ["a=b", "tier in (x"] } },
      400,
      "spec.selector.match_expressions[1]",
    ],
    [{ name: "x", type: "pipeline", meta: { "edgeplane.io/x": "y" } }, 400, 'spec.meta["edgeplane.io/x"]'],
    [
      { name: "x", type: "pipeline", deployment: { strategy: "rolling" } },
      400,
      "spec.deployment.health_check.deadline",
    ],
  ])("refuses %j with %d naming %s", async (body, status, field) => {
    fresh();
    const res = await put({ namespace: ns, ...body });
    expect(res.status).toBe(status);
    const error = res.body.error as { code: string; details: Array<{ field: string; description: string }> };
    expect(error.code).toBe("invalid_argument");
    expect(error.details.map((d) => d.field)).toContain(field);
  });

  it("names the byte position of a bad expression", async () => {
    fresh();
    const res = await put(spec("x", { selector: { match_expressions: ["tier in (x"] } }));
    const detail = (res.body.error as { details: Array<{ description: string }> }).details[0];
    expect(detail?.description).toMatch(/byte \d+/);
  });

  it("refuses a body over 1 MiB with 413 and a non-JSON body with 400; nothing is stored", async () => {
    fresh();
    const big = await put(spec("big", { config: { blob: "x".repeat(1024 * 1024) } }));
    expect(big.status).toBe(413);
    const garbage = await put("{nope");
    expect(garbage.status).toBe(400);
    const list = await http("GET", `/api/v1/jobs?namespace=${ns}`);
    expect(list.body.items).toEqual([]);
  });

  it("reads by id and by namespace + name; unknown is 404", async () => {
    fresh();
    const job = (await put(spec("reader"))).body.job as JobJson;
    expect(((await http("GET", `/api/v1/jobs/${job.id}`)).body.job as JobJson).id).toBe(job.id);
    expect(((await http("GET", `/api/v1/jobs/reader?namespace=${ns}`)).body.job as JobJson).id).toBe(job.id);
    expect((await http("GET", "/api/v1/jobs/job-nope")).status).toBe(404);
  });

  it("pages with signed keyset tokens; tokens are bound to their query", async () => {
    fresh();
    for (let i = 0; i < 25; i++)
      await put(spec(`p${String(i).padStart(2, "0")}`, { labels: { i: String(i % 3) } }));
    const seen: string[] = [];
    let token = "";
    let pages = 0;
    do {
      const res = await http(
        "GET",
        `/api/v1/jobs?namespace=${ns}&limit=10&order_by=name&order=asc${token ? `&next_token=${encodeURIComponent(token)}` : ""}`,
      );
      expect(res.status).toBe(200);
      seen.push(...(res.body.items as JobJson[]).map((j) => j.spec.name));
      token = res.body.next_token as string;
      pages++;
      // A job created between pages must not disturb the ones that existed throughout.
      if (pages === 1) await put(spec("p99-late"));
    } while (token);
    expect(pages).toBe(3);
    expect(seen.filter((n) => n !== "p99-late")).toEqual(
      Array.from({ length: 25 }, (_, i) => `p${String(i).padStart(2, "0")}`),
    );
    expect(new Set(seen).size).toBe(seen.length);

    const first = await http("GET", `/api/v1/jobs?namespace=${ns}&limit=5`);
    const t = first.body.next_token as string;
    expect(t).not.toBe("");
    const tampered = await http(
      "GET",
      `/api/v1/jobs?namespace=${ns}&limit=5&next_token=${encodeURIComponent(`${t.slice(0, -2)}xx`)}`,
    );
    expect(tampered.status).toBe(400);
    const otherQuery = await http(
      "GET",
      `/api/v1/jobs?namespace=${ns}&limit=5&order=asc&next_token=${encodeURIComponent(t)}`,
    );
    expect(otherQuery.status).toBe(400);
    expect((otherQuery.body.error as { message: string }).message).toMatch(/different query/);
  });

  it("filters by label selector, state and type; validates every parameter", async () => {
    fresh();
    await put(spec("a", { labels: { env: "prod" } }));
    await put(spec("b", { labels: { env: "dev" } }));
    await put({ ...spec("c"), type: "query", config: queryConfig });
    const byLabel = await http(
      "GET",
      `/api/v1/jobs?namespace=${ns}&labels=${encodeURIComponent("env in (prod)")}`,
    );
    expect((byLabel.body.items as JobJson[]).map((j) => j.spec.name)).toEqual(["a"]);
    const byType = await http("GET", `/api/v1/jobs?namespace=${ns}&types=query`);
    expect((byType.body.items as JobJson[]).map((j) => j.spec.name)).toEqual(["c"]);
    // Placement may already have moved a job to "queued" (no node matches here).
    const byState = await http("GET", `/api/v1/jobs?namespace=${ns}&states=pending,queued,running`);
    expect((byState.body.items as JobJson[]).length).toBe(3);
    expect(byState.body.next_token).toBe("");
    for (const q of [
      "limit=1001",
      "limit=0x",
      "states=nope",
      "types=batch",
      "order_by=size",
      "order=up",
      "colour=blue",
      "labels=tier%20in%20(x",
    ]) {
      const res = await http("GET", `/api/v1/jobs?namespace=${ns}&${q}`);
      expect(res.status, q).toBe(400);
    }
  });

  it("stops, deletes (hidden unless include_deleted) and re-creates with a new id", async () => {
    fresh();
    const job = (await put(spec("life"))).body.job as JobJson;
    const stopped = await http("POST", `/api/v1/jobs/${job.id}/stop`, { reason: "maintenance" });
    expect((stopped.body.job as JobJson).status.state.state_type).toBe("stopped");
    expect((stopped.body.job as JobJson).status.revision).toBeGreaterThanOrEqual(2);
    const deleted = await http("DELETE", `/api/v1/jobs/${job.id}`);
    expect((deleted.body.job as JobJson).status.state.state_type).toBe("deleted");
    expect((await http("GET", `/api/v1/jobs?namespace=${ns}`)).body.items).toEqual([]);
    const withDeleted = await http("GET", `/api/v1/jobs?namespace=${ns}&include_deleted=true`);
    expect((withDeleted.body.items as JobJson[]).map((j) => j.id)).toEqual([job.id]);
    const again = (await put(spec("life"))).body.job as JobJson;
    expect(again.id).not.toBe(job.id);
    expect((await http("DELETE", `/api/v1/jobs/${job.id}`)).status).toBe(409);
  });

  it("keeps versions, diffs them and reverts (a revert to the current spec is a no-op)", async () => {
    fresh();
    const v1 = (await put(spec("ver", { deployment: { max_parallel: 0 } }))).body.job as JobJson;
    await put(spec("ver", { deployment: { max_parallel: 3 } }));
    const versions = await http("GET", `/api/v1/jobs/${v1.id}/versions`);
    expect((versions.body.items as Array<{ version: number }>).map((v) => v.version)).toEqual([2, 1]);
    const diff = await http("GET", `/api/v1/jobs/${v1.id}/diff`);
    expect(diff.body).toEqual({
      from: 1,
      to: 2,
      changes: [{ path: "deployment.max_parallel", old_value: 0, new_value: 3 }],
    });
    const reverted = await http("POST", `/api/v1/jobs/${v1.id}/revert`, { version: 1 });
    expect(reverted.body.changed).toBe(true);
    expect((reverted.body.job as JobJson).status.version).toBe(3);
    const v3 = await http("GET", `/api/v1/jobs/${v1.id}/versions/3`);
    expect(v3.body.version).toMatchObject({ version: 3, kind: "revert", revert_to_version: 1 });
    const noop = await http("POST", `/api/v1/jobs/${v1.id}/revert`, { version: 1 });
    expect(noop.body.changed).toBe(false);
    expect(String(noop.body.message)).toMatch(/nothing to revert/);
    expect((await http("GET", `/api/v1/jobs/${v1.id}/versions/9`)).status).toBe(404);
  });

  it("serves the same API over gRPC, errors with field details", async () => {
    fresh();
    const res = await grpc.putJob({
      spec: { name: "g1", namespace: ns, type: "query", labels: { a: "b" }, config: queryConfig },
    });
    expect(res.changed).toBe(true);
    expect(res.job?.status?.version).toBe(1);
    const got = await grpc.getJob({ id: res.job?.id ?? "" });
    expect(got.job?.spec?.name).toBe("g1");
    const listed = await grpc.listJobs({ namespace: ns });
    expect(listed.items.map((j) => j.id)).toEqual([res.job?.id]);
    const err = (await grpc
      .putJob({ spec: { name: "bad name", namespace: ns, type: "query" } })
      .catch((e: unknown) => e)) as EdgeplaneError;
    expect(err.code).toBe("invalid_argument");
    expect(err.details[0]?.field).toBe("spec.name");
    const cas = (await grpc
      .putJob({ spec: { name: "g1", namespace: ns, type: "query", config: queryConfig }, expectedVersion: 5 })
      .catch((e: unknown) => e)) as EdgeplaneError;
    expect(cas.code).toBe("aborted");
    const big = (await grpc
      .putJob({
        spec: { name: "g2", namespace: ns, type: "query", description: "x".repeat(2 * 1024 * 1024) },
      })
      .catch((e: unknown) => e)) as EdgeplaneError;
    expect(big.code).toBe("resource_exhausted");
  });
});
