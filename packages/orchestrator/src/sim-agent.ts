/**
 * A simulated agent: the agent protocol (agent.proto) from the agent's side, on any {@link Bus},
 * without executing anything. For tests and benchmarks of the control plane: it registers, fetches
 * and applies desired states (recording them), heartbeats with its applied revision and the
 * executions it is told to report, and sends events and logs. Not the real agent
 * (`@edgeplane/agent`), which the control plane must never depend on.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  AgentRegisterRequestSchema,
  type AgentRegisterResponse,
  AgentRegisterResponseSchema,
  type DesiredState,
  DesiredStateRequestSchema,
  DesiredStateSchema,
  ExecutionEventSchema,
  type ExecutionStatusSchema,
  HeartbeatSchema,
  LogBatchSchema,
} from "@edgeplane/api";
import { type Bus, decode, encode, subjects } from "@edgeplane/bus";

/** Options of {@link SimAgent}. */
export interface SimAgentOptions {
  readonly bus: Bus;
  readonly nodeId: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly agentVersion?: string;
  readonly executors?: readonly string[];
  /** Default: a random id per SimAgent (a new "process"). */
  readonly instanceId?: string;
  /** Request timeout; default 5000 ms. */
  readonly timeoutMs?: number;
  /** Apply pushed desired states at once (default true); false models an agent that is offline. */
  readonly autoApply?: boolean;
  /**
   * Keep every desired state received in `received` (default true, for tests). Benchmarks with
   * thousands of agents turn it off: the kept messages would make their own garbage collector
   * (and so their timestamps) slower as the run goes on.
   */
  readonly keepReceived?: boolean;
  /** Called after a desired state was applied (tests and benchmarks report executions from here). */
  readonly onApply?: (ds: DesiredState, agent: SimAgent) => void;
}

/** An execution status to report (the proto's init shape). */
export type SimExecution = MessageInitShape<typeof ExecutionStatusSchema>;

/** A simulated agent (see the module header). */
export class SimAgent {
  readonly nodeId: string;
  readonly bus: Bus;
  labels: Record<string, string>;
  instanceId: string;
  /** The desired-state revision applied (reported in heartbeats). */
  appliedRevision = 0;
  /** The last desired state applied. */
  desired: DesiredState | undefined;
  /** Every desired state received (pushes and replies), in order (unless `keepReceived` is false). */
  readonly received: DesiredState[] = [];
  /** Executions reported in heartbeats; default: one running execution per assignment applied. */
  executions: SimExecution[] | undefined;
  autoApply: boolean;
  #seq = 0n;
  #events = 0;
  readonly #options: SimAgentOptions;
  #off: (() => void) | undefined;

  constructor(options: SimAgentOptions) {
    this.#options = options;
    this.bus = options.bus;
    this.nodeId = options.nodeId;
    this.labels = { ...(options.labels ?? {}) };
    this.instanceId = options.instanceId ?? `inst-${Math.random().toString(36).slice(2, 10)}`;
    this.autoApply = options.autoApply ?? true;
  }

  /** Subscribes to pushed desired states (call before `register`). */
  listen(): this {
    this.#off ??= this.bus.subscribe(subjects.desired(this.nodeId), (m) => {
      try {
        this.#receive(decode(DesiredStateSchema, m.data));
      } catch {
        // A real agent would log and ignore a bad push.
      }
    });
    return this;
  }

  /** Registers; applies the desired state of an accepted reply. */
  async register(
    overrides: Partial<MessageInitShape<typeof AgentRegisterRequestSchema>> = {},
  ): Promise<AgentRegisterResponse> {
    const data = encode(AgentRegisterRequestSchema, {
      nodeId: this.nodeId,
      labels: this.labels,
      agentVersion: this.#options.agentVersion ?? "0.1.0-sim",
      executors: [...(this.#options.executors ?? ["pipeline", "exec"])],
      appliedRevision: this.appliedRevision,
      instanceId: this.instanceId,
      startedAt: timestampFromMs(Date.now()),
      ...overrides,
    });
    const reply = decode(
      AgentRegisterResponseSchema,
      await this.bus.request(subjects.outbound(this.nodeId, "register"), data, {
        timeoutMs: this.#timeout(),
      }),
    );
    if (reply.accepted && reply.desiredState) this.#receive(reply.desiredState);
    return reply;
  }

  /** Asks for the full desired state and applies it. */
  async fetchDesired(): Promise<DesiredState> {
    const data = encode(DesiredStateRequestSchema, {
      nodeId: this.nodeId,
      appliedRevision: this.appliedRevision,
    });
    const ds = decode(
      DesiredStateSchema,
      await this.bus.request(subjects.outbound(this.nodeId, "desired"), data, { timeoutMs: this.#timeout() }),
    );
    this.#receive(ds);
    return ds;
  }

  /** The bytes of the next heartbeat (seq advances). */
  heartbeatBytes(): Uint8Array {
    this.#seq++;
    return encode(HeartbeatSchema, {
      nodeId: this.nodeId,
      seq: this.#seq,
      appliedRevision: this.appliedRevision,
      executions: this.executions ?? this.#defaultExecutions(),
      time: timestampFromMs(Date.now()),
      instanceId: this.instanceId,
    });
  }

  /** Publishes a heartbeat. */
  heartbeat(): void {
    this.bus.publish(subjects.outbound(this.nodeId, "heartbeat"), this.heartbeatBytes());
  }

  /** Publishes an execution event (a fresh event id unless given). */
  event(status: SimExecution, eventId = `ev-${this.nodeId}-${++this.#events}`): string {
    this.bus.publish(
      subjects.outbound(this.nodeId, "event"),
      encode(ExecutionEventSchema, {
        eventId,
        nodeId: this.nodeId,
        status,
        time: timestampFromMs(Date.now()),
      }),
    );
    return eventId;
  }

  /** Publishes a log batch. */
  logs(executionId: string, lines: string[]): void {
    this.bus.publish(
      subjects.outbound(this.nodeId, "logs"),
      encode(LogBatchSchema, {
        nodeId: this.nodeId,
        executionId,
        lines: lines.map((text, i) => ({ seq: BigInt(i + 1), text, level: "INFO", stream: "stdout" })),
      }),
    );
  }

  /** Stops listening. */
  close(): void {
    this.#off?.();
    this.#off = undefined;
  }

  /** Applies a desired state unless it is older than what is applied (agents ignore stale revisions). */
  apply(ds: DesiredState): void {
    if (ds.revision < this.appliedRevision) return;
    const fresh = ds.revision > this.appliedRevision || this.desired === undefined;
    this.desired = ds;
    this.appliedRevision = ds.revision;
    if (fresh) this.#options.onApply?.(ds, this);
  }

  #receive(ds: DesiredState): void {
    if (this.#options.keepReceived !== false) this.received.push(ds);
    if (this.autoApply) this.apply(ds);
  }

  #defaultExecutions(): SimExecution[] {
    return (this.desired?.assignments ?? []).map((a) => ({
      executionId: a.executionId,
      jobId: a.jobId,
      jobVersion: a.jobVersion,
      state: "running",
      health: { healthy: true, errorRate: 0 },
      attempt: 1,
    }));
  }

  #timeout(): number {
    return this.#options.timeoutMs ?? 5000;
  }
}
