/**
 * A job's node selector (`match_labels`, `match_ids`, `match_expressions`) compiled once, at
 * submit time, into a matcher. Everything is ANDed; a selector with no constraint at all matches
 * every node. All problems of all three fields are reported in one `invalid_argument` error, so a
 * user fixes a spec in one round trip.
 */
import { collectMatchExpressions, type FieldProblem, fieldProblemsError } from "./parse.js";
import {
  compileRequirement,
  formatRequirement,
  type LabelPredicate,
  type Labels,
  type Requirement,
} from "./requirement.js";
import { validateLabelKey, validateLabelValue } from "./validate.js";

/** The selector of a job spec, as in the API (proto field names). */
export interface NodeSelectorSpec {
  /** Every pair must be present with an equal value (`{"x": ""}` requires `x` with value ""). */
  readonly match_labels?: Labels | undefined;
  /** The node's id must be one of these; an empty list means no constraint. */
  readonly match_ids?: readonly string[] | undefined;
  /** Selector expressions (Kubernetes syntax, `>`/`<` too); all their requirements are ANDed. */
  readonly match_expressions?: readonly string[] | undefined;
}

/** What a selector looks at on a node. */
export interface NodeLike {
  readonly id: string;
  readonly labels: Labels;
}

/** A compiled node selector. */
export interface NodeSelector {
  /** `match_labels` as `=` requirements, then the requirements of every expression. */
  readonly requirements: readonly Requirement[];
  /** The ids of `match_ids`, or `undefined` when ids do not constrain the selection. */
  readonly ids: readonly string[] | undefined;
  /** True when there is no constraint at all: every node matches. */
  readonly matchesEverything: boolean;
  /** Whether `node` satisfies every constraint. */
  matches(node: NodeLike): boolean;
  /** A readable spelling, e.g. `id in (n1,n2),region=eu-west,!maintenance`, for logs and messages. */
  toString(): string;
}

/** Options of {@link compileNodeSelector}. */
export interface CompileNodeSelectorOptions {
  /** A path prepended to the field names in errors, e.g. `spec.selector`. */
  readonly path?: string;
}

/**
 * Validates and compiles a job's node selector.
 *
 * @throws EdgeplaneError `invalid_argument` listing every problem in `details`, with fields such as
 *   `match_expressions[2]`, `match_labels["bad key"]` and `match_ids[0]`.
 * @example compileNodeSelector({ match_labels: { arch: "arm64" }, match_expressions: ["cpu_cores>4"] })
 */
export function compileNodeSelector(
  spec: NodeSelectorSpec,
  options: CompileNodeSelectorOptions = {},
): NodeSelector {
  const prefix = options.path ? `${options.path}.` : "";
  const problems: FieldProblem[] = [];
  const requirements: Requirement[] = [];

  for (const [key, value] of Object.entries(spec.match_labels ?? {})) {
    const field = `${prefix}match_labels[${JSON.stringify(key)}]`;
    const keyProblem = validateLabelKey(key);
    if (keyProblem !== undefined) {
      problems.push({ detail: { field, description: `invalid key: ${keyProblem}` } });
      continue;
    }
    if (typeof value !== "string") {
      problems.push({ detail: { field, description: "the value must be a string" } });
      continue;
    }
    const valueProblem = validateLabelValue(value);
    if (valueProblem !== undefined) {
      problems.push({
        detail: { field, description: `invalid value ${JSON.stringify(value)}: ${valueProblem}` },
      });
      continue;
    }
    requirements.push({ key, operator: "=", values: [value] });
  }

  const ids = spec.match_ids ?? [];
  ids.forEach((id, i) => {
    if (typeof id !== "string" || id.length === 0) {
      problems.push({
        detail: { field: `${prefix}match_ids[${i}]`, description: "a node id must be a non-empty string" },
      });
    }
  });

  requirements.push(
    ...collectMatchExpressions(spec.match_expressions ?? [], `${prefix}match_expressions`, problems),
  );
  if (problems.length > 0) throw fieldProblemsError(problems);
  return new CompiledNodeSelector(requirements, ids.length > 0 ? ids : undefined);
}

class CompiledNodeSelector implements NodeSelector {
  readonly requirements: readonly Requirement[];
  readonly ids: readonly string[] | undefined;
  readonly matchesEverything: boolean;
  readonly #predicates: readonly LabelPredicate[];
  readonly #idSet: ReadonlySet<string> | undefined;

  constructor(requirements: readonly Requirement[], ids: readonly string[] | undefined) {
    this.requirements = [...requirements];
    this.ids = ids === undefined ? undefined : [...ids];
    this.#idSet = ids === undefined ? undefined : new Set(ids);
    this.#predicates = requirements.map(compileRequirement);
    this.matchesEverything = ids === undefined && requirements.length === 0;
  }

  matches(node: NodeLike): boolean {
    if (this.#idSet !== undefined && !this.#idSet.has(node.id)) return false;
    const labels = node.labels;
    for (const p of this.#predicates) if (!p(labels)) return false;
    return true;
  }

  toString(): string {
    const parts = this.requirements.map(formatRequirement);
    if (this.ids !== undefined) parts.unshift(`id in (${this.ids.join(",")})`);
    return parts.join(",");
  }
}
