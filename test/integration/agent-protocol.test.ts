/**
 * The agent's protocol on a real nats-server: a control-plane double (test/support) answers
 * register/desired requests and records heartbeats and events (this tests the agent, not the
 * node registry); an executor double runs the work. Links are cut with a TCP proxy between one
 * agent and NATS, and the server itself is killed with SIGKILL and restarted.
 */
import { readFile } from "node:fs/promises";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type {
  Agent,
  AgentOptions,
  DesiredStateSource,
  ExecutionContext,
  ExecutionHandle,
  Executor,
} from "@edgeplane/agent";
import { type Assignment, AssignmentSchema, DesiredStateSchema } from "@edgeplane/api";
import { connectNatsBus } from "@edgeplane/bus";
import { startNats, waitFor } from "@edgeplane/testkit";
import { describe, expect, it } from "vitest";
import { startTestAgent, uid } from "../support/agent.js";
import { tempDir as tempDirIn, useCleanups } from "../support/cleanups.js";
import { connectControlPlane, type TestControlPlane } from "../support/control-plane.js";
import { useOwnNats } from "../support/nats.js";

const cleanups = useCleanups();
const nats = useOwnNats();

const tempDir = (): Promise<string> => tempDirIn(cleanups, "agent-int-");

/** A control-plane double for a known set of nodes only. */
const controlPlane = (url: string, nodes: readonly string[]): Promise<TestControlPlane> =>
  connectControlPlane(cleanups, { url }, { nodes });

/** An executor double: run-once types finish after `config.run_ms`; pipelines run until stopped. */
function testExecutor(): Executor & { readonly started: string[] } {
  const started: string[] = [];
  return {
    name: "test",
    types: ["pipeline", "query", "update", "config"],
    started,
    start(a: Assignment, ctx: ExecutionContext): ExecutionHandle {
      started.push(a.executionId);
      const runMs = (a.config as { run_ms?: number } | undefined)?.run_ms ?? 20;
      ctx.emit({ state: "running", health: { healthy: true } });
      let timer: ReturnType<typeof setTimeout> | undefined;
      if (a.type !== "pipeline") {
        timer = setTimeout(() => ctx.emit({ state: "finished", exitCode: 0, progress: 1 }), runMs);
      }
      return {
        async stop() {
          clearTimeout(timer);
          ctx.emit({ state: "canceled" });
        },
        status: () => ({ counters: { messagesIn: 1 } }),
      };
    },
  };
}

function assignment(
  id: string,
  type = "pipeline",
  extra: Omit<MessageInitShape<typeof AssignmentSchema>, "$typeName"> = {},
): Assignment {
  return create(AssignmentSchema, {
    executionId: id,
    jobId: `job-${id}`,
    type,
    desiredState: "running",
    ...extra,
  });
}

async function startAgent(options: Partial<AgentOptions> & { nodeId: string; url: string }): Promise<Agent> {
  const { url, ...rest } = options;
  return startTestAgent(cleanups, {
    dataDir: await tempDir(),
    nats: { servers: [url], pingIntervalMs: 500, maxPingOut: 2 },
    heartbeatIntervalMs: 200,
    executors: [testExecutor()],
    ...rest,
  });
}

/** Records where each applied revision came from. */
function appliedLog(agent: Agent): Array<{ revision: number; source: DesiredStateSource }> {
  const log: Array<{ revision: number; source: DesiredStateSource }> = [];
  agent.on("applied", (a) => log.push(a));
  return log;
}

/**
 * A TCP proxy between one agent and NATS, standing in for an edge link: `cut()` drops the link
 * and refuses new connections, `blackhole()` keeps sockets open but silently drops every byte
 * (a dead link that only pings can detect), `restore()` lets connections through again.
 */
class LinkProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #mode: "up" | "down" | "blackhole" = "up";

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(targetPort: number): Promise<LinkProxy> {
    const server = createServer();
    const proxy = new LinkProxy(server);
    server.on("connection", (client) => proxy.#accept(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  get url(): string {
    const address = this.#server.address();
    return `nats://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  }

  #accept(client: Socket, targetPort: number): void {
    if (this.#mode !== "up") return void client.destroy();
    const upstream = tcpConnect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      this.#sockets.add(s);
      s.on("close", () => {
        this.#sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
      s.on("error", () => {});
    }
    client.on("data", (d) => this.#mode === "up" && upstream.write(d));
    upstream.on("data", (d) => this.#mode === "up" && client.write(d));
  }

  cut(): void {
    this.#mode = "down";
    for (const s of this.#sockets) s.destroy();
  }

  blackhole(): void {
    this.#mode = "blackhole";
  }

  restore(): void {
    this.#mode = "up";
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

describe("agent on a real nats-server", () => {
  it("receives the desired state that changed while it was offline, on reconnect", async () => {
    const url = nats.server.url;
    const node = `off-${uid()}`;
    const cp = await controlPlane(url, [node]);
    cp.set(node, 1, [assignment("p1")], false);
    const proxy = await LinkProxy.start(Number(new URL(url).port));
    cleanups.push(() => proxy.close());
    const agent = await startAgent({ nodeId: node, url: proxy.url });
    const applied = appliedLog(agent);
    await waitFor(() => agent.appliedRevision === 1, { message: "revision 1 at first registration" });

    proxy.cut();
    await waitFor(() => !agent.registered, { message: "the agent notices the cut link" });
    cp.set(node, 2, [assignment("p1"), assignment("p2")]); // pushed, but nobody on the other end
    await cp.bus.flush();
    expect(agent.appliedRevision).toBe(1);
    expect(agent.executions().map((e) => e.executionId)).toEqual(["p1"]); // keeps running what it has

    proxy.restore();
    await waitFor(() => agent.appliedRevision === 2, {
      timeoutMs: 15_000,
      message: "revision 2 after reconnect",
    });
    expect(applied.map((a) => a.source)).toEqual(["register", "register"]); // fetched, not pushed
    expect(cp.registrations(node)).toHaveLength(2);
    expect(new Set(cp.registrations(node).map((r) => r.instanceId)).size).toBe(1); // a reconnect, not a restart
    expect(cp.registrations(node)[1]?.appliedRevision).toBe(1);
    await waitFor(() => cp.lastHeartbeat(node)?.appliedRevision === 2);
  });

  it("detects a dead link by pings, reconnects and re-syncs", async () => {
    const url = nats.server.url;
    const node = `dead-${uid()}`;
    const cp = await controlPlane(url, [node]);
    cp.set(node, 1, [], false);
    const proxy = await LinkProxy.start(Number(new URL(url).port));
    cleanups.push(() => proxy.close());
    // 200 ms pings, 2 outstanding: a dead link is noticed after about 0.6 s (production: 10 s × 3).
    const agent = await startAgent({
      nodeId: node,
      url: proxy.url,
      nats: { servers: [proxy.url], pingIntervalMs: 200, maxPingOut: 2 },
    });
    await waitFor(() => agent.registered && agent.appliedRevision === 1);
    proxy.blackhole();
    await waitFor(() => !agent.registered, { timeoutMs: 5000, message: "the dead link is noticed" });
    cp.set(node, 2, [assignment("p1")], false);
    proxy.restore();
    await waitFor(() => agent.appliedRevision === 2, {
      timeoutMs: 15_000,
      message: "re-synced after the dead link",
    });
  });

  it("ignores duplicate and stale desired states: nothing restarts, nothing is rewritten", async () => {
    const url = nats.server.url;
    const node = `dup-${uid()}`;
    const cp = await controlPlane(url, [node]);
    const executor = testExecutor();
    const dataDir = await tempDir();
    const agent = await startAgent({ nodeId: node, url, dataDir, executors: [executor] });
    await waitFor(() => agent.registered);
    const ignored: string[] = [];
    agent.on("ignored", (i) => ignored.push(`${i.revision}:${i.reason}`));
    const r5 = cp.set(node, 5, [assignment("p1"), assignment("q1", "query")]);
    await waitFor(() => agent.appliedRevision === 5);
    await waitFor(() => agent.executions().find((e) => e.executionId === "q1")?.state === "finished");
    const stateFile = join(dataDir, "state.json");
    await waitFor(async () => (await readFile(stateFile, "utf8")).includes('"state": "finished"'));
    const before = await readFile(stateFile, "utf8");
    cp.push(r5);
    cp.push(r5);
    cp.push(create(DesiredStateSchema, { nodeId: node, revision: 4, assignments: [] }));
    await waitFor(() => ignored.length === 3, { message: "three ignored desired states" });
    expect(ignored).toEqual(["5:duplicate", "5:duplicate", "4:stale"]);
    expect(executor.started).toEqual(["p1", "q1"]);
    expect(agent.executions().map((e) => [e.executionId, e.state])).toEqual([
      ["p1", "running"],
      ["q1", "finished"],
    ]);
    expect(await readFile(stateFile, "utf8")).toBe(before);
  });

  it("resumes from the same data dir after a restart: long-running work restarts, finished run-once work does not", async () => {
    const url = nats.server.url;
    const node = `rst-${uid()}`;
    const cp = await controlPlane(url, [node]);
    const dataDir = await tempDir();
    cp.set(node, 3, [assignment("p1"), assignment("q1", "query")], false);
    const first = testExecutor();
    const a1 = await startAgent({ nodeId: node, url, dataDir, executors: [first] });
    await waitFor(() => a1.executions().find((e) => e.executionId === "q1")?.state === "finished");
    await a1.stop({ graceMs: 1000 });

    const second = testExecutor();
    const a2 = await startAgent({ nodeId: node, url, dataDir, executors: [second] });
    expect(a2.appliedRevision).toBe(3); // from disk, before any registration
    expect(second.started).toEqual(["p1"]);
    await waitFor(() => cp.registrations(node).length === 2);
    const [r1, r2] = cp.registrations(node);
    expect(r2?.appliedRevision).toBe(3);
    expect(r2?.instanceId).not.toBe(r1?.instanceId); // a restart, not a reconnect
    const hb = await waitFor(() => {
      const h = cp.lastHeartbeat(node);
      return h?.instanceId === a2.instanceId && h.executions.length === 2 ? h : undefined;
    });
    expect(hb.appliedRevision).toBe(3);
    expect(hb.executions.map((e) => [e.executionId, e.state, e.attempt])).toEqual([
      ["p1", "running", 2],
      ["q1", "finished", 1],
    ]);
    expect(second.started).toEqual(["p1"]); // the duplicate revision 3 from registration changed nothing
  });

  it("heartbeats carry the applied revision and every status; events are unique per transition", async () => {
    const url = nats.server.url;
    const node = `hb-${uid()}`;
    const cp = await controlPlane(url, [node]);
    cp.set(node, 1, [assignment("p1"), assignment("q1", "query", { config: { run_ms: 100 } })], false);
    const agent = await startAgent({ nodeId: node, url });
    const hb = await waitFor(() => {
      const h = cp.lastHeartbeat(node);
      return h?.executions.find((e) => e.executionId === "q1")?.state === "finished" ? h : undefined;
    });
    expect(hb.appliedRevision).toBe(1);
    expect(hb.executions.find((e) => e.executionId === "p1")).toMatchObject({ state: "running", attempt: 1 });
    const seqs = cp.heartbeats.filter((h) => h.nodeId === node).map((h) => Number(h.seq));
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    await waitFor(() => cp.events.filter((e) => e.nodeId === node).length === 3);
    const mine = cp.events.filter((e) => e.nodeId === node);
    expect(new Set(mine.map((e) => e.eventId)).size).toBe(mine.length);
    expect(mine.map((e) => `${e.status?.executionId}:${e.status?.state}`).sort()).toEqual([
      "p1:running",
      "q1:finished",
      "q1:running",
    ]);
    expect(agent.appliedRevision).toBe(1);
  });

  it("starts while NATS is unreachable, runs what it persisted, and connects once it can", async () => {
    const url = nats.server.url;
    const node = `late-${uid()}`;
    const cp = await controlPlane(url, [node]);
    const dataDir = await tempDir();
    cp.set(node, 1, [assignment("p1")], false);
    const a1 = await startAgent({ nodeId: node, url, dataDir });
    await waitFor(() => a1.appliedRevision === 1);
    await a1.stop({ graceMs: 0 });

    const proxy = await LinkProxy.start(Number(new URL(url).port));
    cleanups.push(() => proxy.close());
    proxy.cut();
    const executor = testExecutor();
    const a2 = await startAgent({ nodeId: node, url: proxy.url, dataDir, executors: [executor] });
    expect(executor.started).toEqual(["p1"]); // from disk, with no connection at all
    expect(a2.registered).toBe(false);
    cp.set(node, 2, [], false);
    proxy.restore();
    await waitFor(() => a2.appliedRevision === 2, {
      timeoutMs: 15_000,
      message: "connected and synced late",
    });
    expect(a2.executions()).toEqual([]);
  });

  it("after kill -9 of nats-server and a restart, every agent reconnects, re-registers and re-syncs", async () => {
    const server = await startNats({ jetstream: false });
    cleanups.push(() => server.stop({ graceMs: 1000 }));
    // 10 agents with a connection each (as on edge boxes), 40 sharing one injected bus (as in load tests).
    const nodes = Array.from({ length: 50 }, (_, i) => `k9-${i}-${uid()}`);
    const cp = await controlPlane(server.url, nodes);
    for (const n of nodes) cp.set(n, 1, [assignment(`p-${n}`)], false);
    const shared = await connectNatsBus({ servers: [server.url], name: "test-shared-agents" });
    cleanups.push(() => shared.close());
    const agents = await Promise.all(
      nodes.map((nodeId, i) =>
        i < 10
          ? startAgent({ nodeId, url: server.url })
          : startAgent({ nodeId, url: server.url, bus: shared }),
      ),
    );
    await waitFor(() => agents.every((a) => a.appliedRevision === 1), {
      message: "all agents at revision 1",
    });

    await server.kill("SIGKILL");
    await waitFor(() => agents.every((a) => !a.registered), { message: "every agent notices" });
    for (const n of nodes) cp.set(n, 2, [assignment(`p-${n}`), assignment(`q-${n}`, "query")], false);
    await server.restart();
    await waitFor(() => agents.every((a) => a.appliedRevision === 2), {
      timeoutMs: 20_000,
      message: "every agent re-synced to revision 2",
    });
    for (const n of nodes) {
      const regs = cp.registrations(n);
      expect(regs.length).toBeGreaterThanOrEqual(2);
      expect(new Set(regs.map((r) => r.instanceId)).size).toBe(1);
    }
    await waitFor(() => nodes.every((n) => cp.lastHeartbeat(n)?.appliedRevision === 2));
  });
});
