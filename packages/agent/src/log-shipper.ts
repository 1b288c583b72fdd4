/**
 * Execution logs, batched per execution and shipped as `LogBatch` messages. Lines get a
 * per-execution sequence number when they are written; while the agent cannot publish (not
 * connected yet, or offline), at most `maxBufferedLines` per execution are kept, the oldest are
 * dropped first and the next batch says how many (`dropped`), so gaps are visible.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type LogBatch, LogBatchSchema, type LogLine, LogLineSchema } from "@edgeplane/api";
import type { Clock } from "@edgeplane/core";
import type { ExecutionLogLevel, ExecutionLogStream } from "./executor.js";

/** Options of {@link LogShipper}. */
export interface LogShipperOptions {
  readonly nodeId: string;
  readonly clock: Clock;
  /** Publishes one batch; returns false when it cannot now (the lines stay buffered). */
  readonly publish: (batch: LogBatch) => boolean;
  /** Lines per batch (default 100). */
  readonly maxLinesPerBatch?: number;
  /** Lines kept per execution while they cannot be shipped (default 1000). */
  readonly maxBufferedLines?: number;
  /** Longer lines are cut to this many characters (default 8192), so a batch stays far below 1 MiB. */
  readonly maxLineChars?: number;
  /** How long a line may wait for its batch, in ms (default 250). */
  readonly flushIntervalMs?: number;
}

interface Stream {
  seq: bigint;
  dropped: bigint;
  lines: LogLine[];
}

/** Buffers and ships execution log lines. */
export class LogShipper {
  readonly #o: Required<LogShipperOptions>;
  readonly #streams = new Map<string, Stream>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(options: LogShipperOptions) {
    this.#o = {
      maxLinesPerBatch: 100,
      maxBufferedLines: 1000,
      maxLineChars: 8192,
      flushIntervalMs: 250,
      ...options,
    };
  }

  /** Appends one line of an execution's log. */
  append(executionId: string, level: ExecutionLogLevel, stream: ExecutionLogStream, text: string): void {
    if (this.#closed) return;
    let s = this.#streams.get(executionId);
    if (!s) {
      s = { seq: 0n, dropped: 0n, lines: [] };
      this.#streams.set(executionId, s);
    }
    s.seq += 1n;
    const cut = text.length > this.#o.maxLineChars ? `${text.slice(0, this.#o.maxLineChars)}…` : text;
    s.lines.push(
      create(LogLineSchema, {
        seq: s.seq,
        time: timestampFromMs(this.#o.clock.now()),
        stream,
        level,
        text: cut,
      }),
    );
    if (s.lines.length > this.#o.maxBufferedLines) {
      const over = s.lines.length - this.#o.maxBufferedLines;
      s.lines.splice(0, over);
      s.dropped += BigInt(over);
    }
    if (s.lines.length >= this.#o.maxLinesPerBatch) this.flush();
    else this.#schedule();
  }

  /** Ships everything buffered that can be shipped now. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const [executionId, s] of this.#streams) {
      while (s.lines.length > 0) {
        const lines = s.lines.slice(0, this.#o.maxLinesPerBatch);
        const batch = create(LogBatchSchema, {
          nodeId: this.#o.nodeId,
          executionId,
          lines,
          dropped: s.dropped,
        });
        if (!this.#o.publish(batch)) {
          this.#schedule();
          return;
        }
        s.lines.splice(0, lines.length);
        s.dropped = 0n;
      }
    }
  }

  /** Forgets an execution's sequence (after it left the desired set); unsent lines are shipped first. */
  forget(executionId: string): void {
    this.flush();
    const s = this.#streams.get(executionId);
    if (s && s.lines.length === 0) this.#streams.delete(executionId);
  }

  /** Ships what it can and stops the timer; later lines are ignored. */
  close(): void {
    this.flush();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#closed = true;
  }

  #schedule(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, this.#o.flushIntervalMs);
  }
}
