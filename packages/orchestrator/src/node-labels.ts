/**
 * Node labels: what an agent may send, what an operator may set, and how they merge.
 *
 * - The agent's own labels (its flags/config) and the labels it discovers (`edgeplane.io/arch`,
 *   `edgeplane.io/os`, ...) arrive with every registration; keys and values follow core's label
 *   rules (Kubernetes-exact).
 * - Operators set labels through the API. They are merged over the agent's own labels, except
 *   `edgeplane.io/` keys, which belong to the system: operators can neither set nor remove them.
 * - An operator label with an empty value, or named in `remove`, is removed (the proto's
 *   SetNodeLabels contract).
 */
import { EdgeplaneError, type ErrorDetail, validateLabelKey, validateLabelValue } from "@edgeplane/core";
import type { LabelMap } from "@edgeplane/store";

/** Keys under this prefix are set by agents (discovered) and the system, never by operators. */
export const SYSTEM_LABEL_PREFIX = "edgeplane.io/";
/** The most labels one node may carry from its agent, and from operators. */
export const MAX_NODE_LABELS = 64;

/** Whether a key belongs to the system. */
export function isSystemLabel(key: string): boolean {
  return key.startsWith(SYSTEM_LABEL_PREFIX);
}

/** The first problem of an agent's labels, as `{field, description}`; undefined when they are fine. */
export function agentLabelProblem(labels: Readonly<Record<string, string>>): ErrorDetail | undefined {
  const keys = Object.keys(labels);
  if (keys.length > MAX_NODE_LABELS)
    return {
      field: "labels",
      description: `has ${keys.length} labels; at most ${MAX_NODE_LABELS} are allowed`,
    };
  for (const key of keys) {
    const field = `labels[${JSON.stringify(key)}]`;
    const keyProblem = validateLabelKey(key);
    if (keyProblem !== undefined) return { field, description: `invalid key: ${keyProblem}` };
    const value = labels[key];
    if (typeof value !== "string") return { field, description: "the value must be a string" };
    const valueProblem = validateLabelValue(value);
    if (valueProblem !== undefined)
      return { field, description: `invalid value ${JSON.stringify(value)}: ${valueProblem}` };
  }
  return undefined;
}

/** An operator's label change: `labels` merged (an empty value removes), then `remove` removed. */
export interface LabelChange {
  readonly labels?: Readonly<Record<string, unknown>>;
  readonly remove?: readonly unknown[];
}

/**
 * Applies an operator's change to the current operator labels; `invalid_argument` listing every
 * bad field (system keys are refused with a message saying why).
 */
export function applyOperatorLabels(current: LabelMap, change: LabelChange): LabelMap {
  const details: ErrorDetail[] = [];
  const next: Record<string, string> = { ...current };
  const checkKey = (field: string, key: string): boolean => {
    const problem = validateLabelKey(key);
    if (problem !== undefined) {
      details.push({ field, description: `invalid key: ${problem}` });
      return false;
    }
    if (isSystemLabel(key)) {
      details.push({
        field,
        description: `keys under "${SYSTEM_LABEL_PREFIX}" are set by the agent and the system; operators cannot change them`,
      });
      return false;
    }
    return true;
  };
  for (const [key, value] of Object.entries(change.labels ?? {})) {
    const field = `labels[${JSON.stringify(key)}]`;
    if (!checkKey(field, key)) continue;
    if (typeof value !== "string") {
      details.push({ field, description: "the value must be a string (an empty string removes the label)" });
      continue;
    }
    const problem = validateLabelValue(value);
    if (problem !== undefined) {
      details.push({ field, description: `invalid value ${JSON.stringify(value)}: ${problem}` });
      continue;
    }
    if (value === "") delete next[key];
    else next[key] = value;
  }
  (change.remove ?? []).forEach((key, i) => {
    const field = `remove[${i}]`;
    if (typeof key !== "string") {
      details.push({ field, description: "must be a label key (a string)" });
      return;
    }
    if (checkKey(field, key)) delete next[key];
  });
  if (Object.keys(next).length > MAX_NODE_LABELS)
    details.push({
      field: "labels",
      description: `a node carries at most ${MAX_NODE_LABELS} operator labels`,
    });
  if (details.length > 0) {
    const first = details[0] as ErrorDetail;
    const more = details.length > 1 ? ` (and ${details.length - 1} more problem(s), see details)` : "";
    throw new EdgeplaneError("invalid_argument", `${first.field}: ${first.description}${more}`, { details });
  }
  return next;
}

/** The effective labels: the agent's own, with operator labels (never `edgeplane.io/` ones) over them. */
export function mergeLabels(agent: LabelMap, operator: LabelMap): LabelMap {
  const keys = Object.keys(operator);
  if (keys.length === 0) return agent;
  const out: Record<string, string> = { ...agent };
  for (const key of keys) if (!isSystemLabel(key)) out[key] = operator[key] as string;
  return out;
}

/** Whether two label maps hold the same pairs. */
export function sameLabels(a: LabelMap, b: LabelMap): boolean {
  if (a === b) return true;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k] || !Object.hasOwn(b, k)) return false;
  return true;
}
