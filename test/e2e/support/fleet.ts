/**
 * A simulated fleet for the rollout tests: `SimAgent`s (the agent protocol without executing
 * anything) over a few NATS connections. Each agent reports every execution it is assigned as
 * running at once (an execution event with `health.since`), healthy unless the test's `health`
 * script says otherwise, and heartbeats periodically; an agent can go offline (no heartbeats,
 * ignores pushes) and come back (registers again, converging on its desired state).
 */
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { DesiredState } from "@edgeplane/api";
import { type Bus, connectNatsBus } from "@edgeplane/bus";
import { SimAgent, type SimExecution } from "@edgeplane/orchestrator";

/** Whether node `nodeId` reports `version` of a job healthy. */
export type HealthScript = (version: number, nodeId: string) => boolean;

/** A fleet of simulated agents. */
export class SimFleet {
  readonly agents = new Map<string, SimAgent>();
  readonly #buses: Bus[];
  readonly #health: HealthScript;
  /** Executions reported per agent: id → since. */
  readonly #since = new Map<string, number>();
  readonly #offline = new Set<string>();
  /** Execution ids ever started per node (to prove nothing ran twice). */
  readonly starts = new Map<string, string[]>();
  #timer: ReturnType<typeof setInterval> | undefined;

  private constructor(buses: Bus[], health: HealthScript) {
    this.#buses = buses;
    this.#health = health;
  }

  /** Connects `connections` NATS clients for the fleet's agents. */
  static async connect(natsUrl: string, connections: number, health: HealthScript): Promise<SimFleet> {
    const buses: Bus[] = [];
    for (let i = 0; i < connections; i++)
      buses.push(await connectNatsBus({ servers: [natsUrl], name: `sim-fleet-${i}` }));
    return new SimFleet(buses, health);
  }

  /** Registers `ids` with `labels`. */
  async add(ids: readonly string[], labels: Record<string, string>): Promise<void> {
    await Promise.all(
      ids.map(async (id, i) => {
        const agent = new SimAgent({
          bus: this.#buses[i % this.#buses.length] as Bus,
          nodeId: id,
          labels,
          onApply: (ds, a) => this.#applied(ds, a),
        }).listen();
        this.agents.set(id, agent);
        const reply = await agent.register();
        if (!reply.accepted) throw new Error(`agent ${id} was refused: ${reply.message}`);
      }),
    );
  }

  /** Heartbeats every `ms` from every online agent. */
  startHeartbeats(ms = 200): void {
    this.#timer ??= setInterval(() => {
      for (const [id, a] of this.agents) if (!this.#offline.has(id)) this.#heartbeat(a);
    }, ms);
  }

  /** Takes a node offline: no heartbeats, desired states pushed meanwhile are not applied. */
  offline(id: string): void {
    this.#offline.add(id);
    const a = this.agents.get(id);
    if (a) a.autoApply = false;
  }

  /** Brings a node back: it registers again and converges on its desired state. */
  async online(id: string): Promise<void> {
    this.#offline.delete(id);
    const a = this.agents.get(id);
    if (!a) return;
    a.autoApply = true;
    await a.register();
  }

  /** The version of `jobId` each node holds (0: none). */
  versions(jobId: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, a] of this.agents)
      out[id] = a.desired?.assignments.find((x) => x.jobId === jobId)?.jobVersion ?? 0;
    return out;
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    for (const a of this.agents.values()) a.close();
    await Promise.all(this.#buses.map((b) => b.close()));
  }

  #statusOf(a: SimAgent, x: DesiredState["assignments"][number]): SimExecution {
    const healthy = this.#health(x.jobVersion, a.nodeId);
    const key = `${a.nodeId}/${x.executionId}`;
    let since = this.#since.get(key);
    if (since === undefined) {
      since = Date.now();
      this.#since.set(key, since);
    }
    return {
      executionId: x.executionId,
      jobId: x.jobId,
      jobVersion: x.jobVersion,
      state: "running",
      health: { healthy, errorRate: healthy ? 0 : 1, since: timestampFromMs(since) },
      attempt: 1,
    };
  }

  #applied(ds: DesiredState, a: SimAgent): void {
    for (const x of ds.assignments) {
      const key = `${a.nodeId}/${x.executionId}`;
      if (this.#since.has(key)) continue;
      const list = this.starts.get(a.nodeId) ?? [];
      list.push(x.executionId);
      this.starts.set(a.nodeId, list);
      a.event(this.#statusOf(a, x));
    }
    this.#heartbeat(a);
  }

  #heartbeat(a: SimAgent): void {
    a.executions = (a.desired?.assignments ?? []).map((x) => this.#statusOf(a, x));
    a.heartbeat();
  }
}
