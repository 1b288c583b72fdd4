/**
 * Executions end to end on a real nats-server and Redis: simulated agents (and raw agent messages
 * published as an agent would) drive the node registry; the execution side turns their reports
 * into records and logs; the Executions API (REST, SSE, gRPC, and `edgectl exec` in-process)
 * reads them, follows logs and cancels. Covers the monotonic guard, lost nodes, the archive,
 * run-once job completion and bad inputs.
 *
 * Subjects are global (`ep.node.*`), so this file starts its own nats-server, and runs one
 * control plane at a time (each `describe` builds its own on a fresh key prefix).
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fromJson, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs, ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  type Client,
  createClient,
  ExecutionEventSchema,
  ExecutionService,
  type ExecutionStatusSchema,
  HeartbeatSchema,
  LogBatchSchema,
} from "@edgeplane/api";
import { type Bus, connectNatsBus, encode, subjects } from "@edgeplane/bus";
import { fromGrpcStatus, type Logger } from "@edgeplane/core";
import { createNodeRegistry, executionIdFor, type NodeRegistry, SimAgent } from "@edgeplane/orchestrator";
import {
  type AssignmentRecord,
  createRedisDesiredStateStore,
  createRedisJobStore,
  createRedisNodeStore,
  type DesiredStateStore,
  type JobRecord,
  type JobStore,
} from "@edgeplane/store";
import { FakeClock, type NatsServer, startNats, waitFor } from "@edgeplane/testkit";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from "vitest";
import { exec } from "../../packages/cli/src/commands/exec.js";
import {
  createDesiredStateCanceler,
  type ExecutionServices,
  type ExecutionServicesOptions,
  startExecutionServices,
} from "../../packages/control-plane/src/executions/index.js";
import { GrpcServer } from "../../packages/control-plane/src/grpc/server.js";
import { Router } from "../../packages/control-plane/src/http/router.js";
import { PageTokens } from "../../packages/control-plane/src/page-token.js";

type Json = Record<string, unknown>;
type Status = MessageInitShape<typeof ExecutionStatusSchema>;

const warnings: string[] = [];
const logger: Logger = {
  debug() {},
  info() {},
  warn: (m, f) => warnings.push(`${m} ${JSON.stringify(f ?? {})}`),
  error: (m, f) => warnings.push(`ERROR ${m} ${JSON.stringify(f ?? {})}`),
  child: () => logger,
};

let nats: NatsServer;
let redis: Redis;

beforeAll(async () => {
  nats = await startNats({ jetstream: false });
  redis = new Redis(inject("redisUrl"), { maxRetriesPerRequest: null });
});

afterAll(async () => {
  await redis?.quit();
  await nats?.stop();
});

/** One control plane's node and execution side, with an agent connection and API clients. */
interface Plane {
  readonly prefix: string;
  readonly clock: FakeClock;
  readonly registry: NodeRegistry;
  readonly jobStore: JobStore;
  readonly desiredStore: DesiredStateStore;
  readonly executions: ExecutionServices;
  readonly agentBus: Bus;
  readonly httpUrl: string;
  readonly grpcAddress: string;
  readonly grpc: Client<typeof ExecutionService>;
  readonly agents: Map<string, SimAgent>;
  /** Execution ids whose cancel reached the desired-state writer. */
  readonly cancels: string[];
  stop(): Promise<void>;
}

async function startPlane(options: Partial<ExecutionServicesOptions> = {}): Promise<Plane> {
  const prefix = `t${randomUUID().slice(0, 8)}:`;
  const clock = new FakeClock(Date.now());
  const cpBus = await connectNatsBus({ servers: [nats.url], name: "test-control-plane" });
  const agentBus = await connectNatsBus({ servers: [nats.url], name: "test-agents" });
  const jobStore = createRedisJobStore({ redis, prefix });
  const desiredStore = createRedisDesiredStateStore({ redis, prefix });
  const registry = createNodeRegistry({
    bus: cpBus,
    nodeStore: createRedisNodeStore({ redis, prefix }),
    desiredStore,
    clock,
    logger,
    sweepIntervalMs: 0,
    flushIntervalMs: 100,
    heartbeatIntervalMs: 1000,
  });
  await registry.start();
  const router = new Router();
  const grpcServer = new GrpcServer(logger);
  const cancels: string[] = [];
  const canceler = createDesiredStateCanceler({ desiredStore, registry, clock });
  const executions = await startExecutionServices({
    registry,
    desiredStore,
    jobStore,
    redis,
    prefix,
    tokens: new PageTokens(),
    router,
    grpc: grpcServer,
    clock,
    logger,
    sweepIntervalMs: 0,
    followPollMs: 200,
    drainMs: 300,
    keepAliveMs: 200,
    cancelAssignment: async (id, execution) => {
      cancels.push(id);
      await canceler(id, execution);
    },
    ...options,
  });
  const port = await grpcServer.listen("127.0.0.1:0");
  const grpcAddress = `127.0.0.1:${port}`;
  const grpc = createClient(ExecutionService, grpcAddress, {
    fromStatus: fromGrpcStatus,
    defaultTimeoutMs: 10_000,
  });
  const http: Server = createServer((req, res) => void router.handle(req, res, logger));
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const agents = new Map<string, SimAgent>();
  return {
    prefix,
    clock,
    registry,
    jobStore,
    desiredStore,
    executions,
    agentBus,
    httpUrl,
    grpcAddress,
    grpc,
    agents,
    cancels,
    stop: async () => {
      grpc.close();
      await executions.stop();
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
      await grpcServer.stop(1000);
      await registry.stop();
      for (const a of agents.values()) a.close();
      await Promise.all([cpBus.close(), agentBus.close()]);
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
    },
  };
}

async function api(
  p: Plane,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${p.httpUrl}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Json };
}

/** Registers simulated agents. */
async function agentsUp(p: Plane, ids: string[]): Promise<SimAgent[]> {
  return Promise.all(
    ids.map(async (nodeId) => {
      const agent = new SimAgent({ bus: p.agentBus, nodeId }).listen();
      p.agents.set(nodeId, agent);
      const reply = await agent.register();
      expect(reply.accepted, reply.message).toBe(true);
      return agent;
    }),
  );
}

/** Stores a job (run-once types are queries here), state running as placement would leave it. */
async function job(p: Plane, name: string, extra: Json = {}): Promise<JobRecord> {
  const { job } = await p.jobStore.putJob({
    namespace: "default",
    name: `${name}-${randomUUID().slice(0, 6)}`,
    type: (extra.type as "query") ?? "query",
    labels: {},
    spec: { name, namespace: "default", type: "query", restart_policy: "on-failure", config: {}, ...extra },
    newId: `job-${randomUUID()}`,
    now: p.clock.now(),
  });
  return p.jobStore.updateStatus(job.id, { state: "running", message: "placed", now: p.clock.now() });
}

function assignment(
  j: JobRecord,
  nodeId: string,
  overrides: Partial<AssignmentRecord> = {},
): AssignmentRecord {
  return {
    executionId: executionIdFor(j.id, j.version, nodeId),
    jobId: j.id,
    jobVersion: j.version,
    namespace: j.namespace,
    jobName: j.name,
    type: j.type,
    config: {},
    desiredState: "running",
    timeouts: { executionTimeout: 0, queueTimeout: 0, totalTimeout: 0 },
    restartPolicy: typeof j.spec.restart_policy === "string" ? j.spec.restart_policy : "on-failure",
    maxErrorRate: 0.1,
    deploymentId: "",
    ...overrides,
  };
}

/** Writes a node's desired state (adding to what it holds); pushes it (placeholders) unless `push` is false. */
async function assign(p: Plane, nodeId: string, assignments: AssignmentRecord[], push = true): Promise<void> {
  const current = await p.desiredStore.get(nodeId);
  const record = await p.desiredStore.put({
    nodeId,
    assignments: [...(current?.assignments ?? []), ...assignments],
    now: p.clock.now(),
    expectedRevision: current?.revision ?? 0,
  });
  if (push) p.registry.desiredChanged(record);
}

function heartbeat(p: Plane, nodeId: string, executions: Status[], timeMs = Date.now()): void {
  const agent = p.agents.get(nodeId);
  p.agentBus.publish(
    subjects.outbound(nodeId, "heartbeat"),
    encode(HeartbeatSchema, {
      nodeId,
      seq: BigInt(timeMs),
      appliedRevision: agent?.appliedRevision ?? 0,
      executions,
      time: timestampFromMs(timeMs),
      instanceId: agent?.instanceId ?? "inst",
    }),
  );
}

function event(
  p: Plane,
  nodeId: string,
  status: Status,
  options: { timeMs?: number; result?: JsonValue; resultTruncated?: boolean; resultBytes?: number } = {},
): void {
  p.agentBus.publish(
    subjects.outbound(nodeId, "event"),
    encode(ExecutionEventSchema, {
      eventId: `ev-${randomUUID()}`,
      nodeId,
      status,
      time: timestampFromMs(options.timeMs ?? Date.now()),
      result: options.result === undefined ? undefined : fromJson(ValueSchema, options.result),
      resultTruncated: options.resultTruncated ?? false,
      resultBytes: BigInt(options.resultBytes ?? 0),
    }),
  );
}

let logSeq = 0;
function logs(
  p: Plane,
  nodeId: string,
  executionId: string,
  texts: string[],
  dropped = 0,
  level = "INFO",
): void {
  p.agentBus.publish(
    subjects.outbound(nodeId, "logs"),
    encode(LogBatchSchema, {
      nodeId,
      executionId,
      dropped: BigInt(dropped),
      lines: texts.map((text) => {
        logSeq++;
        return { seq: BigInt(logSeq), time: timestampFromMs(Date.now()), stream: "stdout", level, text };
      }),
    }),
  );
}

const status = (
  executionId: string,
  j: JobRecord,
  state: string,
  extra: Record<string, unknown> = {},
): Status =>
  ({
    executionId,
    jobId: j.id,
    jobVersion: j.version,
    state,
    attempt: 1,
    startTime: state === "waiting" ? undefined : timestampFromMs(Date.now() - 1000),
    ...extra,
  }) as Status;

async function execution(
  p: Plane,
  id: string,
  until: (e: Json) => boolean = () => true,
  message = "the execution",
): Promise<Json> {
  return waitFor(
    async () => {
      const r = await api(p, "GET", `/api/v1/executions/${id}`);
      const e = r.body.execution as Json | undefined;
      return r.status === 200 && e !== undefined && until(e) ? e : undefined;
    },
    { message, timeoutMs: 10_000 },
  );
}

/** Reads Server-Sent Events until `stop` says so or the stream ends. */
async function readSse(
  url: string,
  stop: (events: Array<{ event: string; data: Json; id?: string }>) => boolean,
  init: RequestInit = {},
): Promise<{
  events: Array<{ event: string; data: Json; id?: string }>;
  comments: number;
  ended: boolean;
  contentType: string;
}> {
  const controller = new AbortController();
  const res = await fetch(url, { ...init, signal: controller.signal });
  const contentType = res.headers.get("content-type") ?? "";
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const events: Array<{ event: string; data: Json; id?: string }> = [];
  let buffer = "";
  let comments = 0;
  let ended = false;
  try {
    while (!stop(events)) {
      const { value, done } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      buffer += decoder.decode(value, { stream: true });
      let cut = buffer.indexOf("\n\n");
      while (cut >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        cut = buffer.indexOf("\n\n");
        if (block.startsWith(":")) {
          comments++;
          continue;
        }
        let ev = "message";
        let data = "";
        let id: string | undefined;
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) ev = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
          else if (line.startsWith("id: ")) id = line.slice(4);
        }
        events.push({ event: ev, data: JSON.parse(data) as Json, id });
      }
    }
  } finally {
    controller.abort();
  }
  return { events, comments, ended, contentType };
}

describe("executions from agent reports", () => {
  let p: Plane;
  beforeAll(async () => {
    p = await startPlane({ maxResultBytes: 2048, logBounds: { maxLines: 20, maxBytes: 64 * 1024 } });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it("heartbeats alone create executions, with Pulp-style fields, from the node's desired state", async () => {
    await agentsUp(p, ["a1", "a2"]);
    const j = await job(p, "uname");
    // Desired states written but never pushed: no placeholder, only what the heartbeats say.
    await assign(p, "a1", [assignment(j, "a1")], false);
    await assign(p, "a2", [assignment(j, "a2", { deploymentId: "dep-7" })], false);
    const e1 = executionIdFor(j.id, j.version, "a1");
    const e2 = executionIdFor(j.id, j.version, "a2");
    heartbeat(p, "a1", [
      status(e1, j, "running", { progress: 0.4, health: { healthy: true, errorRate: 0.01 } }),
    ]);
    heartbeat(p, "a2", [status(e2, j, "waiting")]);
    const got = await execution(p, e1, (e) => e.state === "running");
    expect(got).toMatchObject({
      id: e1,
      job_id: j.id,
      job_version: j.version,
      node_id: "a1",
      deployment_id: "",
      namespace: "default",
      desired_state: "running",
      state: "running",
      finish_time: null,
      exit_code: null,
      result: null,
      exception: "",
      progress: 0.4,
      health: { healthy: true, error_rate: 0.01, since: null },
      counters: null,
      attempt: 1,
      archived: false,
      result_truncated: false,
    });
    expect(typeof got.start_time).toBe("string");
    expect(typeof got.created_at).toBe("string");
    const waiting = await execution(p, e2);
    expect(waiting).toMatchObject({
      state: "waiting",
      start_time: null,
      deployment_id: "dep-7",
      node_id: "a2",
    });
    const list = await api(p, "GET", `/api/v1/jobs/${j.id}/executions`);
    expect(list.status).toBe(200);
    expect((list.body.items as Json[]).map((e) => e.node_id).sort()).toEqual(["a1", "a2"]);
    expect(list.body.next_token).toBe("");
  });

  it("a pushed desired state creates waiting placeholders; withdrawing one deletes it", async () => {
    await agentsUp(p, ["a3"]);
    const j = await job(p, "placeholders");
    const j2 = await job(p, "other");
    await assign(p, "a3", [assignment(j, "a3"), assignment(j2, "a3")]);
    const id = executionIdFor(j.id, j.version, "a3");
    expect(await execution(p, id)).toMatchObject({ state: "waiting", attempt: 0, start_time: null });
    // The job's assignment is withdrawn before the node ran it: the placeholder goes.
    const current = await p.desiredStore.get("a3");
    const record = await p.desiredStore.put({
      nodeId: "a3",
      assignments: (current?.assignments ?? []).filter((a) => a.jobId !== j.id),
      now: p.clock.now(),
      expectedRevision: current?.revision,
    });
    p.registry.desiredChanged(record);
    await waitFor(async () => (await api(p, "GET", `/api/v1/executions/${id}`)).status === 404, {
      message: "the withdrawn placeholder to go",
    });
    expect((await execution(p, executionIdFor(j2.id, j2.version, "a3"))).state).toBe("waiting");
  });

  it("a query's result per node is readable through REST and gRPC", async () => {
    await agentsUp(p, ["q1", "q2"]);
    const j = await job(p, "hostinfo");
    for (const n of ["q1", "q2"]) await assign(p, n, [assignment(j, n)]);
    for (const n of ["q1", "q2"]) {
      const id = executionIdFor(j.id, j.version, n);
      event(
        p,
        n,
        status(id, j, "finished", { exitCode: 0, progress: 1, finishTime: timestampFromMs(Date.now()) }),
        {
          result: { hostname: n, load: [0.5, 1.25], ok: true, note: null },
          resultBytes: 60,
        },
      );
    }
    for (const n of ["q1", "q2"]) {
      const e = await execution(p, executionIdFor(j.id, j.version, n), (x) => x.state === "finished");
      expect(e).toMatchObject({
        result: { hostname: n, load: [0.5, 1.25], ok: true, note: null },
        exit_code: 0,
        progress: 1,
        result_truncated: false,
      });
      expect(Number(e.result_bytes)).toBeGreaterThanOrEqual(50);
    }
    const viaGrpc = await p.grpc.getExecution({ id: executionIdFor(j.id, j.version, "q2") });
    expect(viaGrpc.execution?.result?.kind.case).toBe("structValue");
    expect(viaGrpc.execution?.nodeId).toBe("q2");
    const listed = await p.grpc.listExecutions({ jobId: j.id, states: ["finished"] });
    expect(listed.items.map((e) => e.nodeId).sort()).toEqual(["q1", "q2"]);
  });

  it("filters by state and node and pages with next_token (REST and gRPC)", async () => {
    const nodes = Array.from({ length: 12 }, (_, i) => `f${String(i).padStart(2, "0")}`);
    await agentsUp(p, nodes);
    const j = await job(p, "paged");
    for (const n of nodes) await assign(p, n, [assignment(j, n)]);
    nodes.forEach((n, i) => {
      event(
        p,
        n,
        status(
          executionIdFor(j.id, j.version, n),
          j,
          i % 3 === 0 ? "finished" : i % 3 === 1 ? "error" : "running",
          { exitCode: i % 3 === 2 ? undefined : i % 3 },
        ),
      );
    });
    await waitFor(
      async () => {
        const r = await api(p, "GET", `/api/v1/jobs/${j.id}/executions?state=running&limit=1000`);
        return (r.body.items as Json[]).length === 4;
      },
      { message: "every event applied" },
    );
    const all: string[] = [];
    let token = "";
    let pages = 0;
    do {
      const r = await api(
        p,
        "GET",
        `/api/v1/jobs/${j.id}/executions?limit=5${token ? `&next_token=${encodeURIComponent(token)}` : ""}`,
      );
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      all.push(...(r.body.items as Json[]).map((e) => e.node_id as string));
      token = r.body.next_token as string;
      pages++;
    } while (token);
    expect(all.sort()).toEqual(nodes);
    expect(pages).toBe(3);
    const failed = await api(p, "GET", `/api/v1/jobs/${j.id}/executions?state=error,finished&limit=3`);
    expect((failed.body.items as Json[]).length).toBe(3);
    const next = await api(
      p,
      "GET",
      `/api/v1/jobs/${j.id}/executions?state=error,finished&limit=3&next_token=${encodeURIComponent(failed.body.next_token as string)}`,
    );
    const both = [...(failed.body.items as Json[]), ...(next.body.items as Json[])];
    expect(both.every((e) => e.state === "error" || e.state === "finished")).toBe(true);
    const onNode = await api(p, "GET", `/api/v1/jobs/${j.id}/executions?node_id=f04`);
    expect((onNode.body.items as Json[]).map((e) => e.state)).toEqual(["error"]);
    // The token belongs to its query.
    const reused = await api(
      p,
      "GET",
      `/api/v1/jobs/${j.id}/executions?state=running&next_token=${encodeURIComponent(failed.body.next_token as string)}`,
    );
    expect(reused.status).toBe(400);
    const bad = await api(p, "GET", `/api/v1/jobs/${j.id}/executions?state=exploded`);
    expect(bad).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_argument", details: [{ field: "state" }] } },
    });
    expect((await api(p, "GET", `/api/v1/jobs/${j.id}/executions?limit=1001`)).status).toBe(400);
    expect((await api(p, "GET", "/api/v1/jobs/job-nope/executions")).status).toBe(404);
    // By name too (namespace default).
    const byName = await api(p, "GET", `/api/v1/jobs/${encodeURIComponent(j.name)}/executions?node_id=f00`);
    expect((byName.body.items as Json[]).length).toBe(1);
    const grpcPage = await p.grpc.listExecutions({ jobId: j.id, nodeId: "f01", states: ["error"] });
    expect(grpcPage.items.map((e) => e.nodeId)).toEqual(["f01"]);
    await expect(p.grpc.listExecutions({ jobId: j.id, states: ["nope"] })).rejects.toMatchObject({
      code: "invalid_argument",
    });
  });

  it("a stale heartbeat never regresses a terminal state; a new attempt does replace it", async () => {
    await agentsUp(p, ["s1"]);
    const j = await job(p, "stale");
    await assign(p, "s1", [assignment(j, "s1")]);
    const id = executionIdFor(j.id, j.version, "s1");
    const t = Date.now();
    event(p, "s1", status(id, j, "finished", { exitCode: 0 }), { timeMs: t + 2000 });
    await execution(p, id, (e) => e.state === "finished");
    const before = p.executions.stats().ingest;
    heartbeat(p, "s1", [status(id, j, "running")], t + 1000); // sent before the event, arrives after
    heartbeat(p, "s1", [status(id, j, "running", { progress: 0.5 })], t + 9000); // even a later one: terminal is final
    await waitFor(() => p.executions.stats().ingest.reports >= before.reports + 2, {
      message: "the heartbeats to arrive",
    });
    await p.executions.idle();
    expect((await execution(p, id)).state).toBe("finished");
    const after = p.executions.stats().ingest;
    // Refused by the store's guard, or (unchanged but for progress, once the first was refused) not even written.
    expect(after.stale - before.stale + (after.coalesced - before.coalesced)).toBe(2);
    expect(after.written).toBe(before.written);
    heartbeat(p, "s1", [status(id, j, "running", { attempt: 2 })], t + 10_000);
    expect(await execution(p, id, (e) => e.state === "running")).toMatchObject({
      attempt: 2,
      finish_time: null,
    });
  });

  it("drops bad inputs: an oversized result (status kept), an unassigned or another node's execution, bad states", async () => {
    await agentsUp(p, ["b1", "b2"]);
    const j = await job(p, "bad");
    await assign(p, "b1", [assignment(j, "b1")]);
    const id = executionIdFor(j.id, j.version, "b1");
    const before = p.executions.stats().ingest.dropped;
    event(p, "b1", status(id, j, "finished", { exitCode: 0 }), {
      result: { blob: "x".repeat(5000) },
      resultBytes: 5000,
    });
    const e = await execution(p, id, (x) => x.state === "finished");
    expect(e).toMatchObject({ result: null, result_truncated: true });
    expect(Number(e.result_bytes)).toBeGreaterThan(5000);
    // b2 reports b1's execution, and one nobody assigned it.
    heartbeat(p, "b2", [status(id, j, "error", { attempt: 9 }), status("exec-made-up", j, "running")]);
    // b1 reports a state that does not exist.
    heartbeat(p, "b1", [status(id, j, "exploded", { attempt: 9 })]);
    // Logs for an execution b2 does not hold, and a garbage log message.
    logs(p, "b2", id, ["not mine"]);
    p.agentBus.publish(subjects.outbound("b1", "logs"), new Uint8Array([1, 2, 3, 255]));
    await waitFor(
      () => {
        const d = p.executions.stats().ingest.dropped;
        return (
          d.wrong_node >= before.wrong_node + 2 &&
          d.unassigned >= before.unassigned + 1 &&
          d.malformed >= before.malformed + 1 &&
          d.oversized_result === before.oversized_result + 1
        );
      },
      { message: "the drops to be counted" },
    );
    await p.executions.idle();
    expect((await execution(p, id)).state).toBe("finished");
    expect((await api(p, "GET", "/api/v1/executions/exec-made-up")).status).toBe(404);
    expect((await api(p, "GET", `/api/v1/executions/${id}/logs`)).body).toEqual({ lines: [], dropped: 0 });
  });

  it("cancel: desired stopped on the record and in the node's desired state; 409 once finished", async () => {
    const [agent] = await agentsUp(p, ["c1"]);
    const j = await job(p, "cancel-me");
    await assign(p, "c1", [assignment(j, "c1")]);
    const id = executionIdFor(j.id, j.version, "c1");
    heartbeat(p, "c1", [status(id, j, "running")]);
    await execution(p, id, (e) => e.state === "running");
    const res = await api(p, "POST", `/api/v1/executions/${id}/cancel`, { reason: "wrong host" });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.execution).toMatchObject({ desired_state: "stopped", state: "running" });
    expect(p.cancels).toContain(id);
    expect(
      (await p.desiredStore.get("c1"))?.assignments.find((a) => a.executionId === id)?.desiredState,
    ).toBe("stopped");
    await waitFor(
      () => agent?.desired?.assignments.find((a) => a.executionId === id)?.desiredState === "stopped",
      {
        message: "the node to receive the stopped assignment",
      },
    );
    // Again: harmless.
    expect((await api(p, "POST", `/api/v1/executions/${id}/cancel`, {})).status).toBe(200);
    // The agent stops it.
    event(p, "c1", status(id, j, "canceled"));
    await execution(p, id, (e) => e.state === "canceled");
    const late = await api(p, "POST", `/api/v1/executions/${id}/cancel`, {});
    expect(late.status).toBe(409);
    expect(late.body.error).toMatchObject({
      code: "failed_precondition",
      message: expect.stringContaining("already canceled"),
    });
    await expect(p.grpc.cancelExecution({ id })).rejects.toMatchObject({ code: "failed_precondition" });
    expect((await api(p, "POST", "/api/v1/executions/nope/cancel", {})).status).toBe(404);
    expect((await api(p, "POST", `/api/v1/executions/${id}/cancel`, { why: 1 })).status).toBe(400);
  });

  it("logs are bounded (oldest dropped first, drops reported), tailed, and readable as text", async () => {
    await agentsUp(p, ["l1"]);
    const j = await job(p, "chatty");
    await assign(p, "l1", [assignment(j, "l1")]);
    const id = executionIdFor(j.id, j.version, "l1");
    heartbeat(p, "l1", [status(id, j, "running")]);
    await execution(p, id);
    logs(
      p,
      "l1",
      id,
      Array.from({ length: 30 }, (_, i) => `line ${i}`),
      5,
    );
    const read = await waitFor(
      async () => {
        const r = await api(p, "GET", `/api/v1/executions/${id}/logs`);
        return (r.body.lines as Json[]).length === 20 ? r.body : undefined;
      },
      { message: "the lines to be kept" },
    );
    expect(read.dropped).toBe(10 + 5);
    expect((read.lines as Json[])[0]).toMatchObject({
      text: "line 10",
      level: "INFO",
      stream: "stdout",
      seq: 11,
    });
    const tail = await api(p, "GET", `/api/v1/executions/${id}/logs?tail=2`);
    expect((tail.body.lines as Json[]).map((l) => l.text)).toEqual(["line 28", "line 29"]);
    const text = await fetch(`${p.httpUrl}/api/v1/executions/${id}/logs?tail=2&format=text`);
    expect(text.headers.get("x-edgeplane-dropped")).toBe("15");
    expect(await text.text()).toBe("INFO: line 28\nINFO: line 29\n");
    const grpcRead: Array<{ lines: string[]; dropped: bigint }> = [];
    for await (const chunk of p.grpc.getExecutionLogs({ id, tail: 3 }))
      grpcRead.push({ lines: chunk.lines.map((l) => l.text), dropped: chunk.dropped });
    expect(grpcRead).toEqual([{ lines: ["line 27", "line 28", "line 29"], dropped: 15n }]);
    expect((await api(p, "GET", `/api/v1/executions/${id}/logs?tail=-1`)).status).toBe(400);
    expect((await api(p, "GET", "/api/v1/executions/nope/logs")).status).toBe(404);
  });

  it("follow streams new lines over SSE and ends when the execution ended and its log drained", async () => {
    await agentsUp(p, ["l2"]);
    const j = await job(p, "followed");
    await assign(p, "l2", [assignment(j, "l2")]);
    const id = executionIdFor(j.id, j.version, "l2");
    heartbeat(p, "l2", [status(id, j, "running")]);
    await execution(p, id);
    logs(p, "l2", id, ["before 1", "before 2"]);
    await waitFor(
      async () => ((await api(p, "GET", `/api/v1/executions/${id}/logs`)).body.lines as Json[]).length === 2,
    );
    const reading = readSse(`${p.httpUrl}/api/v1/executions/${id}/logs?follow=true&tail=1`, () => false);
    await waitFor(() => p.executions.stats().followers > 0, { message: "the follower to wait" });
    logs(p, "l2", id, ["live 1", "live 2"], 0, "WARN");
    await new Promise((r) => setTimeout(r, 500)); // keep-alive comments come every 200 ms
    logs(p, "l2", id, ["last words"], 0, "ERROR");
    event(p, "l2", status(id, j, "finished", { exitCode: 0 }));
    const out = await reading;
    expect(out.contentType).toMatch(/^text\/event-stream/);
    expect(out.ended).toBe(true);
    const lines = out.events.filter((e) => e.event === "message");
    expect(lines.map((e) => e.data.text)).toEqual(["before 2", "live 1", "live 2", "last words"]);
    expect(lines.map((e) => e.data.level)).toEqual(["INFO", "WARN", "WARN", "ERROR"]);
    expect(lines[1]?.id).toBe("3");
    expect(out.events.at(-1)).toEqual({
      event: "end",
      data: { state: "finished", dropped: 0 },
      id: undefined,
    });
    expect(out.comments).toBeGreaterThan(0);
    // Resume after a line with Last-Event-ID: the rest, then the end at once.
    const resumed = await readSse(`${p.httpUrl}/api/v1/executions/${id}/logs?follow=true`, () => false, {
      headers: { "last-event-id": "3" },
    });
    expect(resumed.events.filter((e) => e.event === "message").map((e) => e.data.text)).toEqual([
      "live 2",
      "last words",
    ]);
    expect(resumed.events.at(-1)?.event).toBe("end");
    // A plain-text follow of an ended execution prints and ends.
    const text = await (
      await fetch(`${p.httpUrl}/api/v1/executions/${id}/logs?follow=true&format=text&tail=2`)
    ).text();
    expect(text).toBe("WARN: live 2\nERROR: last words\n");
    // Follow of an unknown execution is a plain 404.
    expect((await fetch(`${p.httpUrl}/api/v1/executions/nope/logs?follow=true`)).status).toBe(404);
  });

  it("follow over gRPC streams new lines and ends on terminal; a client that leaves frees its follower", async () => {
    await agentsUp(p, ["l3"]);
    const j = await job(p, "grpc-followed");
    await assign(p, "l3", [assignment(j, "l3")]);
    const id = executionIdFor(j.id, j.version, "l3");
    heartbeat(p, "l3", [status(id, j, "running")]);
    await execution(p, id);
    const seen: string[] = [];
    const follow = (async () => {
      const client = createClient(ExecutionService, p.grpcAddress, { fromStatus: fromGrpcStatus });
      try {
        for await (const chunk of client.getExecutionLogs({ id, follow: true }))
          seen.push(...chunk.lines.map((l) => l.text));
      } finally {
        client.close();
      }
    })();
    await waitFor(() => p.executions.stats().followers > 0, { message: "the gRPC follower to wait" });
    logs(p, "l3", id, ["g1", "g2"]);
    await waitFor(() => seen.length === 2, { message: "the lines to stream" });
    logs(p, "l3", id, ["g3"]);
    event(p, "l3", status(id, j, "error", { exitCode: 3 }));
    await follow;
    expect(seen).toEqual(["g1", "g2", "g3"]);

    // A REST client that goes away mid-follow: the follower is released.
    const other = executionIdFor(j.id, j.version, "l3-x");
    await assign(p, "l3", [assignment(j, "l3-x", { executionId: other })]);
    heartbeat(p, "l3", [status(id, j, "error", { exitCode: 3 }), status(other, j, "running")]);
    await execution(p, other);
    const controller = new AbortController();
    const res = await fetch(`${p.httpUrl}/api/v1/executions/${other}/logs?follow=true`, {
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    await waitFor(() => p.executions.stats().followers > 0);
    controller.abort();
    await waitFor(() => p.executions.stats().followers === 0, { message: "the follower to be released" });
  });

  it("edgectl exec list, get, logs, logs -f, cancel", async () => {
    await agentsUp(p, ["k1", "k2"]);
    const j = await job(p, "cli");
    for (const n of ["k1", "k2"]) await assign(p, n, [assignment(j, n)]);
    const id1 = executionIdFor(j.id, j.version, "k1");
    const id2 = executionIdFor(j.id, j.version, "k2");
    event(p, "k1", status(id1, j, "finished", { exitCode: 0 }), { result: { answer: 42 } });
    heartbeat(p, "k2", [status(id2, j, "running", { progress: 0.5 })]);
    logs(p, "k1", id1, ["hello", "world"]);
    await execution(p, id1, (e) => e.state === "finished");
    await execution(p, id2, (e) => e.state === "running");
    await waitFor(
      async () => ((await api(p, "GET", `/api/v1/executions/${id1}/logs`)).body.lines as Json[]).length === 2,
    );
    const run = async (...argv: string[]): Promise<{ code: number; out: string; err: string }> => {
      let out = "";
      let err = "";
      const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => {
        out += String(s);
        return true;
      });
      const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => {
        err += String(s);
        return true;
      });
      try {
        const code = await exec([...argv, "--server", p.grpcAddress]);
        return { code, out, err };
      } finally {
        o.mockRestore();
        e.mockRestore();
      }
    };
    const list = await run("list", j.id);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/^ID\s+NODE\s+VERSION\s+STATE/);
    expect(list.out).toMatch(new RegExp(`${id1}\\s+k1\\s+${j.version}\\s+finished`));
    expect(list.out).toMatch(/k2\s+\d+\s+running\s+running\s+1\s+50%/);
    const filtered = await run("list", j.id, "--state", "running", "-o", "json");
    expect((JSON.parse(filtered.out) as { items: Json[] }).items.map((e) => e.node_id)).toEqual(["k2"]);
    const got = await run("get", id1);
    expect(got.out).toMatch(/state:\s+finished/);
    expect(got.out).toMatch(/exit code:\s+0/);
    expect(got.out).toMatch(/result:\n\{\n {2}"answer": 42\n\}/);
    const yaml = await run("get", id1, "-o", "yaml");
    expect(yaml.out).toMatch(/result:\n {2}answer: 42/);
    const lg = await run("logs", id1);
    expect(lg.out).toBe("INFO: hello\nINFO: world\n");
    const followed = await run("logs", id1, "-f", "--tail", "1");
    expect(followed.out).toBe("INFO: world\n");
    const cancel = await run("cancel", id2, "--reason", "enough");
    expect(cancel.out).toMatch(/canceled: desired state stopped/);
    await expect(run("cancel", id1)).rejects.toMatchObject({ code: "failed_precondition" });
    expect((await run("nope")).code).toBe(2);
  });
});

describe("lost nodes, the archive, and run-once job completion", () => {
  let p: Plane;
  beforeAll(async () => {
    p = await startPlane({ retentionMs: 3600_000, maxAttempts: 3, retryGraceMs: 60_000 });
  });
  afterAll(async () => {
    await p?.stop();
  });
  afterEach(() => {
    expect(warnings.filter((w) => w.startsWith("ERROR"))).toEqual([]);
  });

  const jobState = async (id: string) => {
    const j = await p.jobStore.getJob(id);
    return { state: j?.state, message: j?.stateMessage, details: j?.stateDetails };
  };

  it("a run-once job completes when every execution finished, with a reason", async () => {
    await agentsUp(p, ["r1", "r2", "r3"]);
    const j = await job(p, "inventory");
    for (const n of ["r1", "r2", "r3"]) await assign(p, n, [assignment(j, n)]);
    // Placeholders stand for the nodes that have not reported yet.
    await waitFor(
      async () =>
        (await p.executions.store.list({ jobId: j.id, includeArchived: false, limit: 10 })).items.length ===
        3,
    );
    for (const n of ["r1", "r2"])
      event(p, n, status(executionIdFor(j.id, j.version, n), j, "finished", { exitCode: 0 }));
    await execution(p, executionIdFor(j.id, j.version, "r2"), (e) => e.state === "finished");
    await p.executions.idle();
    expect((await jobState(j.id)).state).toBe("running");
    event(p, "r3", status(executionIdFor(j.id, j.version, "r3"), j, "finished", { exitCode: 0 }));
    await waitFor(async () => (await jobState(j.id)).state === "completed", {
      message: "the job to complete",
    });
    expect(await jobState(j.id)).toEqual({
      state: "completed",
      message: "finished on 3 nodes",
      details: { finished: "3", canceled: "0", executions: "3" },
    });
  });

  it("a run-once job fails when an execution fails beyond its retries, naming node and reason", async () => {
    await agentsUp(p, ["r4", "r5"]);
    const j = await job(p, "strict", { restart_policy: "never" });
    for (const n of ["r4", "r5"]) await assign(p, n, [assignment(j, n)]);
    event(
      p,
      "r5",
      status(executionIdFor(j.id, j.version, "r5"), j, "error", {
        exitCode: 1,
        exception: "grep: /etc/nope: No such file",
      }),
    );
    await waitFor(async () => (await jobState(j.id)).state === "failed", { message: "the job to fail" });
    expect(await jobState(j.id)).toMatchObject({
      message: "node r5: exited with code 1: grep: /etc/nope: No such file (attempt 1, restart_policy never)",
      details: { node_id: "r5", execution_id: executionIdFor(j.id, j.version, "r5"), failed: "1" },
    });
  });

  it("a failure with retries left waits: a retry that finishes completes the job; no retry fails it after the grace", async () => {
    await agentsUp(p, ["r6", "r7"]);
    const retried = await job(p, "retried");
    const abandoned = await job(p, "abandoned");
    await assign(p, "r6", [assignment(retried, "r6")]);
    await assign(p, "r7", [assignment(abandoned, "r7")]);
    const a = executionIdFor(retried.id, retried.version, "r6");
    const b = executionIdFor(abandoned.id, abandoned.version, "r7");
    event(p, "r6", status(a, retried, "error", { exitCode: 2 }));
    event(p, "r7", status(b, abandoned, "timed_out"));
    await execution(p, a, (e) => e.state === "error");
    await execution(p, b, (e) => e.state === "timed_out");
    await p.executions.idle();
    expect((await jobState(retried.id)).state).toBe("running");
    expect((await jobState(abandoned.id)).state).toBe("running");
    event(p, "r6", status(a, retried, "running", { attempt: 2 }));
    await execution(p, a, (e) => e.attempt === 2);
    event(p, "r6", status(a, retried, "finished", { attempt: 2, exitCode: 0 }));
    await waitFor(async () => (await jobState(retried.id)).state === "completed", {
      message: "the retried job to complete",
    });
    p.clock.advance(61_000);
    await p.executions.sweep();
    await waitFor(async () => (await jobState(abandoned.id)).state === "failed", {
      message: "the grace to end",
    });
    expect((await jobState(abandoned.id)).message).toBe(
      "node r7: timed out (attempt 1 of 3, restart_policy on-failure; no retry came)",
    );
  });

  it("a lost node's executions become lost (failing its run-once job); a node that comes back wins", async () => {
    await agentsUp(p, ["x1", "x2"]);
    const pipeline = await job(p, "tail-logs", { type: "pipeline" });
    const q = await job(p, "on-lost");
    await assign(p, "x1", [assignment(pipeline, "x1"), assignment(q, "x1")]);
    await assign(p, "x2", [assignment(pipeline, "x2")]);
    const pe = executionIdFor(pipeline.id, pipeline.version, "x1");
    const qe = executionIdFor(q.id, q.version, "x1");
    const keep = executionIdFor(pipeline.id, pipeline.version, "x2");
    heartbeat(p, "x1", [status(pe, pipeline, "running"), status(qe, q, "running")]);
    heartbeat(p, "x2", [status(keep, pipeline, "running")]);
    await execution(p, qe, (e) => e.state === "running");
    await execution(p, keep, (e) => e.state === "running");
    // x2 keeps heartbeating (under the fake clock); x1 goes silent past the lost timeout.
    for (let i = 0; i < 40; i++) {
      p.clock.advance(30_000);
      p.agents.get("x2")?.heartbeat();
      await waitFor(() => (p.registry.get("x2")?.lastHeartbeat ?? 0) >= p.clock.now());
      p.registry.sweep();
      if (p.registry.get("x1")?.state === "lost") break;
    }
    expect(p.registry.get("x1")?.state).toBe("lost");
    const lost = await execution(p, pe, (e) => e.state === "lost", "the execution to be lost");
    expect(lost.exception).toMatch(/node x1 was lost/);
    expect((await execution(p, keep)).state).toBe("running");
    await waitFor(async () => (await jobState(q.id)).state === "failed", {
      message: "the run-once job to fail",
    });
    expect((await jobState(q.id)).message).toBe(
      "node x1: was lost with its node (attempt 1 of 3, restart_policy on-failure)",
    );
    // x1 comes back and reports its pipeline running: the node's report wins over the inference.
    heartbeat(p, "x1", [status(pe, pipeline, "running")], Date.now() + 1000);
    expect(await execution(p, pe, (e) => e.state === "running", "the node's report to win")).toMatchObject({
      state: "running",
    });
  });

  it("ended executions are archived after the retention: readable by id, listed only with include_archived", async () => {
    await agentsUp(p, ["z1", "z2"]);
    const j = await job(p, "archived");
    for (const n of ["z1", "z2"]) await assign(p, n, [assignment(j, n)]);
    const done = executionIdFor(j.id, j.version, "z1");
    const busy = executionIdFor(j.id, j.version, "z2");
    event(p, "z1", status(done, j, "finished", { exitCode: 0 }), { result: [1, 2, 3] });
    heartbeat(p, "z2", [status(busy, j, "running")]);
    await execution(p, done, (e) => e.state === "finished");
    await execution(p, busy, (e) => e.state === "running");
    expect((await p.executions.sweep()).archived).toBe(0);
    p.clock.advance(3600_000 + 1);
    expect((await p.executions.sweep()).archived).toBeGreaterThanOrEqual(1);
    const got = await execution(p, done);
    expect(got).toMatchObject({ archived: true, state: "finished", result: [1, 2, 3] });
    const live = await api(p, "GET", `/api/v1/jobs/${j.id}/executions`);
    expect((live.body.items as Json[]).map((e) => e.id)).toEqual([busy]);
    const all = await api(p, "GET", `/api/v1/jobs/${j.id}/executions?include_archived=true`);
    expect((all.body.items as Json[]).map((e) => e.id).sort()).toEqual([busy, done].sort());
    const grpcAll = await p.grpc.listExecutions({ jobId: j.id, includeArchived: true, states: ["finished"] });
    expect(grpcAll.items.map((e) => [e.id, e.archived])).toEqual([[done, true]]);
    // Archived executions are frozen: a late report changes nothing.
    const before = p.executions.stats().ingest;
    heartbeat(p, "z1", [status(done, j, "running", { attempt: 5 })]);
    await waitFor(() => p.executions.stats().ingest.dropped.archived > before.dropped.archived, {
      message: "the late report to be dropped",
    });
    expect((await execution(p, done)).state).toBe("finished");
  });
});
