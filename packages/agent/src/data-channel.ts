/**
 * Pipeline data over the agent's own NATS connection. A pipeline names a subject relative to its
 * node's data subjects; the agent maps it under the subjects its credentials already allow:
 *
 * | pipeline config | NATS subject | who may use it |
 * |---|---|---|
 * | `output.nats.subject: metrics.cpu` | `ep.node.<id>.out.data.metrics.cpu` | the node publishes (its `ep.node.<id>.out.>` permission) |
 * | `input.nats.subject: commands.>` | `ep.node.<id>.in.data.commands.>` | the node subscribes (its `ep.node.<id>.in.>` permission) |
 *
 * So a pipeline can neither read another node's data nor publish as another node, and needs no
 * NATS permission beyond the node's own. The control plane's node registry subscribes to named
 * outbound kinds only (`…out.heartbeat`, …), never to `…out.data.>`, so data does not reach it.
 * Subscriptions survive reconnects (the client re-subscribes) and a fresh connection (re-made here).
 */
import { type Bus, subjects } from "@edgeplane/bus";

/** Which way data flows, seen from the node. */
export type DataDirection = "in" | "out";

/**
 * The NATS subject of a pipeline's relative `subject` on node `nodeId`: `ep.node.<id>.out.data.<subject>`
 * (what it publishes) or `ep.node.<id>.in.data.<subject>` (what it receives).
 */
export function dataSubject(nodeId: string, direction: DataDirection, subject: string): string {
  const all = direction === "out" ? subjects.nodeOutbound(nodeId) : subjects.nodeInbound(nodeId);
  // `ep.node.<id>.out.>` → `ep.node.<id>.out.data.<subject>`: the node's own subjects, one level down.
  return `${all.slice(0, -1)}data.${subject}`;
}

/** What an executor may do on the agent's NATS connection (relative subjects only). */
export interface ExecutionDataChannel {
  /** Whether the agent is connected now (a publish goes out, or is buffered by the client briefly). */
  readonly connected: boolean;
  /** Publishes on the node's `out.data.<subject>`; returns false (dropped) while not connected. */
  publish(subject: string, data: Uint8Array): boolean;
  /** Subscribes to the node's `in.data.<subject>` (wildcards allowed); returns the unsubscribe function. */
  subscribe(subject: string, handler: (data: Uint8Array, subject: string) => void): () => void;
  /** Resolves once connected (at once if connected), or when `signal` aborts. */
  ready(signal: AbortSignal): Promise<void>;
  /** Resolves once the server has everything published so far (or `signal` aborts, or the link drops). */
  flush(signal: AbortSignal): Promise<void>;
}

interface DataSubscription {
  readonly subject: string;
  readonly handler: (data: Uint8Array, subject: string) => void;
  off: (() => void) | undefined;
}

/** The agent's side of {@link ExecutionDataChannel}: told when the bus comes and goes. */
export class AgentDataChannel implements ExecutionDataChannel {
  readonly #nodeId: string;
  readonly #subs = new Set<DataSubscription>();
  #bus: Bus | undefined;
  #connected = false;
  #waiters = new Set<() => void>();

  constructor(nodeId: string) {
    this.#nodeId = nodeId;
  }

  get connected(): boolean {
    return this.#connected && this.#bus !== undefined && !this.#bus.isClosed;
  }

  /** A bus was attached (first connect, or a fresh connection after the old one closed). */
  attach(bus: Bus): void {
    this.detach();
    this.#bus = bus;
    for (const s of this.#subs) this.#subscribe(s);
    this.setConnected(true);
  }

  /** The bus is gone (closed, or the agent stops): subscriptions are re-made on the next attach. */
  detach(): void {
    for (const s of this.#subs) {
      s.off?.();
      s.off = undefined;
    }
    this.#bus = undefined;
    this.#connected = false;
  }

  /** The link went down or came back (the client keeps subscriptions across a reconnect). */
  setConnected(connected: boolean): void {
    this.#connected = connected;
    if (this.connected) {
      const waiters = [...this.#waiters];
      this.#waiters.clear();
      for (const w of waiters) w();
    }
  }

  publish(subject: string, data: Uint8Array): boolean {
    const bus = this.#bus;
    if (!bus || !this.connected) return false;
    bus.publish(dataSubject(this.#nodeId, "out", subject), data);
    return true;
  }

  subscribe(subject: string, handler: (data: Uint8Array, subject: string) => void): () => void {
    const s: DataSubscription = { subject, handler, off: undefined };
    this.#subs.add(s);
    if (this.#bus) this.#subscribe(s);
    return () => {
      s.off?.();
      s.off = undefined;
      this.#subs.delete(s);
    };
  }

  ready(signal: AbortSignal): Promise<void> {
    if (this.connected || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.#waiters.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.#waiters.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  async flush(signal: AbortSignal): Promise<void> {
    const bus = this.#bus;
    if (!bus || !this.connected || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        signal.removeEventListener("abort", done);
        resolve();
      };
      signal.addEventListener("abort", done, { once: true });
      bus.flush().then(done, done);
    });
  }

  #subscribe(s: DataSubscription): void {
    const bus = this.#bus;
    if (!bus) return;
    const prefix = dataSubject(this.#nodeId, "in", "");
    s.off = bus.subscribe(dataSubject(this.#nodeId, "in", s.subject), (m) => {
      try {
        s.handler(m.data, m.subject.startsWith(prefix) ? m.subject.slice(prefix.length) : m.subject);
      } catch {
        // A handler must not throw; one that does loses only that message.
      }
    });
  }
}
