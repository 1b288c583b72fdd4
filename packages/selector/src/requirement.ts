/**
 * Requirements (one `key op values` term of a selector) and how they match a label set.
 *
 * The match table is Kubernetes' `Requirement.Matches`:
 *
 * | operator          | key absent | key present with value v              |
 * |-------------------|------------|---------------------------------------|
 * | `=`, `==`, `in`   | false      | v is one of the values                |
 * | `!=`, `notin`     | **true**   | v is none of the values               |
 * | `exists`          | false      | true (also when v is "")              |
 * | `!`               | true       | false                                 |
 * | `>`, `<`          | false      | int64(v) compared; false if v not int |
 */
import { parseInt64 } from "./validate.js";

/** The operators of a requirement, spelled as they are written (`exists` and `!` have no values). */
export type Operator = "=" | "==" | "!=" | "in" | "notin" | "exists" | "!" | ">" | "<";

/** A label set: label key to value. Presence means the key is an own property, even with value "". */
export type Labels = Readonly<Record<string, string>>;

/**
 * One term of a selector. `values` holds one value for `=`, `==`, `!=`, `>` and `<`, a sorted,
 * de-duplicated non-empty set for `in`/`notin`, and nothing for `exists`/`!`.
 */
export interface Requirement {
  readonly key: string;
  readonly operator: Operator;
  readonly values: readonly string[];
}

/** A compiled requirement: one call per label set, no allocation. */
export type LabelPredicate = (labels: Labels) => boolean;

/**
 * Property names a plain object inherits (`constructor`, `toString`, `__proto__`, ...). A set
 * lookup, because `key in Object.prototype` interns every key it is asked about, which made
 * parsing and indexing measurably slower.
 */
const INHERITED: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));

/**
 * The value of label `key`, or `undefined` when absent. Only own properties with string values
 * are labels: keys that exist on `Object.prototype` (`constructor`, `toString`, ...) are valid
 * label keys and must not pick up inherited members, and an own `__proto__` (as `JSON.parse`
 * creates) is read through its descriptor because `labels.__proto__` is the prototype.
 */
export function ownLabel(labels: Labels, key: string): string | undefined {
  if (!INHERITED.has(key)) {
    const v = labels[key];
    return typeof v === "string" ? v : undefined;
  }
  if (!Object.hasOwn(labels, key)) return undefined;
  const v: unknown = key === "__proto__" ? Object.getOwnPropertyDescriptor(labels, key)?.value : labels[key];
  return typeof v === "string" ? v : undefined;
}

/** The keys of `labels` that are labels in the sense of {@link ownLabel}. */
export function labelKeys(labels: Labels): string[] {
  const keys = Object.keys(labels);
  for (const key of keys) {
    if (ownLabel(labels, key) === undefined) return keys.filter((k) => ownLabel(labels, k) !== undefined);
  }
  return keys;
}

/** Whether `labels` satisfy `req` (see the match table in this module's header). */
export function matchesRequirement(req: Requirement, labels: Labels): boolean {
  return compileRequirement(req)(labels);
}

/** Compiles `req` into a predicate; hot loops (linear scans, the index's fallback) use this. */
export function compileRequirement(req: Requirement): LabelPredicate {
  const { key, values } = req;
  // The common case is inlined: this closure is the linear-scan hot path.
  const get = INHERITED.has(key)
    ? (labels: Labels): string | undefined => ownLabel(labels, key)
    : (labels: Labels): string | undefined => {
        const v = labels[key];
        return typeof v === "string" ? v : undefined;
      };
  switch (req.operator) {
    case "=":
    case "==": {
      const want = values[0] ?? "";
      return (labels) => get(labels) === want;
    }
    case "!=": {
      const want = values[0] ?? "";
      return (labels) => get(labels) !== want;
    }
    case "in": {
      if (values.length === 1) {
        const want = values[0] ?? "";
        return (labels) => get(labels) === want;
      }
      const set = new Set(values);
      return (labels) => {
        const v = get(labels);
        return v !== undefined && set.has(v);
      };
    }
    case "notin": {
      const set = new Set(values);
      return (labels) => {
        const v = get(labels);
        return v === undefined || !set.has(v);
      };
    }
    case "exists":
      return (labels) => get(labels) !== undefined;
    case "!":
      return (labels) => get(labels) === undefined;
    case ">":
    case "<": {
      const bound = values.length === 1 ? parseInt64(values[0] ?? "") : undefined;
      if (bound === undefined) return () => false;
      const greater = req.operator === ">";
      return (labels) => {
        const v = get(labels);
        if (v === undefined) return false;
        return compareInt(v, bound, greater);
      };
    }
  }
}

/** `int64(v) > bound` (or `<`); false when `v` is not an int64 (Go `ParseInt` rules). */
function compareInt(v: string, bound: number | bigint, greater: boolean): boolean {
  const n = parseInt64(v);
  if (n === undefined) return false;
  return greater ? n > bound : n < bound;
}

/** Formats a requirement in Kubernetes' canonical spelling (`k in (a,b)`, `!k`, `k!=v`). */
export function formatRequirement(req: Requirement): string {
  switch (req.operator) {
    case "exists":
      return req.key;
    case "!":
      return `!${req.key}`;
    case "in":
    case "notin":
      return `${req.key} ${req.operator} (${req.values.join(",")})`;
    default:
      return `${req.key}${req.operator}${req.values[0] ?? ""}`;
  }
}
