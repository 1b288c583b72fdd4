/**
 * Small pieces the built-in executors share: refusing an execution with a clear exception, a
 * bounded execution log for command output, and turning a command's stdout into a query result.
 */
import type { JsonValue } from "@bufbuild/protobuf";
import type {
  ExecutionContext,
  ExecutionHandle,
  ExecutionLogLevel,
  ExecutionLogStream,
} from "../executor.js";

/**
 * Ends the execution in `error` with `exception` at once (a refusal by agent.yaml, an invalid
 * config) and returns a handle with nothing to stop.
 */
export function failedHandle(ctx: ExecutionContext, exception: string): ExecutionHandle {
  ctx.log("ERROR", "agent", exception);
  ctx.emit({ state: "error", exception });
  return { stop: async () => {}, status: () => ({}) };
}

/** Limits of the command output an execution ships as log lines. */
export const LOG_BUDGET = { lines: 10_000, bytes: 1024 * 1024 } as const;

/**
 * Writes command output to the execution log until a budget is used up, then says so once: a
 * command printing gigabytes must not flood the link to the control plane.
 */
export class LogBudget {
  readonly #ctx: ExecutionContext;
  #lines = 0;
  #bytes = 0;
  #exhausted = false;

  constructor(ctx: ExecutionContext) {
    this.#ctx = ctx;
  }

  log(level: ExecutionLogLevel, stream: ExecutionLogStream, text: string): void {
    if (this.#exhausted) return;
    this.#lines++;
    this.#bytes += text.length;
    if (this.#lines > LOG_BUDGET.lines || this.#bytes > LOG_BUDGET.bytes) {
      this.#exhausted = true;
      this.#ctx.log(
        "WARN",
        "agent",
        `output beyond ${LOG_BUDGET.lines} lines or ${LOG_BUDGET.bytes} bytes is not logged (a query's stdout still counts toward its result)`,
      );
      return;
    }
    this.#ctx.log(level, stream, text);
  }
}

/** A query's result from its captured stdout. */
export interface QueryResult {
  readonly result: JsonValue;
  readonly resultTruncated: boolean;
  readonly resultBytes: number;
}

/**
 * The result of a query: stdout parsed as JSON when it is JSON (and complete), else the text
 * without its final newline. `totalBytes` beyond `captured` means it was cut at the cap.
 */
export function queryResult(captured: Buffer, totalBytes: number): QueryResult {
  const truncated = totalBytes > captured.length;
  let text = captured.toString("utf8");
  if (truncated) text = text.replace(/\uFFFD+$/, ""); // a character cut in half at the cap
  if (!truncated) {
    const trimmed = text.trim();
    if (trimmed !== "") {
      try {
        return { result: JSON.parse(trimmed) as JsonValue, resultTruncated: false, resultBytes: totalBytes };
      } catch {
        // not JSON: the text it is
      }
    }
  }
  if (text.endsWith("\n")) text = text.slice(0, text.endsWith("\r\n") ? -2 : -1);
  return { result: text, resultTruncated: truncated, resultBytes: totalBytes };
}
