/**
 * The node agent: connects to NATS on its own node's subjects, registers, converges on the
 * desired state the control plane pushes (and that it fetches on every (re)connect), persists
 * what it applied, and reports heartbeats, execution events and logs. See README.md for the flow.
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { clone, create, fromJson } from "@bufbuild/protobuf";
import { timestampFromMs, ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  AgentRegisterRequestSchema,
  AgentRegisterResponseSchema,
  type Assignment,
  type DesiredState,
  DesiredStateRequestSchema,
  DesiredStateSchema,
  ExecutionCountersSchema,
  type ExecutionEvent,
  ExecutionEventSchema,
  ExecutionHealthSchema,
  type ExecutionStatus,
  ExecutionStatusSchema,
  type Heartbeat,
  HeartbeatSchema,
  type LogBatch,
  LogBatchSchema,
} from "@edgeplane/api";
import {
  assertNodeId,
  authenticatorFromFile,
  type Bus,
  type BusMessage,
  connectNatsBus,
  decode,
  encode,
  subjects,
} from "@edgeplane/bus";
import {
  type Clock,
  createLogger,
  EDGEPLANE_VERSION,
  EdgeplaneError,
  isJobType,
  JOB_TYPES,
  type Logger,
  newId,
  systemClock,
} from "@edgeplane/core";
import { type BackoffOptions, backoffDelay, jitter, sleep } from "./backoff.js";
import {
  DEFAULT_AGENT_CONFIG,
  type ExecutorsConfig,
  enableHint,
  HEARTBEAT_INTERVAL_BOUNDS_MS,
} from "./config.js";
import { AgentDataChannel } from "./data-channel.js";
import {
  EXECUTOR_FOR_TYPE,
  type ExecutionState,
  isTerminalExecutionState,
  runModeOf,
} from "./execution-state.js";
import type { ExecutionContext, ExecutionHandle, ExecutionUpdate, Executor, StopReason } from "./executor.js";
import { createBuiltinExecutors } from "./executors/builtin.js";
import { assertLabels, discoveredLabels, type HostFacts } from "./labels.js";
import { LogShipper } from "./log-shipper.js";
import {
  type HeldPhase,
  type HeldSummary,
  judgeRevision,
  planApply,
  type RevisionVerdict,
} from "./reconcile.js";
import { loadState, type PersistedState, saveState, stateFilePath } from "./state-file.js";

/** How the agent reaches NATS when no {@link AgentOptions.bus} is given. */
export interface AgentNatsOptions {
  readonly servers: readonly string[];
  /** An nkey seed file (as `edgectl nats-config` writes) or a NATS `.creds` file. */
  readonly credsFile?: string;
  /** Ping interval (default 10 s); a dead link is noticed after about interval × (maxPingOut + 1). */
  readonly pingIntervalMs?: number;
  /** Outstanding pings before the link counts as dead (default 2: about 30 s with the default interval). */
  readonly maxPingOut?: number;
  /** One connection attempt's timeout (default 5 s); attempts repeat forever with backoff. */
  readonly connectTimeoutMs?: number;
}

/** Options of {@link createAgent}. */
export interface AgentOptions {
  /** The node id: one NATS subject token (letters, digits, `-`, `_`; no dots). */
  readonly nodeId: string;
  /** Where the agent persists what it applied (`state.json`) and executions keep their files. */
  readonly dataDir: string;
  /** Operator labels; keys under `edgeplane.io/` are refused (the agent discovers those). */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * The executors this agent runs assignments with. Default: the built-in ones (`executors/`)
   * that `executorConfig` enables, confined to what it allows.
   */
  readonly executors?: readonly Executor[];
  /**
   * The agent.yaml executors section: builds the built-in executors (when `executors` is not
   * given) and explains why a type has no executor. Default: no agent.yaml (pipeline only).
   */
  readonly executorConfig?: ExecutorsConfig;
  /** A connected bus to use (tests, in-process stacks); the agent does not close it. */
  readonly bus?: Bus;
  /** Otherwise: the NATS servers to connect to, with the node's credentials. */
  readonly nats?: AgentNatsOptions;
  /** Heartbeat period before the control plane says otherwise (default 5000 ms, ±10% jitter). */
  readonly heartbeatIntervalMs?: number;
  /** Timeout of the register and desired-state requests (default 5000 ms). */
  readonly requestTimeoutMs?: number;
  /** Backoff of register and connect retries (default 500 ms doubling to 30 s, jittered). */
  readonly retry?: BackoffOptions;
  /** How long an executor may take to stop an execution before the agent stops waiting (default 10 s). */
  readonly executorStopTimeoutMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Random source of jitter (tests pin it). */
  readonly random?: () => number;
  /** Facts behind the discovered labels (default: this machine). */
  readonly host?: HostFacts;
  /**
   * Backoff before re-running a failed execution under restart policy `on-failure` / `always`:
   * the retry after attempt n waits between half and all of `retryBaseMs × 2^(n-1)`, capped at
   * {@link RETRY_MAX_MS} (default 1000 ms; tests make it short).
   */
  readonly retryBaseMs?: number;
}

/**
 * Attempts a run-once execution (query, update, config) gets under restart policy `on-failure` or
 * `always`, counting the first: after a failed third attempt it stays failed. Matches the control
 * plane's `maxAttempts` default (packages/control-plane/src/executions/completion.ts), which
 * judges a run-once failure final at `attempt >= maxAttempts`.
 */
export const MAX_RUN_ONCE_ATTEMPTS = 3;

/** The longest backoff before re-running a failed execution (run-once or long-running). */
export const RETRY_MAX_MS = 30_000;

const DEFAULT_RETRY_BASE_MS = 1000;

/** Options of {@link Agent.stop}. */
export interface AgentStopOptions {
  /** How long run-once executions may take to finish before they are stopped (default 10 000 ms). */
  readonly graceMs?: number;
}

/** Where a desired state came from. */
export type DesiredStateSource = "register" | "fetch" | "push";

/** The events an agent emits (for tests and for logging by embedders). */
export interface AgentEvents {
  /** A desired state was applied (persisted, then acted on). */
  applied: (info: { readonly revision: number; readonly source: DesiredStateSource }) => void;
  /** A desired state was ignored: a duplicate or stale revision, or not for this node. */
  ignored: (info: {
    readonly revision: number;
    readonly source: DesiredStateSource;
    readonly reason: RevisionVerdict | "wrong_node" | "stopping";
  }) => void;
  /** The control plane accepted a registration (after start and after every reconnect). */
  registered: (info: { readonly heartbeatIntervalMs: number }) => void;
  /** A heartbeat was published. */
  heartbeat: (heartbeat: Heartbeat) => void;
  /** An execution event was published. */
  event: (event: ExecutionEvent) => void;
}

/** A node agent. */
export interface Agent {
  readonly nodeId: string;
  /** Random per process start: tells the control plane a restart from a reconnect. */
  readonly instanceId: string;
  /** The desired-state revision applied and persisted last (0: none). */
  readonly appliedRevision: number;
  /** Operator labels plus the discovered `edgeplane.io/` ones. */
  readonly labels: Readonly<Record<string, string>>;
  /** Whether the control plane has accepted a registration on the current connection. */
  readonly registered: boolean;
  /**
   * Restores what the data dir says was applied (restarting long-running work), then connects
   * (in the background, forever) and registers. Rejects on bad options or an unreadable state file.
   */
  start(): Promise<void>;
  /**
   * Stops gracefully: stops taking desired state, stops long-running executions, lets run-once
   * ones finish within `graceMs`, publishes a final heartbeat and drains the connection.
   */
  stop(options?: AgentStopOptions): Promise<void>;
  /** The status of every execution the agent holds, sorted by execution id. */
  executions(): ExecutionStatus[];
  /** Subscribes to an event; returns the function that unsubscribes. */
  on<E extends keyof AgentEvents>(event: E, listener: AgentEvents[E]): () => void;
}

const DEFAULT_HEARTBEAT_MS = 5000;
const HEARTBEAT_JITTER = 0.1;
const EXECUTION_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Resolves when `promise` settles or after `ms`, whichever is first; never rejects. */
function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(true);
      },
    );
  });
}

/** One execution as the agent holds it. */
interface Held {
  assignment: Assignment;
  status: ExecutionStatus;
  phase: HeldPhase;
  attempt: number;
  handle: ExecutionHandle | undefined;
  controller: AbortController | undefined;
  stopReason: StopReason | undefined;
  stopping: Promise<void> | undefined;
  timeout: ReturnType<typeof setTimeout> | undefined;
  /** The pending retry of a failed attempt (phase `retrying`). */
  retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** The current attempt failed in a way another attempt cannot fix (no executor for its type). */
  noRetry: boolean;
  /** Resolves when the current attempt is no longer active. */
  settled: Deferred;
}

const STOP_STATE: Record<Exclude<StopReason, "agent_stopping">, ExecutionState> = {
  canceled: "canceled",
  timed_out: "timed_out",
};

/** Creates a node agent; nothing happens until {@link Agent.start}. */
export function createAgent(options: AgentOptions): Agent {
  return new NodeAgent(options);
}

class NodeAgent implements Agent {
  readonly nodeId: string;
  readonly instanceId: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly #o: AgentOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #random: () => number;
  #executors: readonly Executor[];
  readonly #startedAtMs: number;
  readonly #listeners = new Map<keyof AgentEvents, Set<(arg: never) => void>>();
  /** Aborted by stop(): ends connect and register loops and their sleeps. */
  readonly #life = new AbortController();
  readonly #held = new Map<string, Held>();
  readonly #logs: LogShipper;
  readonly #data: AgentDataChannel;

  // What is persisted; changed only inside #serial tasks, so a save always writes a consistent set.
  #revision = 0;
  #assignments: readonly Assignment[] = [];
  #finished = new Map<string, ExecutionStatus>();
  #attempts = new Map<string, number>();
  /** Executions waiting for their next attempt, with the time the retry is due. */
  #retries = new Map<string, number>();

  #serialTail: Promise<void> = Promise.resolve();
  #bus: Bus | undefined;
  #ownBus = false;
  #connected = false;
  #busOffs: Array<() => void> = [];
  #sync: AbortController | undefined;
  #registered = false;
  #heartbeatMs: number;
  #heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatQueued = false;
  #seq = 0n;
  #started = false;
  #stopping = false;
  #stopped: Promise<void> | undefined;

  constructor(options: AgentOptions) {
    this.#o = options;
    this.nodeId = options.nodeId;
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? createLogger({ component: "agent" })).child(options.nodeId);
    this.#random = options.random ?? Math.random;
    this.#executors = options.executors ?? [];
    this.#heartbeatMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS;
    this.#startedAtMs = this.#clock.now();
    this.instanceId = newId("agi", this.#startedAtMs);
    this.labels = { ...(options.labels ?? {}), ...discoveredLabels(options.host) };
    this.#logs = new LogShipper({
      nodeId: options.nodeId,
      clock: this.#clock,
      publish: (batch) => this.#publishLogs(batch),
    });
    this.#data = new AgentDataChannel(options.nodeId);
  }

  get appliedRevision(): number {
    return this.#revision;
  }

  get registered(): boolean {
    return this.#registered;
  }

  on<E extends keyof AgentEvents>(event: E, listener: AgentEvents[E]): () => void {
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    const l = listener as unknown as (arg: never) => void;
    set.add(l);
    return () => set.delete(l);
  }

  #emit<E extends keyof AgentEvents>(event: E, arg: Parameters<AgentEvents[E]>[0]): void {
    for (const l of this.#listeners.get(event) ?? []) {
      try {
        (l as (a: typeof arg) => void)(arg);
      } catch (err) {
        this.#log.warn("agent event listener threw", { event, err });
      }
    }
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<void> {
    if (this.#started) throw new EdgeplaneError("failed_precondition", "the agent was started already");
    this.#started = true;
    assertNodeId(this.nodeId, "--node-id");
    if (!this.#o.dataDir) throw new EdgeplaneError("invalid_argument", "--data-dir is required");
    assertLabels(this.#o.labels ?? {}, "labels");
    if (!this.#o.bus && !this.#o.nats) {
      throw new EdgeplaneError("invalid_argument", "the agent needs NATS servers (--nats) or a bus");
    }
    if (this.#o.nats?.credsFile) authenticatorFromFile(this.#o.nats.credsFile); // fail fast on a bad file
    if (!this.#o.executors) {
      // Built from agent.yaml; a rule naming a command that is not on PATH stops the start here.
      this.#executors = createBuiltinExecutors({
        config: this.#o.executorConfig ?? DEFAULT_AGENT_CONFIG.executors,
        dataDir: this.#o.dataDir,
      });
    }
    await mkdir(this.#o.dataDir, { recursive: true, mode: 0o700 });
    await this.#serial(() => this.#restore());
    this.#scheduleHeartbeat();
    if (this.#o.bus) this.#attach(this.#o.bus, false);
    else void this.#connectLoop();
    this.#log.info("agent started", {
      instance: this.instanceId,
      data_dir: this.#o.dataDir,
      applied_revision: this.#revision,
      executors: this.#executors.map((e) => e.name).join(",") || "none",
    });
  }

  stop(options: AgentStopOptions = {}): Promise<void> {
    this.#stopped ??= this.#shutdown(options.graceMs ?? 10_000);
    return this.#stopped;
  }

  async #shutdown(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.#life.abort();
    this.#sync?.abort();
    if (!this.#started) return;
    await this.#serialTail; // an apply in flight finishes; later ones are refused
    const active = [...this.#held.values()].filter((h) => h.phase === "active");
    await Promise.all(
      active.map(async (h) => {
        if (runModeOf(h.assignment.type) === "run-once") await within(h.settled.promise, graceMs);
        if (h.phase === "active") await this.#stopForShutdown(h);
      }),
    );
    await this.#serialTail; // final statuses of run-once executions that finished in the grace time
    for (const h of this.#held.values()) this.#pauseRetry(h); // (retries no longer start: stopping)
    clearTimeout(this.#heartbeatTimer);
    this.#logs.close();
    this.#sendHeartbeat();
    const bus = this.#bus;
    for (const off of this.#busOffs.splice(0)) off();
    this.#data.detach();
    if (bus) {
      await within(bus.flush(), 2000);
      if (this.#ownBus) await within(bus.close(), 5000);
    }
    this.#bus = undefined;
    this.#log.info("agent stopped", { applied_revision: this.#revision });
  }

  /** Runs `task` after every task queued before it: the one writer of the persisted state. */
  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#serialTail.then(task);
    this.#serialTail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  #snapshot(): PersistedState {
    return {
      nodeId: this.nodeId,
      appliedRevision: this.#revision,
      assignments: this.#assignments,
      finished: this.#finished,
      attempts: this.#attempts,
      retries: this.#retries,
    };
  }

  async #save(state: PersistedState = this.#snapshot()): Promise<void> {
    await saveState(this.#o.dataDir, state, this.#clock.now());
  }

  /** Restores the persisted state: finished run-once work stays finished, the rest runs again. */
  async #restore(): Promise<void> {
    const state = await loadState(this.#o.dataDir);
    if (!state) return;
    if (state.nodeId !== this.nodeId) {
      throw new EdgeplaneError(
        "failed_precondition",
        `${stateFilePath(this.#o.dataDir)} belongs to node ${JSON.stringify(state.nodeId)}, not ${JSON.stringify(this.nodeId)}; use that node's data dir or another one`,
      );
    }
    this.#revision = state.appliedRevision;
    this.#assignments = state.assignments;
    this.#finished = new Map(state.finished);
    this.#attempts = new Map(state.attempts);
    // A retry that was pending starts at once (below, as attempt + 1) like interrupted work.
    const pendingRetries = state.retries?.size ?? 0;
    this.#retries = new Map();
    const toStart: Held[] = [];
    for (const a of state.assignments) {
      const h = this.#newHeld(a);
      this.#held.set(a.executionId, h);
      const final = this.#finished.get(a.executionId);
      if (final) {
        h.status = clone(ExecutionStatusSchema, final);
        h.attempt = final.attempt;
        h.phase = final.state === "canceled" ? "canceled" : "ended";
        h.settled.resolve();
      } else if (a.desiredState === "stopped") {
        this.#markNotRun(h, "canceled", "");
      } else if (
        runModeOf(a.type) === "run-once" &&
        (this.#attempts.get(a.executionId) ?? 0) > 0 &&
        a.restartPolicy === "never"
      ) {
        // Interrupted by an agent restart, and its policy says never run it twice.
        h.attempt = this.#attempts.get(a.executionId) ?? 1;
        this.#markNotRun(
          h,
          "error",
          "interrupted by an agent restart while running; not run again because restart_policy is never",
        );
        this.#finished.set(a.executionId, clone(ExecutionStatusSchema, h.status));
      } else {
        toStart.push(h);
      }
    }
    for (const h of toStart) this.#bumpAttempt(h);
    if (toStart.length > 0 || this.#finished.size !== state.finished.size || pendingRetries > 0) {
      await this.#save();
    }
    this.#log.info("restored applied state", {
      revision: this.#revision,
      assignments: state.assignments.length,
      finished: this.#finished.size,
      restarting: toStart.length,
      pending_retries: pendingRetries,
    });
    for (const h of toStart) await this.#startExecution(h);
  }

  // ---------------------------------------------------------------- connection

  async #connectLoop(): Promise<void> {
    const nats = this.#o.nats;
    if (!nats) return;
    const signal = this.#life.signal;
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        const bus = await connectNatsBus({
          servers: nats.servers,
          name: `edgeplane-agent-${this.nodeId}`,
          inboxPrefix: subjects.inboxPrefix(this.nodeId),
          credsFile: nats.credsFile,
          pingIntervalMs: nats.pingIntervalMs ?? 10_000,
          maxPingOut: nats.maxPingOut ?? 2,
          waitOnFirstConnect: false,
          timeoutMs: nats.connectTimeoutMs ?? 5000,
        });
        if (signal.aborted) {
          await bus.close();
          return;
        }
        this.#log.info("connected to NATS", { servers: nats.servers.join(",") });
        this.#attach(bus, true);
        return;
      } catch (err) {
        const wait = backoffDelay(attempt, this.#o.retry, this.#random);
        const level = attempt === 0 || attempt % 10 === 0 ? "warn" : "debug";
        this.#log[level]("cannot reach NATS; retrying", { err, retry_in_ms: wait, attempt: attempt + 1 });
        await sleep(wait, signal);
      }
    }
  }

  #attach(bus: Bus, own: boolean): void {
    this.#bus = bus;
    this.#ownBus = own;
    this.#connected = true;
    this.#data.attach(bus);
    this.#busOffs.push(
      bus.subscribe(subjects.desired(this.nodeId), (m) => this.#onPush(m)),
      bus.onEvent((event) => {
        if (this.#stopping) return;
        if (event === "disconnected") {
          this.#connected = false;
          this.#data.setConnected(false);
          this.#registered = false;
          this.#log.warn("disconnected from NATS; keeps running what it has and reconnects");
        } else if (event === "reconnected") {
          this.#connected = true;
          this.#data.setConnected(true);
          this.#log.info("reconnected to NATS; registering again");
          this.#startSync();
        } else if (event === "closed") {
          // The client gave up (for instance after repeated authorization errors): start over.
          this.#connected = false;
          this.#registered = false;
          this.#sync?.abort();
          for (const off of this.#busOffs.splice(0)) off();
          this.#bus = undefined;
          this.#data.detach();
          if (own) {
            this.#log.warn("NATS connection closed; connecting again");
            void this.#connectLoop();
          }
        }
      }),
    );
    this.#startSync();
  }

  /** (Re)starts the register-then-fetch loop of the current connection. */
  #startSync(): void {
    this.#sync?.abort();
    const controller = new AbortController();
    this.#sync = controller;
    void this.#syncLoop(controller.signal);
  }

  async #syncLoop(signal: AbortSignal): Promise<void> {
    const timeoutMs = this.#o.requestTimeoutMs ?? 5000;
    for (let attempt = 0; !signal.aborted && !this.#stopping; attempt++) {
      const bus = this.#bus;
      if (!bus) return;
      try {
        const request = encode(AgentRegisterRequestSchema, {
          nodeId: this.nodeId,
          labels: { ...this.labels },
          agentVersion: EDGEPLANE_VERSION,
          executors: this.#executors.map((e) => e.name),
          appliedRevision: this.#revision,
          instanceId: this.instanceId,
          startedAt: timestampFromMs(this.#startedAtMs),
        });
        const reply = decode(
          AgentRegisterResponseSchema,
          await bus.request(subjects.outbound(this.nodeId, "register"), request, { timeoutMs, signal }),
        );
        if (signal.aborted) return;
        if (!reply.accepted) {
          throw new EdgeplaneError(
            "permission_denied",
            `the control plane refused the registration: ${reply.message || "(no reason given)"}`,
          );
        }
        if (reply.heartbeatIntervalMs > 0) {
          // Bounded, so that a misconfigured control plane cannot make a fleet flood the link.
          const { min, max } = HEARTBEAT_INTERVAL_BOUNDS_MS;
          const ms = Math.min(max, Math.max(min, reply.heartbeatIntervalMs));
          if (ms !== this.#heartbeatMs) {
            this.#heartbeatMs = ms;
            this.#scheduleHeartbeat();
          }
        }
        this.#registered = true;
        this.#log.info("registered", { heartbeat_ms: this.#heartbeatMs, applied_revision: this.#revision });
        this.#emit("registered", { heartbeatIntervalMs: this.#heartbeatMs });
        let desired = reply.desiredState;
        let source: DesiredStateSource = "register";
        if (!desired) {
          const ask = encode(DesiredStateRequestSchema, {
            nodeId: this.nodeId,
            appliedRevision: this.#revision,
          });
          desired = decode(
            DesiredStateSchema,
            await bus.request(subjects.outbound(this.nodeId, "desired"), ask, { timeoutMs, signal }),
          );
          source = "fetch";
        }
        if (signal.aborted) return;
        await this.#offer(desired, source);
        this.#heartbeatSoon();
        return;
      } catch (err) {
        if (signal.aborted || this.#stopping) return;
        const wait = backoffDelay(attempt, this.#o.retry, this.#random);
        const level = attempt === 0 || attempt % 10 === 0 ? "warn" : "debug";
        this.#log[level]("cannot register with the control plane; keeps running what it has and retries", {
          err,
          retry_in_ms: wait,
          attempt: attempt + 1,
        });
        await sleep(wait, signal);
      }
    }
  }

  #onPush(message: BusMessage): void {
    let desired: DesiredState;
    try {
      desired = decode(DesiredStateSchema, message.data);
    } catch (err) {
      this.#log.warn("dropped a desired state that cannot be decoded", { err });
      return;
    }
    void this.#offer(desired, "push").catch(() => {});
  }

  // ---------------------------------------------------------------- desired state

  /** Queues a desired state for applying; resolves once it was applied or ignored. */
  #offer(desired: DesiredState, source: DesiredStateSource): Promise<void> {
    return this.#serial(() => this.#apply(desired, source)).catch((err: unknown) => {
      this.#log.error("could not apply the desired state; the control plane will send it again", {
        revision: desired.revision,
        source,
        err,
      });
      throw err;
    });
  }

  async #apply(desired: DesiredState, source: DesiredStateSource): Promise<void> {
    const revision = desired.revision;
    if (this.#stopping) return this.#emit("ignored", { revision, source, reason: "stopping" });
    if (desired.nodeId !== "" && desired.nodeId !== this.nodeId) {
      this.#log.warn("ignored a desired state of another node", { for_node: desired.nodeId, revision });
      return this.#emit("ignored", { revision, source, reason: "wrong_node" });
    }
    const verdict = judgeRevision(revision, this.#revision);
    if (verdict !== "apply") {
      this.#log.debug("ignored desired state", { revision, applied: this.#revision, verdict, source });
      return this.#emit("ignored", { revision, source, reason: verdict });
    }
    const assignments = desired.assignments.filter((a) => {
      if (EXECUTION_ID.test(a.executionId) && !a.executionId.includes("..")) return true;
      this.#log.error("ignored an assignment with an invalid execution id", { id: a.executionId, revision });
      return false;
    });
    const summaries = new Map<string, HeldSummary>();
    for (const [id, h] of this.#held) summaries.set(id, { phase: h.phase, type: h.assignment.type });
    const plan = planApply(summaries, new Set(this.#finished.keys()), assignments);

    // Persist first: a crash after this line restarts into exactly this set.
    const byId = new Map(assignments.map((a) => [a.executionId, a]));
    const finished = new Map(this.#finished);
    for (const id of plan.pruneFinished) finished.delete(id);
    const attempts = new Map(this.#attempts);
    for (const id of [...plan.remove, ...plan.pruneFinished]) if (!byId.has(id)) attempts.delete(id);
    const retries = new Map(this.#retries);
    for (const id of [...plan.stop, ...plan.remove]) retries.delete(id);
    const starting = plan.start.map((a) => a.executionId);
    for (const id of starting) attempts.set(id, (attempts.get(id) ?? 0) + 1);
    const cancelled = plan.cancelUnstarted.map((a) => this.#newHeld(a));
    for (const h of cancelled) {
      this.#markNotRun(h, "canceled", "");
      if (runModeOf(h.assignment.type) === "run-once") finished.set(h.assignment.executionId, h.status);
    }
    await this.#save({
      nodeId: this.nodeId,
      appliedRevision: revision,
      assignments,
      finished,
      attempts,
      retries,
    });
    this.#revision = revision;
    this.#assignments = assignments;
    this.#finished = finished;
    this.#attempts = attempts;
    this.#retries = retries;

    for (const [id, a] of byId) {
      const h = this.#held.get(id);
      if (h) h.assignment = a;
    }
    await Promise.all(
      plan.stop.map((id) => this.#held.get(id)).map((h) => h && this.#stopExecution(h, "canceled")),
    );
    for (const id of plan.remove) {
      const gone = this.#held.get(id);
      if (gone) clearTimeout(gone.retryTimer);
      this.#held.delete(id);
      this.#logs.forget(id);
      await rm(this.#executionDir(id), { recursive: true, force: true }).catch(() => {});
    }
    for (const h of cancelled) {
      this.#held.set(h.assignment.executionId, h);
      this.#publishEvent(h);
    }
    for (const a of plan.start) {
      let h = this.#held.get(a.executionId);
      if (!h) {
        h = this.#newHeld(a);
        this.#held.set(a.executionId, h);
      }
      h.attempt = attempts.get(a.executionId) ?? 1;
      await this.#startExecution(h);
    }
    this.#log.info("applied desired state", {
      revision,
      source,
      assignments: assignments.length,
      started: plan.start.length,
      stopped: plan.stop.length,
      removed: plan.remove.length,
    });
    this.#emit("applied", { revision, source });
    this.#heartbeatSoon();
  }

  // ---------------------------------------------------------------- executions

  #newHeld(a: Assignment): Held {
    return {
      assignment: a,
      status: create(ExecutionStatusSchema, {
        executionId: a.executionId,
        jobId: a.jobId,
        jobVersion: a.jobVersion,
        state: "waiting",
      }),
      phase: "ended",
      attempt: 0,
      handle: undefined,
      controller: undefined,
      stopReason: undefined,
      stopping: undefined,
      timeout: undefined,
      retryTimer: undefined,
      noRetry: false,
      settled: deferred(),
    };
  }

  /** Marks an execution that never ran (or will not run again) with a final state. */
  #markNotRun(h: Held, state: "canceled" | "error", exception: string): void {
    const now = timestampFromMs(this.#clock.now());
    h.status.state = state;
    h.status.exception = exception;
    h.status.attempt = h.attempt;
    h.status.finishTime = now;
    h.phase = state === "canceled" ? "canceled" : "ended";
    h.settled.resolve();
  }

  #bumpAttempt(h: Held): void {
    const n = (this.#attempts.get(h.assignment.executionId) ?? 0) + 1;
    this.#attempts.set(h.assignment.executionId, n);
    h.attempt = n;
  }

  #executionDir(id: string): string {
    return join(this.#o.dataDir, "executions", id);
  }

  #executorFor(type: string): Executor | undefined {
    return this.#executors.find((e) => e.types.includes(type));
  }

  #noExecutorMessage(type: string): string {
    if (!isJobType(type)) {
      return `no executor runs job type ${JSON.stringify(type)} on this agent (known types: ${JOB_TYPES.join(", ")})`;
    }
    const name = EXECUTOR_FOR_TYPE[type];
    const cfg = this.#o.executorConfig ?? DEFAULT_AGENT_CONFIG.executors;
    if (cfg[name].enabled) {
      return `executors.${name} is enabled in agent.yaml, but this agent (${EDGEPLANE_VERSION}) has no ${name} executor for type ${JSON.stringify(type)}`;
    }
    return enableHint(type, name);
  }

  /** Starts the current attempt of `h` (its attempt number is already counted and persisted). */
  async #startExecution(h: Held): Promise<void> {
    const a = h.assignment;
    const attempt = h.attempt;
    clearTimeout(h.retryTimer);
    h.retryTimer = undefined;
    h.phase = "active";
    h.stopReason = undefined;
    h.stopping = undefined;
    h.handle = undefined;
    h.noRetry = false;
    h.settled = deferred();
    h.status = create(ExecutionStatusSchema, {
      executionId: a.executionId,
      jobId: a.jobId,
      jobVersion: a.jobVersion,
      state: "waiting",
      attempt,
    });
    const executor = this.#executorFor(a.type);
    if (!executor) {
      h.noRetry = true; // agent.yaml does not change while the agent runs
      this.#report(h, attempt, { state: "error", exception: this.#noExecutorMessage(a.type) });
      return;
    }
    const dir = this.#executionDir(a.executionId);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      this.#report(h, attempt, {
        state: "error",
        exception: `cannot create ${dir}: ${(err as Error).message}`,
      });
      return;
    }
    if (h.phase !== "active" || h.attempt !== attempt) return;
    const controller = new AbortController();
    h.controller = controller;
    const ctx: ExecutionContext = {
      nodeId: this.nodeId,
      executionId: a.executionId,
      attempt,
      signal: controller.signal,
      dataDir: dir,
      clock: this.#clock,
      logger: this.#log.child(a.executionId),
      data: this.#data,
      log: (level, stream, text) => this.#logs.append(a.executionId, level, stream, text),
      emit: (update) => {
        // A health flip is not a state transition (no event), but the control plane should not
        // wait a full heartbeat period for it: heartbeat soon.
        const before = h.status.health?.healthy;
        this.#report(h, attempt, update);
        if (update.health && h.attempt === attempt && h.status.health?.healthy !== before)
          this.#heartbeatSoon();
      },
    };
    try {
      h.handle = executor.start(a, ctx);
    } catch (err) {
      this.#report(h, attempt, {
        state: "error",
        exception: `executor ${JSON.stringify(executor.name)} could not start it: ${(err as Error).message}`,
      });
      return;
    }
    const timeoutS = a.timeouts?.executionTimeout ?? 0;
    if (timeoutS > 0 && runModeOf(a.type) === "run-once" && h.phase === "active") {
      h.timeout = setTimeout(() => void this.#stopExecution(h, "timed_out"), timeoutS * 1000);
    }
  }

  /**
   * Merges a report into the status of attempt `attempt` of `h`. A state change is a transition:
   * it is sent at once as an event (after persisting the final status of a run-once execution).
   */
  #report(h: Held, attempt: number, update: ExecutionUpdate): void {
    if (h.attempt !== attempt || h.phase !== "active") return; // an old attempt, or already over
    const s = h.status;
    const now = this.#clock.now();
    if (update.health) {
      const changed = !s.health || s.health.healthy !== update.health.healthy;
      s.health = create(ExecutionHealthSchema, {
        healthy: update.health.healthy,
        errorRate: update.health.errorRate ?? 0,
        since: changed ? timestampFromMs(now) : s.health?.since,
      });
    }
    if (update.counters) {
      const c = s.counters;
      const n = (v: number | undefined, old: bigint | undefined): bigint =>
        v === undefined ? (old ?? 0n) : BigInt(Math.max(0, Math.floor(v)));
      s.counters = create(ExecutionCountersSchema, {
        messagesIn: n(update.counters.messagesIn, c?.messagesIn),
        messagesOut: n(update.counters.messagesOut, c?.messagesOut),
        messagesFiltered: n(update.counters.messagesFiltered, c?.messagesFiltered),
        messagesErrored: n(update.counters.messagesErrored, c?.messagesErrored),
      });
    }
    if (update.exitCode !== undefined) s.exitCode = update.exitCode;
    if (update.progress !== undefined) s.progress = update.progress;
    if (update.exception !== undefined) s.exception = update.exception;
    if (update.startTimeMs !== undefined) s.startTime = timestampFromMs(update.startTimeMs);
    if (update.finishTimeMs !== undefined) s.finishTime = timestampFromMs(update.finishTimeMs);
    let state = update.state;
    const reason = h.stopReason;
    if (
      state &&
      reason &&
      reason !== "agent_stopping" &&
      isTerminalExecutionState(state) &&
      state !== "finished"
    ) {
      // Stopped on purpose: say why, whatever the executor made of its abort.
      state = STOP_STATE[reason];
      if (reason === "timed_out") {
        s.exception = `ran longer than its execution_timeout of ${h.assignment.timeouts?.executionTimeout ?? 0} s; the agent stopped it`;
      }
    }
    if (!state || state === s.state) return;
    s.state = state;
    if (state === "running" && !s.startTime) s.startTime = timestampFromMs(now);
    if (!isTerminalExecutionState(state)) {
      this.#publishEvent(h, update);
      return;
    }
    if (!s.finishTime) s.finishTime = timestampFromMs(now);
    h.phase = reason === "canceled" ? "canceled" : "ended";
    clearTimeout(h.timeout);
    h.settled.resolve();
    if (this.#retryAllowed(h, state, reason)) {
      this.#scheduleRetry(h, update);
      return;
    }
    if (runModeOf(h.assignment.type) !== "run-once") {
      this.#publishEvent(h, update);
      return;
    }
    // A run-once execution is over for good: persist its final status before telling anyone, so a
    // restart never runs it again.
    const id = h.assignment.executionId;
    const final = clone(ExecutionStatusSchema, s);
    void this.#serial(async () => {
      if (this.#held.get(id) !== h) return; // left the set meanwhile
      this.#finished.set(id, final);
      await this.#save();
    })
      .catch((err: unknown) => this.#log.error("could not persist a final execution status", { id, err }))
      .then(() => this.#publishEvent(h, update, final));
  }

  /** Stops the current attempt because the control plane asked, or it timed out. */
  #stopExecution(h: Held, reason: "canceled" | "timed_out"): Promise<void> {
    if (h.phase === "retrying" && reason === "canceled") {
      this.#cancelRetry(h);
      return Promise.resolve();
    }
    if (h.phase !== "active") return Promise.resolve();
    if (h.stopping) return h.stopping;
    const attempt = h.attempt;
    h.stopReason = reason;
    h.stopping = (async () => {
      h.controller?.abort(reason);
      const handle = h.handle;
      if (handle) {
        const stopped = await within(
          handle.stop(reason).catch((err: unknown) => {
            this.#log.warn("executor failed to stop an execution", { id: h.assignment.executionId, err });
          }),
          this.#o.executorStopTimeoutMs ?? 10_000,
        );
        if (!stopped) {
          this.#log.warn("executor did not stop an execution in time", { id: h.assignment.executionId });
        }
      }
      this.#report(h, attempt, { state: STOP_STATE[reason] });
      if (h.attempt === attempt) h.handle = undefined; // (a retry may have started meanwhile)
    })();
    return h.stopping;
  }

  /**
   * Whether the attempt of `h` that just ended in `state` runs again under its restart policy
   * (`on-failure`, the default, or `always`; never under `never`):
   * - run-once: after `error` or `timed_out`, while it has had fewer than
   *   {@link MAX_RUN_ONCE_ATTEMPTS} attempts; `finished` is never re-run, not even under `always`;
   * - long-running: after `error` it ended in on its own, without an attempt cap.
   * Canceled work, work stopped with the agent, and work with no executor are never retried.
   */
  #retryAllowed(h: Held, state: ExecutionState, reason: StopReason | undefined): boolean {
    if (reason === "canceled" || reason === "agent_stopping" || h.noRetry) return false;
    if ((h.assignment.restartPolicy || "on-failure") === "never") return false;
    const mode = runModeOf(h.assignment.type);
    if (mode === "run-once") {
      return (state === "error" || state === "timed_out") && h.attempt < MAX_RUN_ONCE_ATTEMPTS;
    }
    return mode === "long-running" && state === "error" && reason === undefined;
  }

  /**
   * Reports the failure of the current attempt of `h`, persists that a retry is pending, and
   * starts the next attempt after a jittered exponential backoff (unless the agent stops first:
   * then the restarted agent runs it at once).
   */
  #scheduleRetry(h: Held, update: ExecutionUpdate): void {
    const id = h.assignment.executionId;
    const attempt = h.attempt;
    const delay = backoffDelay(
      attempt - 1,
      { baseMs: this.#o.retryBaseMs ?? DEFAULT_RETRY_BASE_MS, maxMs: RETRY_MAX_MS },
      this.#random,
    );
    h.phase = "retrying";
    this.#publishEvent(h, update);
    this.#log.info("execution failed; runs again after a backoff", {
      id,
      state: h.status.state,
      attempt,
      next_attempt: attempt + 1,
      retry_in_ms: delay,
    });
    void this.#serial(async () => {
      if (this.#held.get(id) !== h || h.phase !== "retrying" || h.attempt !== attempt) return;
      this.#retries.set(id, this.#clock.now() + delay);
      await this.#save();
      if (this.#stopping || h.phase !== "retrying" || h.attempt !== attempt) return;
      h.retryTimer = setTimeout(() => void this.#retry(h, attempt), delay);
    }).catch((err: unknown) => {
      this.#log.error("could not persist a pending retry; retrying anyway", { id, err });
      if (!this.#stopping && h.phase === "retrying" && h.attempt === attempt && !h.retryTimer) {
        h.retryTimer = setTimeout(() => void this.#retry(h, attempt), delay);
      }
    });
  }

  /** Starts the attempt after `failed` of `h`, if it still waits for it. */
  #retry(h: Held, failed: number): Promise<void> {
    const id = h.assignment.executionId;
    return this.#serial(async () => {
      h.retryTimer = undefined;
      if (h.stopping) await h.stopping; // the failed attempt's executor winds down first
      if (this.#stopping || this.#held.get(id) !== h || h.phase !== "retrying" || h.attempt !== failed)
        return;
      this.#retries.delete(id);
      this.#bumpAttempt(h);
      try {
        await this.#save();
      } catch (err) {
        this.#log.error("could not persist a retry's attempt number; runs it anyway", { id, err });
      }
      await this.#startExecution(h);
      this.#heartbeatSoon();
    }).catch((err: unknown) => this.#log.error("could not start a retry", { id, err }));
  }

  /** Ends the wait of a failed execution for its retry because the control plane canceled it. */
  #cancelRetry(h: Held): void {
    clearTimeout(h.retryTimer);
    h.retryTimer = undefined;
    const id = h.assignment.executionId;
    const failed = h.status.state;
    this.#retries.delete(id); // persisted with the apply that canceled it
    h.status.state = "canceled";
    h.status.exception = `canceled while waiting to run again after attempt ${h.attempt} ended in ${failed}${h.status.exception ? `: ${h.status.exception}` : ""}`;
    h.status.finishTime = timestampFromMs(this.#clock.now());
    h.phase = "canceled";
    if (runModeOf(h.assignment.type) !== "run-once") {
      this.#publishEvent(h);
      return;
    }
    const final = clone(ExecutionStatusSchema, h.status);
    void this.#serial(async () => {
      if (this.#held.get(id) !== h) return;
      this.#finished.set(id, final);
      await this.#save();
    })
      .catch((err: unknown) => this.#log.error("could not persist a final execution status", { id, err }))
      .then(() => this.#publishEvent(h, undefined, final));
  }

  /** At shutdown: a pending retry stays pending (persisted); the restarted agent runs it at once. */
  #pauseRetry(h: Held): void {
    if (h.phase !== "retrying") return;
    clearTimeout(h.retryTimer);
    h.retryTimer = undefined;
    h.status.exception = `${h.status.exception ? `${h.status.exception}; ` : ""}runs again (attempt ${h.attempt + 1}) when the agent restarts`;
  }

  /** Stops an execution because the agent stops: it resumes (or re-runs) when the agent restarts. */
  async #stopForShutdown(h: Held): Promise<void> {
    if (h.stopping) await h.stopping; // a cancel or timeout in flight ends with its own state
    if (h.phase !== "active") return;
    h.stopReason = "agent_stopping";
    const id = h.assignment.executionId;
    const handle = h.handle;
    // Detach first: what the executor reports while it winds down does not count as a final state.
    h.phase = "ended";
    h.controller?.abort("agent_stopping");
    if (handle) {
      await within(
        handle.stop("agent_stopping").catch((err: unknown) => {
          this.#log.warn("executor failed to stop an execution", { id, err });
        }),
        this.#o.executorStopTimeoutMs ?? 10_000,
      );
    }
    clearTimeout(h.timeout);
    h.handle = undefined;
    h.status.state = "waiting";
    h.status.exception =
      runModeOf(h.assignment.type) === "run-once"
        ? h.assignment.restartPolicy === "never"
          ? "interrupted by an agent shutdown; reported as error when the agent restarts (restart_policy is never)"
          : "interrupted by an agent shutdown; runs again when the agent restarts"
        : "stopped with the agent; restarts when the agent restarts";
    h.settled.resolve();
  }

  executions(): ExecutionStatus[] {
    const ids = [...this.#held.keys()].sort();
    const out: ExecutionStatus[] = [];
    for (const id of ids) {
      const h = this.#held.get(id);
      if (!h) continue;
      if (h.phase === "active" && h.handle) {
        try {
          this.#report(h, h.attempt, h.handle.status());
        } catch (err) {
          this.#log.warn("executor status() threw", { id, err });
        }
      }
      out.push(clone(ExecutionStatusSchema, h.status));
    }
    return out;
  }

  // ---------------------------------------------------------------- reporting

  #publishEvent(h: Held, update?: ExecutionUpdate, status: ExecutionStatus = h.status): void {
    const event = create(ExecutionEventSchema, {
      eventId: newId("evt", this.#clock.now()),
      nodeId: this.nodeId,
      status: clone(ExecutionStatusSchema, status),
      time: timestampFromMs(this.#clock.now()),
    });
    if (update?.result !== undefined) {
      try {
        event.result = fromJson(ValueSchema, update.result);
      } catch (err) {
        this.#log.warn("dropped an execution result that is not JSON", { id: h.assignment.executionId, err });
      }
      event.resultTruncated = update.resultTruncated ?? false;
      event.resultBytes = BigInt(Math.max(0, Math.floor(update.resultBytes ?? 0)));
    }
    // Published even while disconnected: the client buffers it, and heartbeats cover a loss.
    this.#bus?.publish(subjects.outbound(this.nodeId, "event"), encode(ExecutionEventSchema, event));
    this.#emit("event", event);
  }

  #publishLogs(batch: LogBatch): boolean {
    const bus = this.#bus;
    if (!bus || !this.#connected) return false;
    bus.publish(subjects.outbound(this.nodeId, "logs"), encode(LogBatchSchema, batch));
    return true;
  }

  #scheduleHeartbeat(): void {
    clearTimeout(this.#heartbeatTimer);
    if (this.#stopping) return;
    this.#heartbeatTimer = setTimeout(
      () => {
        this.#sendHeartbeat();
        this.#scheduleHeartbeat();
      },
      jitter(this.#heartbeatMs, HEARTBEAT_JITTER, this.#random),
    );
  }

  /** Sends a heartbeat soon (coalescing bursts), without moving the periodic ones. */
  #heartbeatSoon(): void {
    if (this.#heartbeatQueued) return;
    this.#heartbeatQueued = true;
    setImmediate(() => {
      this.#heartbeatQueued = false;
      if (!this.#stopping) this.#sendHeartbeat();
    });
  }

  /**
   * Publishes a heartbeat: the applied revision and every held execution. Skipped while the link
   * is known to be down (a burst of stale heartbeats after a reconnect helps nobody; the first
   * one after re-registering says it all).
   */
  #sendHeartbeat(): void {
    const bus = this.#bus;
    if (!bus || !this.#connected || bus.isClosed) return;
    this.#seq += 1n;
    const heartbeat = create(HeartbeatSchema, {
      nodeId: this.nodeId,
      seq: this.#seq,
      appliedRevision: this.#revision,
      executions: this.executions(),
      time: timestampFromMs(this.#clock.now()),
      instanceId: this.instanceId,
    });
    bus.publish(subjects.outbound(this.nodeId, "heartbeat"), encode(HeartbeatSchema, heartbeat));
    this.#emit("heartbeat", heartbeat);
  }
}
