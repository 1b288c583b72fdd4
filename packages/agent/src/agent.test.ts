/**
 * The agent against an in-process bus (MemoryBroker), a control plane double written here, and
 * an executor double: the protocol behaviour without a network. The same scenarios run against
 * a real nats-server in test/integration/agent-protocol.test.ts.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type MessageInitShape, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  type AgentRegisterRequest,
  AgentRegisterRequestSchema,
  AgentRegisterResponseSchema,
  type Assignment,
  AssignmentSchema,
  type DesiredState,
  DesiredStateSchema,
  type ExecutionEvent,
  ExecutionEventSchema,
  type Heartbeat,
  HeartbeatSchema,
  type LogBatch,
  LogBatchSchema,
} from "@edgeplane/api";
import { type Bus, decode, encode, MemoryBroker, parseOutbound, subjects } from "@edgeplane/bus";
import { createLogger } from "@edgeplane/core";
import { waitFor } from "@edgeplane/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { type Agent, type AgentOptions, createAgent, MAX_RUN_ONCE_ATTEMPTS } from "./agent.js";
import type { ExecutionContext, ExecutionHandle, Executor } from "./executor.js";
import { loadState } from "./state-file.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "agent-unit-"));
  cleanups.push(() => rm(d, { recursive: true, force: true }));
  return d;
}

const quiet = createLogger({ component: "test", level: "error", sink: () => {} });

/** A control plane double: answers register/desired requests and records what agents send. */
class FakeControlPlane {
  readonly registers: AgentRegisterRequest[] = [];
  readonly heartbeats: Heartbeat[] = [];
  readonly events: ExecutionEvent[] = [];
  readonly logs: LogBatch[] = [];
  readonly desired = new Map<string, DesiredState>();
  accept = true;
  heartbeatIntervalMs = 0;
  readonly #bus: Bus;
  readonly #offs: Array<() => void> = [];

  constructor(bus: Bus) {
    this.#bus = bus;
    this.#offs.push(
      bus.subscribe(subjects.allOutbound(">"), (m) => {
        const parsed = parseOutbound(m.subject);
        if (!parsed) return;
        const { nodeId, kind } = parsed;
        if (kind === "register" && m.reply) {
          this.registers.push(decode(AgentRegisterRequestSchema, m.data));
          bus.publish(
            m.reply,
            encode(AgentRegisterResponseSchema, {
              accepted: this.accept,
              message: this.accept ? "" : "node is not allowed",
              heartbeatIntervalMs: this.heartbeatIntervalMs,
              desiredState: this.desired.get(nodeId),
            }),
          );
        } else if (kind === "desired" && m.reply) {
          bus.publish(m.reply, encode(DesiredStateSchema, this.desired.get(nodeId) ?? { nodeId }));
        } else if (kind === "heartbeat") this.heartbeats.push(decode(HeartbeatSchema, m.data));
        else if (kind === "event") this.events.push(decode(ExecutionEventSchema, m.data));
        else if (kind === "logs") this.logs.push(decode(LogBatchSchema, m.data));
      }),
    );
  }

  /** Sets a node's desired state and pushes it. */
  set(nodeId: string, revision: number, assignments: Assignment[], push = true): DesiredState {
    const ds = create(DesiredStateSchema, { nodeId, revision, assignments });
    this.desired.set(nodeId, ds);
    if (push) this.push(ds);
    return ds;
  }

  /** Publishes `ds` on the desired subject of `to` (default: the node the body names). */
  push(ds: DesiredState, to = ds.nodeId): void {
    this.#bus.publish(subjects.desired(to), encode(DesiredStateSchema, ds));
  }

  lastHeartbeat(nodeId: string): Heartbeat | undefined {
    return this.heartbeats.filter((h) => h.nodeId === nodeId).at(-1);
  }

  close(): void {
    for (const off of this.#offs) off();
  }
}

/**
 * An executor double: query/update/config finish after `config.run_ms`, pipelines run until
 * stopped. Attempts up to `config.fail_until_attempt` fail: run-once ones exit 1, pipelines end in
 * `error` on their own after `run_ms`.
 */
function fakeExecutor(): Executor & { readonly started: string[]; readonly stopped: string[] } {
  const started: string[] = [];
  const stopped: string[] = [];
  return {
    name: "fake",
    types: ["pipeline", "query", "update", "config"],
    started,
    stopped,
    start(a: Assignment, ctx: ExecutionContext): ExecutionHandle {
      started.push(a.executionId);
      const config = (a.config ?? {}) as {
        run_ms?: number;
        exit_code?: number;
        hang?: boolean;
        fail_until_attempt?: number;
      };
      const failing = ctx.attempt <= (config.fail_until_attempt ?? 0);
      let messages = 0;
      ctx.emit({ state: "running", health: { healthy: true } });
      ctx.log("INFO", "stdout", `hello from ${a.executionId}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      if (a.type === "pipeline" && failing) {
        timer = setTimeout(
          () => ctx.emit({ state: "error", exception: "pipeline crashed" }),
          config.run_ms ?? 10,
        );
      } else if (a.type !== "pipeline" && !config.hang) {
        timer = setTimeout(() => {
          const code = failing ? 1 : (config.exit_code ?? 0);
          ctx.emit({
            state: code === 0 ? "finished" : "error",
            exitCode: code,
            progress: 1,
            result: { ok: code === 0 },
          });
        }, config.run_ms ?? 10);
      }
      return {
        async stop() {
          clearTimeout(timer);
          stopped.push(a.executionId);
          ctx.emit({ state: "canceled" });
        },
        status: () => ({ counters: { messagesIn: ++messages, messagesOut: messages } }),
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
    jobVersion: 1,
    type,
    desiredState: "running",
    ...extra,
  });
}

interface Setup {
  readonly broker: MemoryBroker;
  readonly cp: FakeControlPlane;
}

function setup(): Setup {
  const broker = new MemoryBroker();
  const cpBus = broker.connect();
  const cp = new FakeControlPlane(cpBus);
  cleanups.push(() => {
    cp.close();
    return cpBus.close();
  });
  return { broker, cp };
}

async function startAgent(broker: MemoryBroker, options: Partial<AgentOptions> = {}): Promise<Agent> {
  const bus = broker.connect();
  const agent = createAgent({
    nodeId: "n1",
    dataDir: await tempDir(),
    bus,
    heartbeatIntervalMs: 40,
    retry: { baseMs: 10, maxMs: 50 },
    logger: quiet,
    executors: [fakeExecutor()],
    ...options,
  });
  cleanups.push(async () => {
    await agent.stop({ graceMs: 0 });
    await bus.close();
  });
  await agent.start();
  return agent;
}

describe("agent protocol (in-process bus)", () => {
  it("registers with its labels and applies the desired state of the register reply", async () => {
    const { broker, cp } = setup();
    cp.set("n1", 3, [assignment("p1")], false);
    const agent = await startAgent(broker, { labels: { site: "berlin" } });
    await waitFor(() => agent.appliedRevision === 3, { message: "revision 3 applied" });
    const reg = cp.registers[0];
    expect(reg).toMatchObject({ nodeId: "n1", appliedRevision: 0, executors: ["fake"] });
    expect(reg?.labels).toMatchObject({ site: "berlin", "edgeplane.io/os": process.platform });
    expect(reg?.instanceId).toBe(agent.instanceId);
    const hb = await waitFor(() => {
      const h = cp.lastHeartbeat("n1");
      return h && h.appliedRevision === 3 && h.executions[0]?.state === "running" ? h : undefined;
    });
    expect(hb.executions[0]).toMatchObject({ executionId: "p1", jobId: "job-p1", attempt: 1 });
    expect(hb.executions[0]?.counters?.messagesIn).toBeGreaterThan(0n);
    expect(hb.instanceId).toBe(agent.instanceId);
    await waitFor(() => cp.logs.some((b) => b.executionId === "p1" && b.lines[0]?.text === "hello from p1"));
  });

  it("ignores duplicate and stale desired states and applies newer ones idempotently", async () => {
    const { broker, cp } = setup();
    const executor = fakeExecutor();
    const agent = await startAgent(broker, { executors: [executor] });
    const ignored: string[] = [];
    // (Revision 0 is the empty state fetched at registration: a duplicate of the empty start.)
    agent.on("ignored", (i) => i.revision > 0 && ignored.push(`${i.revision}:${i.reason}`));
    await waitFor(() => agent.registered);
    const r5 = cp.set("n1", 5, [assignment("p1"), assignment("p2")]);
    await waitFor(() => agent.appliedRevision === 5);
    cp.push(r5); // duplicate
    cp.push(create(DesiredStateSchema, { nodeId: "n1", revision: 4, assignments: [] })); // stale
    cp.push(create(DesiredStateSchema, { nodeId: "n2", revision: 9, assignments: [] })); // another node's subject
    cp.push(create(DesiredStateSchema, { nodeId: "other", revision: 9, assignments: [] }), "n1"); // wrong body
    await waitFor(() => ignored.length === 3, { message: "three ignored desired states" });
    expect(ignored).toEqual(["5:duplicate", "4:stale", "9:wrong_node"]);
    expect(executor.started).toEqual(["p1", "p2"]);
    expect(agent.executions().map((e) => e.state)).toEqual(["running", "running"]);
    // Revision 6 keeps p1, stops p2 (desired stopped) and adds p3.
    cp.set("n1", 6, [
      assignment("p1"),
      assignment("p2", "pipeline", { desiredState: "stopped" }),
      assignment("p3"),
    ]);
    await waitFor(() => agent.appliedRevision === 6);
    expect(executor.started).toEqual(["p1", "p2", "p3"]);
    expect(executor.stopped).toEqual(["p2"]);
    expect(agent.executions().map((e) => [e.executionId, e.state])).toEqual([
      ["p1", "running"],
      ["p2", "canceled"],
      ["p3", "running"],
    ]);
    // Revision 7 drops everything but p3.
    cp.set("n1", 7, [assignment("p3")]);
    await waitFor(() => agent.appliedRevision === 7);
    expect(executor.stopped).toEqual(["p2", "p1"]);
    expect(agent.executions().map((e) => e.executionId)).toEqual(["p3"]);
  });

  it("ends an assignment whose type has no enabled executor in error, naming the agent.yaml switch", async () => {
    const { broker, cp } = setup();
    cp.set("n1", 1, [assignment("q1", "query"), assignment("x1", "teleport")], false);
    const agent = await startAgent(broker, { executors: [] });
    await waitFor(() => agent.appliedRevision === 1);
    const [q1, x1] = agent.executions();
    expect(q1).toMatchObject({
      state: "error",
      exception: 'no executor for type "query" is enabled in agent.yaml (executors.exec.enabled)',
    });
    expect(x1?.exception).toMatch(/no executor runs job type "teleport"/);
    await waitFor(() => cp.events.filter((e) => e.status?.state === "error").length === 2);
  });

  it("sends every transition at once as an event with a unique id, after persisting a run-once result", async () => {
    const { broker, cp } = setup();
    const dir = await tempDir();
    cp.set("n1", 1, [assignment("q1", "query", { config: { run_ms: 20 } })], false);
    await startAgent(broker, { dataDir: dir });
    const done = await waitFor(() => cp.events.find((e) => e.status?.state === "finished"));
    expect(done.result && toJson(ValueSchema, done.result)).toEqual({ ok: true });
    expect(done.status).toMatchObject({ executionId: "q1", exitCode: 0, progress: 1 });
    expect(done.status?.startTime).toBeDefined();
    expect(done.status?.finishTime).toBeDefined();
    const states = cp.events.filter((e) => e.status?.executionId === "q1").map((e) => e.status?.state);
    expect(states).toEqual(["running", "finished"]);
    const ids = cp.events.map((e) => e.eventId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => id.startsWith("evt-"))).toBe(true);
    // The final status was on disk before the event went out.
    expect((await loadState(dir))?.finished.get("q1")?.state).toBe("finished");
  });

  it("stops a run-once execution at its execution_timeout", async () => {
    const { broker, cp } = setup();
    cp.set(
      "n1",
      1,
      [assignment("q1", "query", { config: { hang: true }, timeouts: { executionTimeout: 1 } })],
      false,
    );
    const agent = await startAgent(broker);
    const status = await waitFor(() => agent.executions().find((e) => e.state === "timed_out"), {
      timeoutMs: 3000,
    });
    expect(status.exception).toMatch(/execution_timeout of 1 s/);
  });

  it("resumes from its data dir: long-running work restarts, finished run-once work does not re-run", async () => {
    const { broker, cp } = setup();
    const dir = await tempDir();
    cp.set(
      "n1",
      4,
      [assignment("p1"), assignment("q1", "query"), assignment("q2", "query", { config: { hang: true } })],
      false,
    );
    const first = fakeExecutor();
    const a1 = await startAgent(broker, { dataDir: dir, executors: [first] });
    await waitFor(() => a1.executions().find((e) => e.executionId === "q1")?.state === "finished");
    await a1.stop({ graceMs: 50 });
    expect(first.started).toEqual(["p1", "q1", "q2"]);

    // Restart offline (the control plane does not answer): it resumes from disk alone.
    cp.close();
    const second = fakeExecutor();
    const a2 = await startAgent(broker, { dataDir: dir, executors: [second] });
    expect(a2.appliedRevision).toBe(4);
    expect(second.started.sort()).toEqual(["p1", "q2"]);
    const byId = Object.fromEntries(a2.executions().map((e) => [e.executionId, e]));
    expect(byId.q1).toMatchObject({ state: "finished", attempt: 1 });
    expect(byId.q2).toMatchObject({ state: "running", attempt: 2 });
    expect(byId.p1).toMatchObject({ state: "running", attempt: 2 });
  });

  it("does not re-run an interrupted run-once assignment whose restart policy is never", async () => {
    const { broker, cp } = setup();
    const dir = await tempDir();
    cp.set("n1", 1, [assignment("u1", "update", { config: { hang: true }, restartPolicy: "never" })], false);
    const a1 = await startAgent(broker, { dataDir: dir });
    await waitFor(() => a1.executions()[0]?.state === "running");
    await a1.stop({ graceMs: 0 });
    const second = fakeExecutor();
    const a2 = await startAgent(broker, { dataDir: dir, executors: [second] });
    expect(second.started).toEqual([]);
    expect(a2.executions()[0]).toMatchObject({
      state: "error",
      exception: expect.stringMatching(/restart_policy is never/),
    });
  });

  it("keeps heartbeating while the control plane does not answer, and registers once it does", async () => {
    const broker = new MemoryBroker();
    const watcher = broker.connect();
    const beats: Heartbeat[] = [];
    watcher.subscribe(subjects.outbound("n1", "heartbeat"), (m) =>
      beats.push(decode(HeartbeatSchema, m.data)),
    );
    cleanups.push(() => watcher.close());
    const agent = await startAgent(broker);
    await waitFor(() => beats.length >= 3, { message: "heartbeats without a control plane" });
    expect(agent.registered).toBe(false);
    const seqs = beats.map((b) => b.seq);
    expect([...seqs].sort((x, y) => (x < y ? -1 : 1))).toEqual(seqs);
    const cpBus = broker.connect();
    const cp = new FakeControlPlane(cpBus);
    cleanups.push(() => cpBus.close());
    cp.set("n1", 2, [assignment("p1")], false);
    await waitFor(() => agent.registered && agent.appliedRevision === 2, { message: "late registration" });
  });

  it("takes the heartbeat interval from the register reply", async () => {
    const { broker, cp } = setup();
    cp.heartbeatIntervalMs = 60;
    const agent = await startAgent(broker, { heartbeatIntervalMs: 60_000 });
    await waitFor(() => agent.registered);
    const before = cp.heartbeats.length;
    await waitFor(() => cp.heartbeats.length >= before + 3, {
      message: "heartbeats at the control plane's pace",
    });
  });

  it("ends an execution in error when its executor throws at start", async () => {
    const { broker, cp } = setup();
    cp.set("n1", 1, [assignment("p1")], false);
    const broken: Executor = {
      name: "broken",
      types: ["pipeline"],
      start() {
        throw new Error("no such device /dev/ttyUSB0");
      },
    };
    const agent = await startAgent(broker, { executors: [broken] });
    await waitFor(() => agent.appliedRevision === 1);
    expect(agent.executions()[0]).toMatchObject({
      state: "error",
      exception: 'executor "broken" could not start it: no such device /dev/ttyUSB0',
    });
  });

  it("retries while the control plane refuses the registration", async () => {
    const { broker, cp } = setup();
    cp.accept = false;
    const agent = await startAgent(broker);
    await waitFor(() => cp.registers.length >= 3);
    expect(agent.registered).toBe(false);
    cp.accept = true;
    await waitFor(() => agent.registered);
  });

  it("stops gracefully: pipelines stop, run-once work finishes within grace, a final heartbeat goes out", async () => {
    const { broker, cp } = setup();
    const executor = fakeExecutor();
    cp.set("n1", 1, [assignment("p1"), assignment("q1", "query", { config: { run_ms: 150 } })], false);
    const agent = await startAgent(broker, { executors: [executor], heartbeatIntervalMs: 60_000 });
    await waitFor(() => agent.executions().every((e) => e.state === "running"));
    const before = cp.heartbeats.length;
    await agent.stop({ graceMs: 5000 });
    const last = await waitFor(() => (cp.heartbeats.length > before ? cp.lastHeartbeat("n1") : undefined));
    const byId = Object.fromEntries(last.executions.map((e) => [e.executionId, e]));
    expect(byId.q1?.state).toBe("finished");
    expect(byId.p1).toMatchObject({
      state: "waiting",
      exception: expect.stringMatching(/restarts when the agent restarts/),
    });
    expect(executor.stopped).toEqual(["p1"]);
    // A stopped agent takes no more desired state.
    cp.set("n1", 2, []);
    await new Promise((r) => setImmediate(r));
    expect(agent.appliedRevision).toBe(1);
  });

  it("refuses operator labels under edgeplane.io/ and state files of another node", async () => {
    const { broker, cp } = setup();
    await expect(startAgent(broker, { labels: { "edgeplane.io/os": "plan9" } })).rejects.toThrow(
      /set by the agent itself/,
    );
    const dir = await tempDir();
    const a1 = await startAgent(broker, { dataDir: dir });
    await a1.stop();
    cp.set("n1", 1, [], false);
    const a2 = await startAgent(broker, { dataDir: dir });
    await waitFor(() => a2.appliedRevision === 1);
    await a2.stop();
    await expect(startAgent(broker, { dataDir: dir, nodeId: "n2" })).rejects.toThrow(/belongs to node "n1"/);
  });
});

describe("restart policy (retries of failed executions)", () => {
  /** [state, attempt] of every event of execution `id`, in order. */
  const transitions = (cp: FakeControlPlane, id: string): Array<[string, number]> =>
    cp.events
      .filter((e) => e.status?.executionId === id)
      .map((e) => [e.status?.state ?? "", e.status?.attempt ?? 0]);
  const settle = (ms = 100): Promise<void> => new Promise((r) => setTimeout(r, ms));

  it("re-runs a failed run-once execution under on-failure (the default) up to 3 attempts, then stays in error", async () => {
    const { broker, cp } = setup();
    const dir = await tempDir();
    const executor = fakeExecutor();
    cp.set("n1", 1, [assignment("q1", "query", { config: { exit_code: 1 } })], false);
    const agent = await startAgent(broker, { dataDir: dir, executors: [executor], retryBaseMs: 10 });
    await waitFor(() => transitions(cp, "q1").length === 6, { message: "three attempts" });
    await settle();
    expect(MAX_RUN_ONCE_ATTEMPTS).toBe(3);
    expect(executor.started).toEqual(["q1", "q1", "q1"]);
    expect(transitions(cp, "q1")).toEqual([
      ["running", 1],
      ["error", 1],
      ["running", 2],
      ["error", 2],
      ["running", 3],
      ["error", 3],
    ]);
    const starts = cp.events
      .filter((e) => e.status?.state === "running")
      .map((e) => e.status?.startTime?.nanos);
    expect(starts.every((t) => t !== undefined)).toBe(true);
    expect(agent.executions()[0]).toMatchObject({ state: "error", attempt: 3, exitCode: 1 });
    const state = await loadState(dir);
    expect(state?.finished.get("q1")).toMatchObject({ state: "error", attempt: 3 });
    expect(state?.attempts.get("q1")).toBe(3);
    expect(state?.retries?.size).toBe(0);
  });

  it("does not re-run a failed execution whose restart policy is never", async () => {
    const { broker, cp } = setup();
    const executor = fakeExecutor();
    cp.set(
      "n1",
      1,
      [
        assignment("q1", "query", { config: { exit_code: 1 }, restartPolicy: "never" }),
        assignment("p1", "pipeline", { config: { fail_until_attempt: 1 }, restartPolicy: "never" }),
      ],
      false,
    );
    const agent = await startAgent(broker, { executors: [executor], retryBaseMs: 10 });
    await waitFor(() => agent.executions().every((e) => e.state === "error"));
    await settle();
    expect(executor.started.sort()).toEqual(["p1", "q1"]);
    expect(transitions(cp, "q1")).toEqual([
      ["running", 1],
      ["error", 1],
    ]);
    expect(transitions(cp, "p1")).toEqual([
      ["running", 1],
      ["error", 1],
    ]);
  });

  it("re-runs failures under always, but never a run-once execution that finished", async () => {
    const { broker, cp } = setup();
    const executor = fakeExecutor();
    cp.set(
      "n1",
      1,
      [
        assignment("q1", "query", { config: { fail_until_attempt: 1 }, restartPolicy: "always" }),
        assignment("q2", "query", { restartPolicy: "always" }),
      ],
      false,
    );
    const agent = await startAgent(broker, { executors: [executor], retryBaseMs: 10 });
    await waitFor(() => agent.executions().every((e) => e.state === "finished"));
    await settle();
    expect(transitions(cp, "q1")).toEqual([
      ["running", 1],
      ["error", 1],
      ["running", 2],
      ["finished", 2],
    ]);
    expect(transitions(cp, "q2")).toEqual([
      ["running", 1],
      ["finished", 1],
    ]);
  });

  it("restarts a pipeline that ended in error on its own, with attempt + 1", async () => {
    const { broker, cp } = setup();
    const executor = fakeExecutor();
    cp.set("n1", 1, [assignment("p1", "pipeline", { config: { fail_until_attempt: 2 } })], false);
    const agent = await startAgent(broker, { executors: [executor], retryBaseMs: 10 });
    await waitFor(() => transitions(cp, "p1").length === 5, { message: "two crashes and a restart" });
    expect(transitions(cp, "p1")).toEqual([
      ["running", 1],
      ["error", 1],
      ["running", 2],
      ["error", 2],
      ["running", 3],
    ]);
    expect(agent.executions()[0]).toMatchObject({ state: "running", attempt: 3 });
    // Stopped by the control plane: canceled, not restarted.
    cp.set("n1", 2, [assignment("p1", "pipeline", { desiredState: "stopped" })]);
    await waitFor(() => agent.executions()[0]?.state === "canceled");
    await settle();
    expect(executor.started).toEqual(["p1", "p1", "p1"]);
  });

  it("cancels a pending retry when the control plane stops the execution", async () => {
    const { broker, cp } = setup();
    const executor = fakeExecutor();
    const q = (desiredState: string): Assignment =>
      assignment("q1", "query", { config: { exit_code: 1 }, desiredState });
    cp.set("n1", 1, [q("running")], false);
    const agent = await startAgent(broker, { executors: [executor], retryBaseMs: 60_000 });
    await waitFor(() => agent.executions()[0]?.state === "error");
    cp.set("n1", 2, [q("stopped")]);
    await waitFor(() => agent.executions()[0]?.state === "canceled");
    expect(agent.executions()[0]?.exception).toMatch(/canceled while waiting to run again after attempt 1/);
    expect(executor.started).toEqual(["q1"]);
    await waitFor(() => transitions(cp, "q1").at(-1)?.[0] === "canceled");
  });

  it("keeps retry state across an agent restart: a pending retry runs at once, a last failed attempt does not", async () => {
    const { broker, cp } = setup();
    const dir = await tempDir();
    cp.set(
      "n1",
      1,
      [
        assignment("q1", "query", { config: { fail_until_attempt: 1 } }),
        assignment("q2", "query", { config: { exit_code: 1 } }),
      ],
      false,
    );
    // First run: q2 uses up its 3 attempts (short backoff) and stays in error.
    const first = fakeExecutor();
    const a1 = await startAgent(broker, { dataDir: dir, executors: [first], retryBaseMs: 10 });
    // The attempt number is counted (and persisted) before the attempt starts, so "attempt 3 and
    // nothing running" can be seen while the third attempt is still pending: wait for q2's final
    // status to be persisted instead.
    await waitFor(async () => (await loadState(dir))?.finished?.has("q2"), { message: "q2 final" });
    await waitFor(() => a1.executions().every((e) => e.state !== "running"));
    await a1.stop({ graceMs: 0 });
    expect(first.started.filter((id) => id === "q2")).toHaveLength(3);

    // Second run (same data dir): q3 fails once and its retry is left pending (long backoff).
    cp.set(
      "n1",
      2,
      [
        assignment("q2", "query", { config: { exit_code: 1 } }),
        assignment("q3", "query", { config: { fail_until_attempt: 1 } }),
      ],
      false,
    );
    const second = fakeExecutor();
    const a2 = await startAgent(broker, { dataDir: dir, executors: [second], retryBaseMs: 60_000 });
    await waitFor(() => a2.appliedRevision === 2);
    await waitFor(() => a2.executions().find((e) => e.executionId === "q3")?.state === "error");
    await waitFor(async () => (await loadState(dir))?.retries?.has("q3"), { message: "retry persisted" });
    await a2.stop({ graceMs: 0 });
    expect(second.started).toEqual(["q3"]);

    cp.close(); // restart offline: resumes from the data dir alone
    const third = fakeExecutor();
    const a3 = await startAgent(broker, { dataDir: dir, executors: [third], retryBaseMs: 60_000 });
    const byId = () => Object.fromEntries(a3.executions().map((e) => [e.executionId, e]));
    await waitFor(() => byId().q3?.state === "finished", { message: "pending retry ran at once" });
    expect(third.started).toEqual(["q3"]);
    expect(byId().q3).toMatchObject({ state: "finished", attempt: 2 });
    expect(byId().q2).toMatchObject({ state: "error", attempt: 3 });
    const state = await loadState(dir);
    expect(state?.retries?.size).toBe(0);
    expect(state?.finished.get("q3")).toMatchObject({ state: "finished", attempt: 2 });
  });
});
