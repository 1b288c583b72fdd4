/**
 * Label key and value rules (Kubernetes' `IsLabelKey` / `IsLabelValue`, byte for byte). They live
 * in `@edgeplane/core` because job labels, meta keys and node labels use them too; the selector
 * re-exports them so its own modules and users find them here.
 */
export {
  MAX_NAME_BYTES,
  MAX_PREFIX_BYTES,
  MAX_VALUE_BYTES,
  parseInt64,
  utf8Length,
  validateLabelKey,
  validateLabelValue,
} from "@edgeplane/core";
