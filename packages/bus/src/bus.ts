/**
 * The transport seam: what the control plane and the agent need from NATS, behind one small
 * interface, with a NATS implementation (`nats-bus.ts`) and an in-process one (`memory-bus.ts`)
 * for unit tests and the single-process dev stack.
 */

/** A message as a subscriber sees it. */
export interface BusMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  /** The reply subject of a request. */
  readonly reply?: string;
}

/** Connection events a long-lived client reacts to (the agent re-registers on "reconnected"). */
export type BusEvent = "disconnected" | "reconnected" | "closed";

/** Options of a request. */
export interface RequestOptions {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** A message bus. */
export interface Bus {
  /** Publishes; never throws for a disconnected bus (NATS buffers while reconnecting). */
  publish(subject: string, data: Uint8Array): void;
  /**
   * Subscribes `handler` (called synchronously per message; it must not throw) and returns the
   * function that unsubscribes. `queue` makes it a queue-group member.
   */
  subscribe(
    subject: string,
    handler: (message: BusMessage) => void,
    options?: { queue?: string },
  ): () => void;
  /** Request/reply; rejects `deadline_exceeded` after timeoutMs, `unavailable` with no responder. */
  request(subject: string, data: Uint8Array, options: RequestOptions): Promise<Uint8Array>;
  /** Resolves once the server has seen everything published so far. */
  flush(): Promise<void>;
  /** Calls `listener` on connection events until the returned function is called. */
  onEvent(listener: (event: BusEvent) => void): () => void;
  readonly isClosed: boolean;
  /** Drains subscriptions and pending publishes, then closes. */
  close(): Promise<void>;
}
