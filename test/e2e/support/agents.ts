/**
 * Real node agents (`createAgent` from @edgeplane/agent) for the end-to-end rollout tests, each
 * with its own data dir, running the built-in pipeline executor with a short health window (so
 * a version whose mapping fails every message turns unhealthy within a fraction of a second).
 * The executor is wrapped to count how many times each execution was started: a rollout that
 * resumes after a control-plane crash must not start anything twice.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Agent,
  createAgent,
  createPipelineExecutor,
  DEFAULT_AGENT_CONFIG,
  type Executor,
} from "@edgeplane/agent";
import { quiet } from "./stack.js";

/** The pipeline config of a job version: `bad` makes its mapping fail every message. */
export function pipelineConfig(bad = false, tag = "v"): Record<string, unknown> {
  return {
    input: { generate: { interval: "20ms", message: { tag } } },
    pipeline: {
      processors: [
        { mapping: bad ? '$error("bad version: every message fails")' : '{"tag": tag, "ok": true}' },
      ],
    },
    output: { discard: {} },
  };
}

/** A set of real agents. */
export class RealFleet {
  readonly agents = new Map<string, Agent>();
  /** Execution id → times the executor started it. */
  readonly starts = new Map<string, number>();
  /** Every start: which node, which execution of which job version, which attempt. */
  readonly runs: Array<{
    node: string;
    executionId: string;
    jobId: string;
    version: number;
    attempt: number;
  }> = [];
  readonly #dirs = new Map<string, string>();
  readonly #natsUrl: string;
  readonly #labels: Record<string, string>;
  readonly #executor: Executor;
  #root = "";

  constructor(natsUrl: string, labels: Record<string, string>, healthWindowMs = 200) {
    this.#natsUrl = natsUrl;
    this.#labels = labels;
    const pipeline = createPipelineExecutor({
      config: { ...DEFAULT_AGENT_CONFIG.executors.pipeline, healthWindowMs },
    });
    this.#executor = {
      name: pipeline.name,
      types: pipeline.types,
      start: (assignment, ctx) => {
        this.starts.set(assignment.executionId, (this.starts.get(assignment.executionId) ?? 0) + 1);
        this.runs.push({
          node: ctx.nodeId,
          executionId: assignment.executionId,
          jobId: assignment.jobId,
          version: assignment.jobVersion,
          attempt: ctx.attempt,
        });
        return pipeline.start(assignment, ctx);
      },
    };
  }

  /** Starts agents `ids` (each with a fresh data dir). */
  async start(ids: readonly string[]): Promise<void> {
    if (this.#root === "") this.#root = await mkdtemp(join(tmpdir(), "rollout-e2e-"));
    await Promise.all(ids.map((id) => this.startOne(id)));
  }

  /** Starts (or restarts, from its data dir) one agent. */
  async startOne(id: string): Promise<Agent> {
    let dir = this.#dirs.get(id);
    if (dir === undefined) {
      dir = join(this.#root, id);
      this.#dirs.set(id, dir);
    }
    const agent = createAgent({
      nodeId: id,
      dataDir: dir,
      nats: { servers: [this.#natsUrl] },
      labels: this.#labels,
      executors: [this.#executor],
      heartbeatIntervalMs: 200,
      retry: { baseMs: 50, maxMs: 300 },
      logger: quiet,
    });
    this.agents.set(id, agent);
    await agent.start();
    return agent;
  }

  /** Stops one agent (its executions stop with it; it resumes them when started again). */
  async stopOne(id: string): Promise<void> {
    await this.agents.get(id)?.stop({ graceMs: 0 });
    this.agents.delete(id);
  }

  /** The running version of `jobId` per agent (0: none running). */
  versions(jobId: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, a] of this.agents) {
      const running = a.executions().filter((e) => e.jobId === jobId && e.state === "running");
      out[id] = running.reduce((max, e) => Math.max(max, e.jobVersion), 0);
    }
    return out;
  }

  /** Whether every agent runs `version` of `jobId` (and only it). */
  allRun(jobId: string, version: number): boolean {
    return Object.values(this.versions(jobId)).every((v) => v === version);
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.stop({ graceMs: 0 }).catch(() => undefined)));
    this.agents.clear();
    if (this.#root !== "") await rm(this.#root, { recursive: true, force: true });
  }
}
