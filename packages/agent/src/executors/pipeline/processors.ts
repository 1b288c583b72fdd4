/**
 * Pipeline processors: JSONata expressions compiled once per execution (with the guardrails of
 * `compileJsonata`), evaluated per message.
 *
 * - `mapping`: the result replaces the message; no result (`undefined`) filters it out.
 * - `filter`: the message is kept when the result is true in JSONata's `$boolean` sense.
 *
 * jsonata 2 evaluates asynchronously (`await expr.evaluate(msg)`): every message costs at least one
 * promise per processor. That is the price of its async functions; the benchmark
 * (`npm run bench -- pipeline`) measures the runtime against a plain loop doing only that.
 */
import { compileJsonata, type JsonataExpression, type PipelineProcessorConfig } from "@edgeplane/core";

/** A processor ready to run. */
export interface CompiledProcessor {
  readonly kind: "mapping" | "filter";
  /** `processors[0] (mapping)`: how logs name it. */
  readonly label: string;
  readonly expression: JsonataExpression;
}

/** Compiles every processor; throws jsonata's error (with its position) for an invalid expression. */
export function compileProcessors(processors: readonly PipelineProcessorConfig[]): CompiledProcessor[] {
  return processors.map((p, i) => ({
    kind: p.kind,
    label: `processors[${i}] (${p.kind})`,
    expression: compileJsonata(p.expression),
  }));
}

/** JSONata's `$boolean`: what a filter's result means. */
export function jsonataTruthy(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === "boolean") return value;
  if (typeof value === "number") return value !== 0 && !Number.isNaN(value);
  if (typeof value === "string") return value.length > 0;
  if (typeof value === "function") return false;
  if (Array.isArray(value)) return value.some(jsonataTruthy);
  if (typeof value === "object") return Object.keys(value).length > 0;
  return Boolean(value);
}
