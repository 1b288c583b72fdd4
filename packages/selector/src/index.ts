/**
 * `@edgeplane/selector`: Kubernetes-exact label selectors (parse, validate, match), job node
 * selectors (`match_labels`, `match_ids`, `match_expressions`) and `LabelIndex`, which selects
 * from a large node set without scanning it. Pure: no I/O, no timers.
 */

export type { LabelIndexStats, SelectOptions, SelectorLike } from "./label-index.js";
export { LabelIndex } from "./label-index.js";
export type {
  CompileNodeSelectorOptions,
  NodeLike,
  NodeSelector,
  NodeSelectorSpec,
} from "./node-selector.js";
export { compileNodeSelector } from "./node-selector.js";
export type { ParseSelectorOptions, Selector } from "./parse.js";
export { parseMatchExpressions, parseSelector } from "./parse.js";
export type { Labels, Operator, Requirement } from "./requirement.js";
export { formatRequirement, matchesRequirement, ownLabel } from "./requirement.js";
export {
  MAX_NAME_BYTES,
  MAX_PREFIX_BYTES,
  MAX_VALUE_BYTES,
  parseInt64,
  validateLabelKey,
  validateLabelValue,
} from "./validate.js";
