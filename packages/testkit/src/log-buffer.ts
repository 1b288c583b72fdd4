/**
 * A bounded tail of a server's stdout and stderr, kept across restarts, so a readiness timeout
 * or a failing test can show what the server said.
 */

/** Keeps the last `capacity` lines written by one or more streams. */
export class LogBuffer {
  readonly #capacity: number;
  readonly #lines: string[] = [];
  readonly #partial = new Map<NodeJS.ReadableStream, string>();
  #total = 0;

  constructor(capacity = 500) {
    this.#capacity = capacity;
  }

  /** Starts collecting the lines of `stream` (a child's stdout or stderr). */
  attach(stream: NodeJS.ReadableStream): void {
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const text = (this.#partial.get(stream) ?? "") + chunk;
      const lines = text.split("\n");
      this.#partial.set(stream, lines.pop() ?? "");
      for (const line of lines) this.push(line);
    });
    stream.on("end", () => {
      const rest = this.#partial.get(stream);
      this.#partial.delete(stream);
      if (rest) this.push(rest);
    });
  }

  /** Appends one line (testkit's own notes, such as restarts, go here too). */
  push(line: string): void {
    this.#lines.push(line.replace(/\r$/, ""));
    this.#total++;
    if (this.#lines.length > this.#capacity) this.#lines.shift();
  }

  /** A position to pass to {@link LogBuffer.since} later. */
  mark(): number {
    return this.#total;
  }

  /** The lines pushed after `mark` that are still kept. */
  since(mark: number): string[] {
    const kept = this.#total - this.#lines.length;
    return this.#lines.slice(Math.max(0, mark - kept));
  }

  /** The last `n` lines joined with newlines. */
  tail(n = 50): string {
    return this.#lines.slice(-n).join("\n");
  }
}
