/**
 * The NATS {@link Bus}: a nats.js connection tuned for unattended edge links.
 *
 * Agents reconnect forever with jitter and detect a dead link within about 30 s (a ping every
 * 10 s, 2 outstanding pings allowed), instead of the client defaults (2 min pings, 10 reconnect
 * attempts). Each node uses its own reply-inbox prefix so NATS permissions can pin it.
 */
import { readFileSync } from "node:fs";
import { EdgeplaneError } from "@edgeplane/core";
import {
  type Authenticator,
  connect,
  credsAuthenticator,
  errors,
  type NatsConnection,
  nkeyAuthenticator,
} from "@nats-io/transport-node";
import type { Bus, BusEvent, BusMessage, RequestOptions } from "./bus.js";

/** Options of {@link connectNatsBus}. */
export interface NatsBusOptions {
  readonly servers: readonly string[];
  /** Client name shown by the server (`edgeplane-agent-<id>`). */
  readonly name: string;
  /** Reply-inbox prefix (agents: `subjects.inboxPrefix(nodeId)`). */
  readonly inboxPrefix?: string;
  /** A credentials file: an nkey seed (`SU...`, as `edgectl nats-config` writes) or a user JWT `.creds` file. */
  readonly credsFile?: string;
  /** Ping interval; default 10 s. Dead-link detection ≈ pingIntervalMs × (maxPingOut + 1). */
  readonly pingIntervalMs?: number;
  /** Default 2. */
  readonly maxPingOut?: number;
  /** Wait for the first connection forever, retrying (agents) instead of failing (tests, CLI). */
  readonly waitOnFirstConnect?: boolean;
  /** Give up connecting after this long when not waiting forever (default 5 s). */
  readonly timeoutMs?: number;
}

/** Builds the authenticator of a credentials file. */
export function authenticatorFromFile(path: string): Authenticator {
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch (err) {
    throw new EdgeplaneError("invalid_argument", `--creds: cannot read ${path}: ${(err as Error).message}`);
  }
  if (text.includes("BEGIN NATS USER JWT")) return credsAuthenticator(new TextEncoder().encode(text));
  const seed = text.split(/\s+/).find((t) => t.startsWith("SU"));
  if (!seed) {
    throw new EdgeplaneError(
      "invalid_argument",
      `--creds: ${path} holds neither an nkey user seed (SU...) nor a NATS user JWT; generate one with edgectl nats-config`,
    );
  }
  return nkeyAuthenticator(new TextEncoder().encode(seed));
}

/** Connects to NATS and returns the {@link Bus}. */
export async function connectNatsBus(
  options: NatsBusOptions,
): Promise<Bus & { readonly connection: NatsConnection }> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: [...options.servers],
      name: options.name,
      inboxPrefix: options.inboxPrefix,
      authenticator: options.credsFile ? authenticatorFromFile(options.credsFile) : undefined,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      reconnectJitter: 500,
      pingInterval: options.pingIntervalMs ?? 10_000,
      maxPingOut: options.maxPingOut ?? 2,
      waitOnFirstConnect: options.waitOnFirstConnect ?? false,
      timeout: options.timeoutMs ?? 5000,
    });
  } catch (err) {
    throw new EdgeplaneError(
      "unavailable",
      `cannot reach NATS at ${options.servers.join(",")}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return new NatsBus(nc);
}

class NatsBus implements Bus {
  readonly connection: NatsConnection;
  readonly #listeners = new Set<(event: BusEvent) => void>();

  constructor(nc: NatsConnection) {
    this.connection = nc;
    void (async () => {
      for await (const s of nc.status()) {
        const event: BusEvent | undefined =
          s.type === "disconnect" ? "disconnected" : s.type === "reconnect" ? "reconnected" : undefined;
        if (event) for (const l of this.#listeners) l(event);
      }
    })().catch(() => undefined);
    void nc.closed().then(() => {
      for (const l of this.#listeners) l("closed");
    });
  }

  get isClosed(): boolean {
    return this.connection.isClosed();
  }

  publish(subject: string, data: Uint8Array): void {
    if (this.connection.isClosed()) return;
    this.connection.publish(subject, data);
  }

  subscribe(
    subject: string,
    handler: (message: BusMessage) => void,
    options: { queue?: string } = {},
  ): () => void {
    const sub = this.connection.subscribe(subject, {
      queue: options.queue,
      callback: (err, msg) => {
        if (err) return;
        handler({ subject: msg.subject, data: msg.data, reply: msg.reply });
      },
    });
    return () => sub.unsubscribe();
  }

  async request(subject: string, data: Uint8Array, options: RequestOptions): Promise<Uint8Array> {
    try {
      const msg = await this.connection.request(subject, data, { timeout: options.timeoutMs });
      return msg.data;
    } catch (err) {
      // nats.js v3 wraps "no responders" in a RequestError whose cause is NoRespondersError.
      const noResponders =
        err instanceof errors.NoRespondersError ||
        (err instanceof errors.RequestError && err.isNoResponders()) ||
        (err as { cause?: unknown }).cause instanceof errors.NoRespondersError;
      if (noResponders) {
        throw new EdgeplaneError("unavailable", `no responder on ${subject}: is the control plane running?`, {
          cause: err,
        });
      }
      if (err instanceof errors.TimeoutError) {
        throw new EdgeplaneError(
          "deadline_exceeded",
          `no reply on ${subject} within ${options.timeoutMs} ms`,
          {
            cause: err,
          },
        );
      }
      throw new EdgeplaneError("unavailable", `request on ${subject} failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  async flush(): Promise<void> {
    await this.connection.flush();
  }

  onEvent(listener: (event: BusEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.connection.isClosed()) return;
    await this.connection.drain().catch(() => this.connection.close());
  }
}
