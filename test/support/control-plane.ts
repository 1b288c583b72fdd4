/**
 * A control-plane double for integration tests of the agent: it answers register/desired requests
 * from the desired states a test sets and records the registrations, heartbeats, events and logs
 * the agents send. It tests the agent, not the node registry.
 *
 * (packages/agent/src/agent.test.ts keeps its own copy on the in-process bus: unit tests under
 * packages/ do not import from test/, and testkit may depend on @edgeplane/core only.)
 */
import { create } from "@bufbuild/protobuf";
import {
  type AgentRegisterRequest,
  AgentRegisterRequestSchema,
  AgentRegisterResponseSchema,
  type Assignment,
  type DesiredState,
  DesiredStateSchema,
  type ExecutionEvent,
  ExecutionEventSchema,
  type ExecutionStatus,
  type Heartbeat,
  HeartbeatSchema,
  type LogBatch,
  LogBatchSchema,
} from "@edgeplane/api";
import { type Bus, connectNatsBus, decode, encode, parseOutbound, subjects } from "@edgeplane/bus";
import { waitFor } from "@edgeplane/testkit";
import type { Cleanups } from "./cleanups.js";

/** Options of {@link TestControlPlane}. */
export interface TestControlPlaneOptions {
  /** Answer and record only these nodes (default: every node on the bus). */
  readonly nodes?: readonly string[];
  /** Whether {@link TestControlPlane.logLines} include each line's stream (default true). */
  readonly logStream?: boolean;
}

const TERMINAL_STATES = ["finished", "error", "timed_out", "canceled"];

export class TestControlPlane {
  readonly registers: AgentRegisterRequest[] = [];
  readonly heartbeats: Heartbeat[] = [];
  readonly events: ExecutionEvent[] = [];
  readonly logs: LogBatch[] = [];
  readonly desired = new Map<string, DesiredState>();
  readonly bus: Bus;
  readonly #logStream: boolean;

  constructor(bus: Bus, options: TestControlPlaneOptions = {}) {
    this.bus = bus;
    this.#logStream = options.logStream ?? true;
    const nodes = options.nodes ? new Set(options.nodes) : undefined;
    bus.subscribe(subjects.allOutbound(">"), (m) => {
      const parsed = parseOutbound(m.subject);
      if (!parsed || (nodes && !nodes.has(parsed.nodeId))) return;
      const { nodeId, kind } = parsed;
      if (kind === "register" && m.reply) {
        this.registers.push(decode(AgentRegisterRequestSchema, m.data));
        bus.publish(
          m.reply,
          encode(AgentRegisterResponseSchema, { accepted: true, desiredState: this.desired.get(nodeId) }),
        );
      } else if (kind === "desired" && m.reply) {
        bus.publish(m.reply, encode(DesiredStateSchema, this.desired.get(nodeId) ?? { nodeId }));
      } else if (kind === "heartbeat") this.heartbeats.push(decode(HeartbeatSchema, m.data));
      else if (kind === "event") this.events.push(decode(ExecutionEventSchema, m.data));
      else if (kind === "logs") this.logs.push(decode(LogBatchSchema, m.data));
    });
  }

  /** Changes a node's desired state; pushes it unless `push` is false (a lost push). */
  set(nodeId: string, revision: number, assignments: Assignment[], push = true): DesiredState {
    const ds = create(DesiredStateSchema, { nodeId, revision, assignments });
    this.desired.set(nodeId, ds);
    if (push) this.push(ds);
    return ds;
  }

  push(ds: DesiredState): void {
    this.bus.publish(subjects.desired(ds.nodeId), encode(DesiredStateSchema, ds));
  }

  registrations(nodeId: string): AgentRegisterRequest[] {
    return this.registers.filter((r) => r.nodeId === nodeId);
  }

  lastHeartbeat(nodeId: string): Heartbeat | undefined {
    return this.heartbeats.filter((h) => h.nodeId === nodeId).at(-1);
  }

  /** The status of an execution in the node's latest heartbeat. */
  status(nodeId: string, executionId: string): ExecutionStatus | undefined {
    return this.lastHeartbeat(nodeId)?.executions.find((e) => e.executionId === executionId);
  }

  /** The final event of an execution on a node (one of the terminal states). */
  final(nodeId: string, executionId: string, timeoutMs = 10_000): Promise<ExecutionEvent> {
    return waitFor(
      () =>
        this.events.find(
          (e) =>
            e.nodeId === nodeId &&
            e.status?.executionId === executionId &&
            TERMINAL_STATES.includes(e.status.state),
        ),
      { timeoutMs, message: `the final event of ${executionId} on ${nodeId}` },
    );
  }

  /** An execution's log lines as `LEVEL stream text` (`LEVEL text` without `logStream`). */
  logLines(executionId: string): string[] {
    return this.logs
      .filter((b) => b.executionId === executionId)
      .flatMap((b) =>
        b.lines.map((l) => (this.#logStream ? `${l.level} ${l.stream} ${l.text}` : `${l.level} ${l.text}`)),
      );
  }

  /** Waits for a log line of an execution (logs ship in batches, after the events). */
  logLine(executionId: string, pattern: RegExp): Promise<string> {
    return waitFor(() => this.logLines(executionId).find((l) => pattern.test(l)), {
      message: `a log line of ${executionId} matching ${pattern}`,
    });
  }
}

/** Connects a {@link TestControlPlane} to NATS (closed after the test) and flushes its subscription. */
export async function connectControlPlane(
  cleanups: Cleanups,
  nats: { readonly url: string; readonly credsFile?: string },
  options: TestControlPlaneOptions = {},
): Promise<TestControlPlane> {
  const bus = await connectNatsBus({
    servers: [nats.url],
    name: "test-control-plane",
    credsFile: nats.credsFile,
  });
  cleanups.push(() => bus.close());
  const cp = new TestControlPlane(bus, options);
  await bus.flush();
  return cp;
}
