/**
 * The node side of the control plane end to end, on a real nats-server and Redis: many simulated
 * agents register over a few NATS connections; the Nodes API (REST and gRPC) lists, filters,
 * pages, drains and labels them; simple placement puts jobs on matching nodes over NATS; bad agent
 * messages are counted and dropped without changing anything stored.
 *
 * Subjects are global (`ep.node.*`), so this file starts its own nats-server instead of sharing the
 * run's, whose other users (the agent's tests) would otherwise talk to this registry.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type Client, createClient, HeartbeatSchema, NodeService } from "@edgeplane/api";
import { type Bus, connectNatsBus, encode, subjects } from "@edgeplane/bus";
import { fromGrpcStatus, type Logger } from "@edgeplane/core";
import { SimAgent } from "@edgeplane/orchestrator";
import {
  createRedisDesiredStateStore,
  createRedisJobStore,
  createRedisNodeStore,
  type JobStore,
} from "@edgeplane/store";
import { type NatsServer, startNats, waitFor } from "@edgeplane/testkit";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { GrpcServer } from "../../packages/control-plane/src/grpc/server.js";
import { Router } from "../../packages/control-plane/src/http/router.js";
import { type NodeServices, startNodeServices } from "../../packages/control-plane/src/nodes/index.js";
import { PageTokens } from "../../packages/control-plane/src/page-token.js";
import { putPipelineJob } from "../support/jobs.js";
import { dropPrefix, testPrefix } from "../support/redis.js";

type Json = Record<string, unknown>;
interface NodeJson {
  id: string;
  labels: Record<string, string>;
  state: string;
  operator_labels?: Record<string, string>;
  message?: string;
  desired_revision?: number;
  applied_revision?: number;
  executions?: string[];
}

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
let prefix: string;
let cpBus: Bus;
let jobStore: JobStore;
let nodes: NodeServices;
let http: Server;
let httpUrl: string;
let grpcServer: GrpcServer;
let grpc: Client<typeof NodeService>;
const agentBuses: Bus[] = [];
const agents = new Map<string, SimAgent>();
let heartbeats: ReturnType<typeof setInterval>;

const REGIONS = ["eu", "us", "ap"];
const TIERS = ["edge", "gateway"];
const AGENTS = 300;
const CONNECTIONS = 3;

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${httpUrl}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Json };
}

/** Every node a REST list returns, following next_token. */
async function listAll(query: string, limit = 50): Promise<NodeJson[]> {
  const out: NodeJson[] = [];
  let token = "";
  do {
    const res = await api(
      "GET",
      `/api/v1/nodes?${query}&limit=${limit}${token ? `&next_token=${encodeURIComponent(token)}` : ""}`,
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    out.push(...(res.body.items as NodeJson[]));
    token = res.body.next_token as string;
  } while (token);
  return out;
}

const submit = (name: string, extra: Json = {}) => putPipelineJob(jobStore, prefix.slice(0, -1), name, extra);

beforeAll(async () => {
  nats = await startNats({ jetstream: false, config: "max_payload: 4194304" });
  redis = new Redis(inject("redisUrl"), { maxRetriesPerRequest: null });
  prefix = testPrefix();
  cpBus = await connectNatsBus({ servers: [nats.url], name: "test-control-plane" });
  jobStore = createRedisJobStore({ redis, prefix });
  const router = new Router();
  grpcServer = new GrpcServer(logger);
  nodes = await startNodeServices({
    bus: cpBus,
    jobStore,
    nodeStore: createRedisNodeStore({ redis, prefix }),
    desiredStore: createRedisDesiredStateStore({ redis, prefix }),
    tokens: new PageTokens(),
    router,
    grpc: grpcServer,
    logger,
    registry: { heartbeatIntervalMs: 1000, flushIntervalMs: 200 },
    placement: { pollIntervalMs: 50 },
  });
  const port = await grpcServer.listen("127.0.0.1:0");
  grpc = createClient(NodeService, `127.0.0.1:${port}`, {
    fromStatus: fromGrpcStatus,
    defaultTimeoutMs: 10_000,
  });
  http = createServer((req, res) => void router.handle(req, res, logger));
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;

  // Many agents per connection, as the benchmark and a real site gateway would have.
  for (let c = 0; c < CONNECTIONS; c++)
    agentBuses.push(await connectNatsBus({ servers: [nats.url], name: `agents-${c}` }));
  await Promise.all(
    Array.from({ length: AGENTS }, async (_, i) => {
      const id = `node-${String(i).padStart(4, "0")}`;
      const agent = new SimAgent({
        bus: agentBuses[i % CONNECTIONS] as Bus,
        nodeId: id,
        labels: {
          region: REGIONS[i % 3] as string,
          tier: TIERS[i % 2] as string,
          idx: String(i),
          "edgeplane.io/arch": i % 5 === 0 ? "arm64" : "amd64",
        },
      }).listen();
      agents.set(id, agent);
      const reply = await agent.register();
      expect(reply.accepted, reply.message).toBe(true);
    }),
  );
  heartbeats = setInterval(() => {
    for (const a of agents.values()) a.heartbeat();
  }, 500);
});

afterAll(async () => {
  clearInterval(heartbeats);
  grpc?.close();
  await new Promise((r) => http?.close(r));
  await grpcServer?.stop(1000);
  await nodes?.stop();
  for (const a of agents.values()) a.close();
  await Promise.all([cpBus, ...agentBuses].map((b) => b?.close()));
  await dropPrefix(redis, prefix);
  await redis.quit();
  await nats?.stop();
});

describe("registration of many agents over real NATS", () => {
  it("every agent appears ready with its labels", async () => {
    const all = await listAll("");
    expect(all).toHaveLength(AGENTS);
    expect(all.every((n) => n.state === "ready")).toBe(true);
    expect(all.map((n) => n.id)).toEqual([...agents.keys()].sort());
    const n7 = all.find((n) => n.id === "node-0007");
    expect(n7?.labels).toEqual({ region: "us", tier: "gateway", idx: "7", "edgeplane.io/arch": "amd64" });
    expect(nodes.registry.stats().persist.pending).toBe(0);
    expect(await redis.hlen(`${prefix}nodes:rec`)).toBe(AGENTS);
  });

  it("GET /api/v1/nodes?selector= returns exactly the matching nodes, over several pages", async () => {
    const cases: Array<[string, (i: number) => boolean]> = [
      ["region=eu", (i) => i % 3 === 0],
      ["region in (eu,ap),tier=edge", (i) => i % 3 !== 1 && i % 2 === 0],
      ["edgeplane.io/arch=arm64,region!=us", (i) => i % 5 === 0 && i % 3 !== 1],
      ["idx>250", (i) => i > 250],
      ["!missing", () => true],
    ];
    for (const [selector, matches] of cases) {
      const got = (await listAll(`selector=${encodeURIComponent(selector)}`, 37)).map((n) => n.id);
      const want = [...agents.keys()].filter((_, i) => matches(i)).sort();
      expect(got, selector).toEqual(want);
    }
  });

  it("gRPC ListNodes agrees with REST, with states and tokens", async () => {
    const ids: string[] = [];
    let nextToken = "";
    do {
      const page = await grpc.listNodes({ selector: "tier=edge", states: ["ready"], limit: 64, nextToken });
      ids.push(...page.items.map((n) => n.id));
      nextToken = page.nextToken;
    } while (nextToken);
    expect(ids).toEqual((await listAll("selector=tier%3Dedge&state=ready")).map((n) => n.id));
    const node = await grpc.getNode({ id: "node-0003" });
    expect(node.node).toMatchObject({ id: "node-0003", state: "ready", labels: { region: "eu" } });
  });

  it("refuses bad queries, tokens of another query, and unknown nodes", async () => {
    const bad = await api("GET", "/api/v1/nodes?selector=region%20in%20(eu");
    expect(bad.status).toBe(400);
    expect((bad.body.error as Json).message).toMatch(/^selector: /);
    expect((await api("GET", "/api/v1/nodes?state=sleeping")).status).toBe(400);
    expect((await api("GET", "/api/v1/nodes?limit=5000")).status).toBe(400);
    expect((await api("GET", "/api/v1/nodes?colour=red")).status).toBe(400);
    const page = await api("GET", "/api/v1/nodes?selector=region%3Deu&limit=10");
    const other = await api(
      "GET",
      `/api/v1/nodes?selector=region%3Dus&limit=10&next_token=${page.body.next_token as string}`,
    );
    expect(other.status).toBe(400);
    expect((other.body.error as Json).message).toMatch(/different query/);
    const missing = await api("GET", "/api/v1/nodes/nope");
    expect(missing.status).toBe(404);
    await expect(grpc.getNode({ id: "nope" })).rejects.toMatchObject({ code: "not_found" });
  });
});

describe("operator actions", () => {
  it("drains and undrains a node; the drain is persisted before the answer", async () => {
    const drained = await api("POST", "/api/v1/nodes/node-0010/drain", { reason: "disk swap" });
    expect(drained.status).toBe(200);
    expect(drained.body.node).toMatchObject({
      id: "node-0010",
      state: "draining",
      message: "drained by operator: disk swap",
    });
    expect(JSON.parse((await redis.hget(`${prefix}nodes:rec`, "node-0010")) as string)).toMatchObject({
      drained: true,
      state: "draining",
    });
    expect((await listAll("state=draining")).map((n) => n.id)).toEqual(["node-0010"]);
    const back = await grpc.drainNode({ id: "node-0010", undrain: true });
    expect(back.node?.state).toBe("ready");
    expect((await api("POST", "/api/v1/nodes/node-0010/drain", { undrain: "yes" })).status).toBe(400);
    expect((await api("POST", "/api/v1/nodes/nope/drain", {})).status).toBe(404);
  });

  it("merges operator labels over the agent's and refuses edgeplane.io/ keys", async () => {
    const res = await api("POST", "/api/v1/nodes/node-0011/labels", {
      labels: { tier: "core", owner: "team-a" },
    });
    expect(res.status).toBe(200);
    expect((res.body.node as NodeJson).labels).toMatchObject({ tier: "core", owner: "team-a", region: "ap" });
    expect((res.body.node as NodeJson).operator_labels).toEqual({ tier: "core", owner: "team-a" });
    expect((await listAll("selector=owner%3Dteam-a")).map((n) => n.id)).toEqual(["node-0011"]);
    const refused = await api("POST", "/api/v1/nodes/node-0011/labels", {
      labels: { "edgeplane.io/arch": "x" },
    });
    expect(refused.status).toBe(400);
    expect((refused.body.error as Json).details).toEqual([
      {
        field: 'labels["edgeplane.io/arch"]',
        description: expect.stringContaining("operators cannot change them"),
      },
    ]);
    const viaGrpc = await grpc.setNodeLabels({ id: "node-0011", labels: { owner: "" }, remove: ["tier"] });
    expect(viaGrpc.node?.operatorLabels).toEqual({});
    expect(viaGrpc.node?.labels.tier).toBe("gateway");
    // A re-registration keeps operator labels.
    await agents.get("node-0011")?.register();
    await api("POST", "/api/v1/nodes/node-0011/labels", { labels: { owner: "team-b" } });
    await agents.get("node-0011")?.register();
    expect(((await api("GET", "/api/v1/nodes/node-0011")).body.node as NodeJson).labels.owner).toBe("team-b");
  });
});

describe("simple placement over NATS", () => {
  it("puts a job on every matching ready node, follows label changes, removes a stopped job", async () => {
    const job = await submit("eu-gateways", {
      selector: { match_labels: { region: "eu", tier: "gateway" } },
    });
    const matching = [...agents.values()].filter(
      (a) => a.labels.region === "eu" && a.labels.tier === "gateway",
    );
    await waitFor(() => matching.every((a) => a.desired?.assignments.some((x) => x.jobId === job.id)), {
      timeoutMs: 10_000,
      message: "every matching agent to get the job",
    });
    const others = [...agents.values()].filter((a) => !matching.includes(a));
    expect(others.some((a) => a.desired?.assignments.some((x) => x.jobId === job.id))).toBe(false);
    await waitFor(async () => (await jobStore.getJob(job.id))?.state === "running", {
      message: "the job to run",
    });
    // The heartbeat reports executions; the API shows them.
    await waitFor(
      async () => {
        const n = (await api("GET", `/api/v1/nodes/${matching[0]?.nodeId}`)).body.node as NodeJson;
        return n.executions?.length === 1 && n.applied_revision === n.desired_revision;
      },
      { message: "executions in GET /nodes/{id}" },
    );

    // A node that starts matching later gets it; one that stops matching loses it.
    const late = agents.get("node-0001") as SimAgent; // us, gateway
    await api("POST", "/api/v1/nodes/node-0001/labels", { labels: { region: "eu" } });
    const leaver = matching[0] as SimAgent;
    await api("POST", `/api/v1/nodes/${leaver.nodeId}/labels`, { labels: { tier: "edge" } });
    await waitFor(
      () =>
        late.desired?.assignments.some((x) => x.jobId === job.id) &&
        !leaver.desired?.assignments.some((x) => x.jobId === job.id),
      { timeoutMs: 10_000, message: "placement to follow the label changes" },
    );

    await jobStore.updateStatus(job.id, { state: "stopped", message: "stopped by a user", now: Date.now() });
    await waitFor(
      () => [...agents.values()].every((a) => !a.desired?.assignments.some((x) => x.jobId === job.id)),
      {
        timeoutMs: 10_000,
        message: "the stopped job to leave every node",
      },
    );
  });

  it("an agent that was offline while its desired state changed receives it on reconnect", async () => {
    const id = "node-0299";
    const old = agents.get(id) as SimAgent;
    agents.delete(id); // stops heartbeating
    old.close();
    const before = old.appliedRevision;
    const job = await submit("while-away", { selector: { match_ids: [id] } });
    await waitFor(async () => (nodes.registry.get(id)?.desiredRevision ?? 0) > before, {
      timeoutMs: 10_000,
      message: "a new desired revision for the offline node",
    });
    expect(old.appliedRevision).toBe(before); // the push went nowhere
    // Back on a new connection, without registering or fetching: only heartbeats.
    const bus = await connectNatsBus({ servers: [nats.url], name: "agent-back" });
    agentBuses.push(bus);
    const back = new SimAgent({ bus, nodeId: id, labels: old.labels, instanceId: old.instanceId }).listen();
    back.appliedRevision = before;
    back.desired = old.desired;
    agents.set(id, back);
    await waitFor(() => back.desired?.assignments.some((a) => a.jobId === job.id), {
      timeoutMs: 10_000,
      message: "the re-sent desired state",
    });
    expect(back.appliedRevision).toBe(nodes.registry.get(id)?.desiredRevision);
    expect(nodes.registry.stats().desiredResends).toBeGreaterThan(0);
  });
});

describe("bad agent messages", () => {
  it("counts, drops and logs once: another node's id, malformed protobuf, 2 MB, unknown node; nothing stored changes", async () => {
    await nodes.registry.flush();
    await waitFor(() => nodes.placement.stats().queued === 0);
    const nodesBefore = await redis.hgetall(`${prefix}nodes:rec`);
    const desiredBefore = await redis.hgetall(`${prefix}nodes:desired`);
    const dropped = { ...nodes.registry.stats().dropped };
    warnings.length = 0;
    const bus = await connectNatsBus({ servers: [nats.url], name: "attacker" });
    try {
      for (let i = 0; i < 3; i++) {
        // node-0001 claims to be node-0002 (on its own subject).
        bus.publish(
          subjects.outbound("node-0001", "heartbeat"),
          encode(HeartbeatSchema, { nodeId: "node-0002", seq: 1n, appliedRevision: 999 }),
        );
        bus.publish(
          subjects.outbound("node-0001", "heartbeat"),
          new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0x0f]),
        );
        bus.publish(subjects.outbound("node-0001", "event"), new Uint8Array(2 * 1024 * 1024));
        bus.publish(
          subjects.outbound("ghost", "heartbeat"),
          encode(HeartbeatSchema, { nodeId: "ghost", seq: 1n }),
        );
      }
      await bus.flush();
      await waitFor(() => nodes.registry.stats().dropped.unknown_node >= dropped.unknown_node + 3, {
        message: "the bad messages to arrive",
      });
      const after = nodes.registry.stats().dropped;
      expect(after.mismatched_identity - dropped.mismatched_identity).toBe(3);
      expect(after.malformed - dropped.malformed).toBe(3);
      expect(after.oversized - dropped.oversized).toBe(3);
      expect(after.unknown_node - dropped.unknown_node).toBe(3);
      // Logged once per (reason, node).
      expect(warnings.filter((w) => w.startsWith("dropped an agent message"))).toHaveLength(4);
      await nodes.registry.flush();
      expect(await redis.hgetall(`${prefix}nodes:rec`)).toEqual(nodesBefore);
      expect(await redis.hgetall(`${prefix}nodes:desired`)).toEqual(desiredBefore);
      expect(nodes.registry.has("ghost")).toBe(false);
      expect(nodes.registry.get("node-0002")?.appliedRevision).not.toBe(999);
    } finally {
      await bus.close();
    }
  });
});
