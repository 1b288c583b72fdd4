/**
 * An in-process {@link Bus} with NATS subject semantics (`*` one token, `>` the rest), for unit
 * tests and the single-process dev stack. Delivery is asynchronous (a microtask), like a network.
 */
import { EdgeplaneError } from "@edgeplane/core";
import type { Bus, BusEvent, BusMessage, RequestOptions } from "./bus.js";

/** Whether a NATS subject pattern matches a subject. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== "*" && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

interface Sub {
  readonly pattern: string;
  readonly handler: (message: BusMessage) => void;
  readonly queue?: string;
}

/** A broker shared by the buses of one process (each component gets its own {@link Bus}). */
export class MemoryBroker {
  readonly #subs = new Set<Sub>();
  #inbox = 0;

  /** A new client of this broker. */
  connect(): Bus {
    return new MemoryBus(this);
  }

  /** @internal */
  add(sub: Sub): () => void {
    this.#subs.add(sub);
    return () => this.#subs.delete(sub);
  }

  /** @internal */
  deliver(message: BusMessage): number {
    const queues = new Map<string, Sub[]>();
    let delivered = 0;
    for (const sub of this.#subs) {
      if (!subjectMatches(sub.pattern, message.subject)) continue;
      if (sub.queue) {
        const members = queues.get(sub.queue) ?? [];
        members.push(sub);
        queues.set(sub.queue, members);
        continue;
      }
      queueMicrotask(() => sub.handler(message));
      delivered++;
    }
    for (const members of queues.values()) {
      const pick = members[Math.floor(Math.random() * members.length)] as Sub;
      queueMicrotask(() => pick.handler(message));
      delivered++;
    }
    return delivered;
  }

  /** @internal */
  nextInbox(): string {
    return `_INBOX.mem.${++this.#inbox}`;
  }
}

class MemoryBus implements Bus {
  readonly #broker: MemoryBroker;
  readonly #unsubs = new Set<() => void>();
  readonly #listeners = new Set<(event: BusEvent) => void>();
  #closed = false;

  constructor(broker: MemoryBroker) {
    this.#broker = broker;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  publish(subject: string, data: Uint8Array): void {
    if (this.#closed) return;
    this.#broker.deliver({ subject, data });
  }

  subscribe(
    subject: string,
    handler: (message: BusMessage) => void,
    options: { queue?: string } = {},
  ): () => void {
    const off = this.#broker.add({ pattern: subject, handler, queue: options.queue });
    this.#unsubs.add(off);
    return () => {
      off();
      this.#unsubs.delete(off);
    };
  }

  request(subject: string, data: Uint8Array, options: RequestOptions): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const inbox = this.#broker.nextInbox();
      const done = (): void => {
        off();
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      const off = this.#broker.add({
        pattern: inbox,
        handler: (m) => {
          done();
          resolve(m.data);
        },
      });
      const timer = setTimeout(() => {
        done();
        reject(
          new EdgeplaneError("deadline_exceeded", `no reply on ${subject} within ${options.timeoutMs} ms`),
        );
      }, options.timeoutMs);
      const onAbort = (): void => {
        done();
        reject(new EdgeplaneError("canceled", `request on ${subject} was cancelled`));
      };
      options.signal?.addEventListener("abort", onAbort, { once: true });
      if (this.#broker.deliver({ subject, data, reply: inbox }) === 0) {
        done();
        reject(new EdgeplaneError("unavailable", `no responder on ${subject}`));
      }
    });
  }

  async flush(): Promise<void> {
    await new Promise((r) => setTimeout(r, 0));
  }

  onEvent(listener: (event: BusEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const off of this.#unsubs) off();
    this.#unsubs.clear();
    for (const l of this.#listeners) l("closed");
  }
}
