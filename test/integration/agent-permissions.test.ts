/**
 * The NATS authorization `edgectl nats-config` generates, enforced by a real nats-server: an
 * agent's credentials let it speak only for its own node. Node A can publish on its own outbound
 * subjects and do request/reply with the control plane, but can neither publish as node B, nor
 * read B's desired state or replies, nor use JetStream.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { createAgent, type WriteNatsConfigResult, writeNatsConfig } from "@edgeplane/agent";
import { AgentRegisterResponseSchema, DesiredStateSchema } from "@edgeplane/api";
import { type Bus, connectNatsBus, encode, parseOutbound, subjects } from "@edgeplane/bus";
import { createLogger } from "@edgeplane/core";
import { type NatsServer, startNats, waitFor } from "@edgeplane/testkit";
import { errors, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

type NatsBus = Bus & { readonly connection: NatsConnection };

let dir: string;
let server: NatsServer;
let generated: WriteNatsConfigResult;
const buses: NatsBus[] = [];

function seedOf(name: string): string {
  const c = generated.credentials.find((x) => x.name === name);
  if (!c) throw new Error(`no credentials for ${name}`);
  return c.file;
}

async function connectAs(name: string, inboxNode?: string): Promise<NatsBus> {
  const bus = await connectNatsBus({
    servers: [server.url],
    name: `test-${name}`,
    credsFile: seedOf(name),
    inboxPrefix: inboxNode ? subjects.inboxPrefix(inboxNode) : undefined,
  });
  buses.push(bus);
  return bus;
}

/** Server errors (permission violations) a connection reports. */
function serverErrors(nc: NatsConnection): Error[] {
  const seen: Error[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === "error") seen.push(s.error);
  })();
  return seen;
}

function isViolation(err: Error, operation: "publish" | "subscription", subject: string): boolean {
  return (
    err instanceof errors.PermissionViolationError && err.operation === operation && err.subject === subject
  );
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "agent-perms-"));
  generated = await writeNatsConfig({ nodes: ["node-a", "node-b"], outDir: dir });
  // JetStream is on, so that "A cannot use $JS.API" is the permissions' doing, not a missing feature.
  server = await startNats({ config: await readFile(generated.configFile, "utf8"), jetstream: true });
});

afterAll(async () => {
  await Promise.allSettled(buses.map((b) => b.close()));
  await server?.stop({ graceMs: 1000 });
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("per-node NATS credentials (edgectl nats-config)", () => {
  it("refuses a connection without credentials", async () => {
    await expect(
      connectNatsBus({ servers: [server.url], name: "anonymous", timeoutMs: 2000 }),
    ).rejects.toMatchObject({ code: "unavailable" });
  });

  it("lets node A publish on its own subjects and do request/reply with the control plane", async () => {
    const cp = await connectAs("control-plane");
    const a = await connectAs("node-a", "node-a");
    const seen: string[] = [];
    const off = cp.subscribe(subjects.allOutbound(">"), (m) => {
      seen.push(m.subject);
      const parsed = parseOutbound(m.subject);
      if (parsed?.kind === "register" && m.reply) {
        cp.publish(
          m.reply,
          encode(AgentRegisterResponseSchema, { accepted: true, heartbeatIntervalMs: 1234 }),
        );
      }
    });
    await cp.flush();
    a.publish(subjects.outbound("node-a", "heartbeat"), new Uint8Array([1]));
    const reply = await a.request(subjects.outbound("node-a", "register"), new Uint8Array(), {
      timeoutMs: 2000,
    });
    expect(reply.byteLength).toBeGreaterThan(0);
    await waitFor(() => seen.includes("ep.node.node-a.out.heartbeat"));
    // And the control plane can push to A.
    const got: string[] = [];
    a.subscribe(subjects.desired("node-a"), (m) => got.push(m.subject));
    await a.flush();
    cp.publish(subjects.desired("node-a"), encode(DesiredStateSchema, { nodeId: "node-a", revision: 1 }));
    await waitFor(() => got.length === 1, { message: "A receives its own desired state" });
    off();
  });

  it("refuses node A publishing as node B; the control plane never sees it", async () => {
    const cp = await connectAs("control-plane");
    const a = await connectAs("node-a", "node-a");
    const errs = serverErrors(a.connection);
    const seen: string[] = [];
    cp.subscribe(subjects.allOutbound(">"), (m) => seen.push(m.subject));
    await cp.flush();
    const forged = subjects.outbound("node-b", "heartbeat");
    a.publish(forged, new Uint8Array([6, 6, 6]));
    a.publish(subjects.desired("node-a"), new Uint8Array()); // nor forge its own desired state
    // A marker A may send, published after the forgery on the same connection, arrives after it would have.
    a.publish(subjects.outbound("node-a", "event"), new Uint8Array([1]));
    await waitFor(() => seen.includes("ep.node.node-a.out.event"));
    await cp.flush();
    expect(seen).not.toContain(forged);
    await waitFor(() => errs.some((e) => isViolation(e, "publish", forged)), {
      message: "a publish permission violation for node B's subject",
    });
    await waitFor(() => errs.some((e) => isViolation(e, "publish", subjects.desired("node-a"))));
    expect(a.isClosed).toBe(false); // a violation does not cost A its connection
  });

  it("refuses node A subscribing to node B's desired state or replies; A never receives them", async () => {
    const cp = await connectAs("control-plane");
    const a = await connectAs("node-a", "node-a");
    const b = await connectAs("node-b", "node-b");
    const snooped: string[] = [];
    const subErrors: Error[] = [];
    for (const subject of [subjects.desired("node-b"), subjects.nodeInbound("*"), "ep.inbox.node-b.>", ">"]) {
      a.connection.subscribe(subject, {
        callback: (err, msg) => {
          if (err) subErrors.push(err);
          else snooped.push(msg.subject);
        },
      });
    }
    const bGot: string[] = [];
    b.subscribe(subjects.desired("node-b"), (m) => bGot.push(m.subject));
    await Promise.all([a.flush(), b.flush()]);
    cp.publish(subjects.desired("node-b"), encode(DesiredStateSchema, { nodeId: "node-b", revision: 7 }));
    cp.publish("ep.inbox.node-b.x.y", new Uint8Array([1]));
    await waitFor(() => bGot.length === 1, { message: "B receives its desired state (the control)" });
    await a.flush();
    await waitFor(() => subErrors.length === 4, { message: "four subscription permission violations" });
    expect(subErrors.every((e) => e instanceof errors.PermissionViolationError)).toBe(true);
    expect(snooped).toEqual([]);
  });

  it("refuses node A the JetStream API", async () => {
    const jsz = await server.monitor("/jsz");
    expect(jsz.config ?? jsz.memory).toBeDefined(); // JetStream is enabled on this server
    const a = await connectAs("node-a", "node-a");
    const errs = serverErrors(a.connection);
    await expect(a.request("$JS.API.INFO", new Uint8Array(), { timeoutMs: 500 })).rejects.toBeDefined();
    await waitFor(() => errs.some((e) => isViolation(e, "publish", "$JS.API.INFO")));
  });

  it("runs a real agent under its node credentials: it registers and receives its desired state", async () => {
    const cp = await connectAs("control-plane");
    cp.subscribe(subjects.outbound("node-a", "register"), (m) => {
      if (!m.reply) return;
      cp.publish(
        m.reply,
        encode(AgentRegisterResponseSchema, {
          accepted: true,
          desiredState: create(DesiredStateSchema, { nodeId: "node-a", revision: 3 }),
        }),
      );
    });
    const beats: string[] = [];
    cp.subscribe(subjects.outbound("node-a", "heartbeat"), (m) => beats.push(m.subject));
    await cp.flush();
    const dataDir = join(dir, "agent-a");
    const agent = createAgent({
      nodeId: "node-a",
      dataDir,
      nats: { servers: [server.url], credsFile: seedOf("node-a") },
      heartbeatIntervalMs: 100,
      logger: createLogger({ component: "test", level: "error", sink: () => {} }),
    });
    try {
      await agent.start();
      await waitFor(() => agent.appliedRevision === 3, { message: "the agent applied revision 3" });
      await waitFor(() => beats.length > 0);
    } finally {
      await agent.stop({ graceMs: 0 });
    }
  });
});
