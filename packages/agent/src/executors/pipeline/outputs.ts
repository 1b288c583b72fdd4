/**
 * Pipeline outputs. Each writes one JSON document per message (JSON Lines) and applies
 * backpressure its own way:
 *
 * - stdout: the agent process's standard output (the journal under systemd); buffered per batch,
 *   and the pipeline waits for `drain` when the stream is full;
 * - file: appended to an absolute path allowed by agent.yaml; buffered per batch, each batch
 *   written (and awaited) before the next is read;
 * - nats: published on the node's `out.data.<subject>`; after each batch the pipeline waits until
 *   the server has it, and while the agent is offline the pipeline waits for the connection (the
 *   input is not read meanwhile: a file input resumes where it stopped);
 * - discard: drops everything (benchmarks, tests, counting).
 */

import type { FileHandle } from "node:fs/promises";
import { open, realpath } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Writable } from "node:stream";
import { MAX_MESSAGE_BYTES } from "@edgeplane/bus";
import type { ExecutionDataChannel } from "../../data-channel.js";
import { pathAllowed } from "../paths.js";
import { type Message, MessageError, type PipelineOutput } from "./runtime.js";

/** A message as one JSON line; a {@link MessageError} when it has no JSON form. */
export function jsonLine(message: Message): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(message);
  } catch (err) {
    throw new MessageError(`the message cannot be written as JSON: ${(err as Error).message}`);
  }
  if (text === undefined) throw new MessageError("the message has no JSON form (a function?)");
  return `${text}\n`;
}

const FLUSH_AT = 64 * 1024;

/** Writes JSON lines to a stream (the agent's stdout by default). */
export class StreamOutput implements PipelineOutput {
  readonly #stream: Writable;
  #buffer = "";

  constructor(stream: Writable) {
    this.#stream = stream;
  }

  async open(): Promise<void> {}

  write(message: Message): void | Promise<void> {
    this.#buffer += jsonLine(message);
    if (this.#buffer.length >= FLUSH_AT) return this.#push();
  }

  flush(): Promise<void> {
    return this.#push();
  }

  async close(): Promise<void> {
    await this.#push().catch(() => {});
  }

  async #push(): Promise<void> {
    if (this.#buffer === "") return;
    const chunk = this.#buffer;
    this.#buffer = "";
    if (this.#stream.write(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        this.#stream.off("drain", onDrain);
        this.#stream.off("error", done);
        this.#stream.off("close", onDrain);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = (): void => done();
      this.#stream.once("drain", onDrain);
      this.#stream.once("close", onDrain);
      this.#stream.once("error", done);
    });
  }
}

/** Drops every message. */
export class DiscardOutput implements PipelineOutput {
  async open(): Promise<void> {}
  write(): void {}
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

/** Appends JSON lines to a file (its real path, symlinks resolved, must be allowed too). */
export class FileOutput implements PipelineOutput {
  readonly #path: string;
  readonly #allowed: readonly string[];
  #fh: FileHandle | undefined;
  #buffer = "";

  constructor(path: string, allowed: readonly string[]) {
    this.#path = path;
    this.#allowed = allowed;
  }

  async open(): Promise<void> {
    let real: string;
    try {
      real = await realpath(this.#path).catch(async () =>
        join(await realpath(dirname(this.#path)), basename(this.#path)),
      );
    } catch (err) {
      throw new Error(`output.file: cannot open ${this.#path}: ${(err as Error).message}`);
    }
    if (!pathAllowed(this.#allowed, real)) {
      throw new Error(
        `output.file: ${this.#path} resolves to ${real}, outside agent.yaml executors.pipeline.allowed_output_paths`,
      );
    }
    try {
      this.#fh = await open(real, "a", 0o640);
    } catch (err) {
      throw new Error(`output.file: cannot open ${this.#path}: ${(err as Error).message}`);
    }
  }

  write(message: Message): void | Promise<void> {
    this.#buffer += jsonLine(message);
    if (this.#buffer.length >= FLUSH_AT) return this.#push();
  }

  flush(): Promise<void> {
    return this.#push();
  }

  async close(): Promise<void> {
    await this.#push().catch(() => {});
    await this.#fh?.close().catch(() => {});
    this.#fh = undefined;
  }

  async #push(): Promise<void> {
    if (this.#buffer === "" || !this.#fh) return;
    const chunk = this.#buffer;
    this.#buffer = "";
    try {
      await this.#fh.write(chunk);
    } catch (err) {
      throw new Error(`output.file: cannot write ${this.#path}: ${(err as Error).message}`);
    }
  }
}

const encoder = new TextEncoder();

/** Publishes JSON messages on the node's `out.data.<subject>`. */
export class NatsOutput implements PipelineOutput {
  readonly #data: ExecutionDataChannel;
  readonly #subject: string;
  readonly #signal: AbortSignal;
  #pending = 0;

  /** `signal` ends waits for the connection when the pipeline stops. */
  constructor(data: ExecutionDataChannel, subject: string, signal: AbortSignal) {
    this.#data = data;
    this.#subject = subject;
    this.#signal = signal;
  }

  async open(): Promise<void> {}

  write(message: Message): void | Promise<void> {
    const line = jsonLine(message);
    const bytes = encoder.encode(line.slice(0, -1));
    if (bytes.byteLength > MAX_MESSAGE_BYTES) {
      throw new MessageError(
        `the message is ${bytes.byteLength} bytes; NATS takes at most ${MAX_MESSAGE_BYTES}`,
      );
    }
    if (this.#data.publish(this.#subject, bytes)) {
      this.#pending += bytes.byteLength;
      if (this.#pending >= 256 * 1024) return this.flush(this.#signal);
      return;
    }
    return this.#publishWhenConnected(bytes);
  }

  async flush(signal: AbortSignal): Promise<void> {
    if (this.#pending === 0) return;
    this.#pending = 0;
    await this.#data.flush(signal);
  }

  async close(): Promise<void> {}

  async #publishWhenConnected(bytes: Uint8Array): Promise<void> {
    // Offline: hold the pipeline (and so its input) until the agent is connected again.
    while (!this.#signal.aborted) {
      await this.#data.ready(this.#signal);
      if (this.#data.publish(this.#subject, bytes)) {
        this.#pending += bytes.byteLength;
        return;
      }
    }
  }
}
