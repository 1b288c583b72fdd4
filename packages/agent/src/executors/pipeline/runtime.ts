/**
 * The pipeline runtime: an async pull loop. The loop asks the input for the next batch only when
 * the previous one has been processed and written, and every write is awaited when the output
 * asks for it, so a slow output slows the input and memory stays bounded by one batch
 * (`max_buffer` messages) plus what an output buffers before its flush.
 *
 * ```
 * input.next() ──batch──▶ for each message: processors (JSONata, in order) ──▶ output.write()
 *      ▲                                                                            │
 *      └──────────────────────── output.flush() after the batch ◀──────────────────┘
 * ```
 *
 * Counters: `in` (read from the input, or dropped by it), `out` (written), `filtered` (a filter
 * said false, or a mapping gave no result), `errored` (a processor threw, the output refused the
 * message, or the input had to drop it). A failing message never stops the pipeline; a failing
 * input or output (cannot read, disk full) does, with a clear exception.
 */
import type { CompiledProcessor } from "./processors.js";
import { jsonataTruthy } from "./processors.js";

/** A message: any JSON value (inputs produce objects). */
export type Message = unknown;

/** Where messages come from. */
export interface PipelineInput {
  /** Gets ready (opens files at their start positions, subscribes); rejects on a fatal problem. */
  open(): Promise<void>;
  /**
   * The next batch (at least one message), waiting as long as needed; `undefined` when the input
   * is exhausted or `signal` aborted. Calling it again means the previous batch was processed.
   */
  next(signal: AbortSignal): Promise<readonly Message[] | undefined>;
  /** Messages dropped since the last call (a bounded queue overflowed); counted as in + errored. */
  takeDropped?(): number;
  close(): Promise<void>;
}

/** Where messages go. */
export interface PipelineOutput {
  open(): Promise<void>;
  /**
   * Takes one message. Throws a {@link MessageError} when this message cannot be written (it is
   * counted as errored); any other throw is fatal. A returned promise is awaited (backpressure).
   */
  write(message: Message): void | Promise<void>;
  /** After each batch: pushes out what is buffered and waits until it is accepted. */
  flush(signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** One message could not be written (not JSON, too large): counted as errored, the pipeline goes on. */
export class MessageError extends Error {
  override readonly name = "MessageError";
}

/** The message counters of a pipeline. */
export interface PipelineCounters {
  in: number;
  out: number;
  filtered: number;
  errored: number;
}

/** Options of {@link PipelineRuntime}. */
export interface PipelineRuntimeOptions {
  readonly input: PipelineInput;
  readonly processors: readonly CompiledProcessor[];
  readonly output: PipelineOutput;
  /** Called for every errored message (the executor samples them into the execution log). */
  readonly onMessageError?: (where: string, err: unknown) => void;
}

/** How a run ended: the input was exhausted, or it was stopped. */
export type PipelineEnd = "exhausted" | "stopped";

/** Runs one pipeline. */
export class PipelineRuntime {
  /** Live counters (read by health windows and heartbeats). */
  readonly counters: PipelineCounters = { in: 0, out: 0, filtered: 0, errored: 0 };
  readonly #o: PipelineRuntimeOptions;

  constructor(options: PipelineRuntimeOptions) {
    this.#o = options;
  }

  /**
   * Moves messages until the input is exhausted or `signal` aborts; rejects when the input or the
   * output fails (the caller closes both either way with {@link close}).
   */
  async run(signal: AbortSignal): Promise<PipelineEnd> {
    const { input, output } = this.#o;
    const c = this.counters;
    const processors = this.#o.processors;
    const n = processors.length;
    for (;;) {
      if (signal.aborted) return "stopped";
      const batch = await input.next(signal);
      const dropped = input.takeDropped?.() ?? 0;
      if (dropped > 0) {
        c.in += dropped;
        c.errored += dropped;
      }
      if (batch === undefined) return signal.aborted ? "stopped" : "exhausted";
      for (let b = 0; b < batch.length; b++) {
        c.in++;
        let message = batch[b];
        let keep = true;
        for (let i = 0; i < n; i++) {
          const p = processors[i] as CompiledProcessor;
          let result: unknown;
          try {
            result = await p.expression.evaluate(message);
          } catch (err) {
            c.errored++;
            this.#o.onMessageError?.(p.label, err);
            keep = false;
            break;
          }
          if (p.kind === "mapping") {
            if (result === undefined) {
              c.filtered++;
              keep = false;
              break;
            }
            message = result;
          } else if (!jsonataTruthy(result)) {
            c.filtered++;
            keep = false;
            break;
          }
        }
        if (!keep) continue;
        try {
          const pending = output.write(message);
          if (pending !== undefined) await pending;
          c.out++;
        } catch (err) {
          if (!(err instanceof MessageError)) throw err;
          c.errored++;
          this.#o.onMessageError?.("output", err);
        }
      }
      await output.flush(signal);
    }
  }

  /** Closes input and output (best effort, both, even after a failure). */
  async close(): Promise<void> {
    await Promise.allSettled([this.#o.input.close(), this.#o.output.close()]);
  }
}
