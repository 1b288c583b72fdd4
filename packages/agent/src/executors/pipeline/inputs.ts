/**
 * The `generate` and `nats` inputs (the `file` input is in `file-input.ts`).
 *
 * - generate: every `interval`, `batch_size` messages, until `count` messages when set. Each is
 *   `message` itself (deep-frozen: nothing in a pipeline mutates a message, processors build new
 *   values), or, with `seq_field`, a shallow copy with that field set to the sequence number. It
 *   never runs ahead of the pipeline: a batch that is late is emitted at once, with no burst.
 * - nats: messages on the node's `in.data.<subject>` (see `data-channel.ts`), JSON-decoded (a body
 *   that is not JSON becomes `{"data": "<text>"}`), queued up to `max_buffer`; NATS core has no
 *   flow control, so what arrives while the queue is full is dropped and counted as errored.
 */
import type { Clock } from "@edgeplane/core";
import { sleep } from "../../backoff.js";
import type { ExecutionDataChannel } from "../../data-channel.js";
import type { Message, PipelineInput } from "./runtime.js";

/** Options of {@link GenerateInput}. */
export interface GenerateInputOptions {
  readonly intervalMs: number;
  readonly message: Readonly<Record<string, unknown>>;
  readonly count: number | undefined;
  readonly batchSize: number;
  readonly seqField: string | undefined;
  /** The largest batch handed to the pipeline at once. */
  readonly maxBuffer: number;
  readonly clock: Clock;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The `generate` input: demos, tests and benchmarks. */
export class GenerateInput implements PipelineInput {
  readonly #o: GenerateInputOptions;
  #emitted = 0;
  #owed = 0;
  #nextDue: number | undefined;

  readonly #message: Readonly<Record<string, unknown>>;

  constructor(options: GenerateInputOptions) {
    this.#o = options;
    this.#message = deepFreeze(structuredClone(options.message));
  }

  async open(): Promise<void> {}

  async next(signal: AbortSignal): Promise<readonly Message[] | undefined> {
    const { count, intervalMs, batchSize, seqField, clock } = this.#o;
    const message = this.#message;
    if (count !== undefined && this.#emitted >= count) return undefined;
    if (this.#owed === 0) {
      const now = clock.now();
      const due = this.#nextDue ?? now;
      if (due > now) {
        await sleep(due - now, signal);
        if (signal.aborted) return undefined;
      }
      // The next tick is one interval after this one, or now when the pipeline fell behind.
      this.#nextDue = Math.max(due + intervalMs, clock.now());
      this.#owed = batchSize;
    }
    let n = Math.min(this.#owed, this.#o.maxBuffer);
    if (count !== undefined) n = Math.min(n, count - this.#emitted);
    this.#owed -= n;
    const batch: Message[] = new Array(n);
    for (let i = 0; i < n; i++) {
      this.#emitted++;
      batch[i] = seqField === undefined ? message : { ...message, [seqField]: this.#emitted };
    }
    return batch;
  }

  async close(): Promise<void> {}
}

const decoder = new TextDecoder();

/** Decodes a NATS message body: JSON when it is JSON, else `{"data": "<text>"}`. */
export function decodeDataMessage(data: Uint8Array): Message {
  const text = decoder.decode(data);
  try {
    return JSON.parse(text) as Message;
  } catch {
    return { data: text };
  }
}

/** The `nats` input: the node's `in.data.<subject>`, through the agent's connection. */
export class NatsInput implements PipelineInput {
  readonly #data: ExecutionDataChannel;
  readonly #subject: string;
  readonly #maxBuffer: number;
  #queue: Message[] = [];
  #dropped = 0;
  #wake: (() => void) | undefined;
  #off: (() => void) | undefined;

  constructor(data: ExecutionDataChannel, subject: string, maxBuffer: number) {
    this.#data = data;
    this.#subject = subject;
    this.#maxBuffer = maxBuffer;
  }

  async open(): Promise<void> {
    this.#off = this.#data.subscribe(this.#subject, (bytes) => {
      if (this.#queue.length >= this.#maxBuffer) {
        this.#dropped++;
        return;
      }
      this.#queue.push(decodeDataMessage(bytes));
      const wake = this.#wake;
      this.#wake = undefined;
      wake?.();
    });
  }

  async next(signal: AbortSignal): Promise<readonly Message[] | undefined> {
    while (this.#queue.length === 0) {
      if (signal.aborted) return undefined;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.#wake = done;
        signal.addEventListener("abort", done, { once: true });
      });
    }
    const batch = this.#queue;
    this.#queue = [];
    return batch;
  }

  takeDropped(): number {
    const d = this.#dropped;
    this.#dropped = 0;
    return d;
  }

  async close(): Promise<void> {
    this.#off?.();
    this.#off = undefined;
    this.#wake?.();
  }
}
