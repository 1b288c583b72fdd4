/**
 * `@edgeplane/core`: domain types, schemas, state tables, ids, clock and the error model.
 * No network or disk I/O lives here.
 */

export type { Clock } from "./clock.js";
export { systemClock } from "./clock.js";
export { formatDuration, parseDuration } from "./duration.js";
export type { EdgeplaneErrorOptions, ErrorCode, ErrorDetail, GrpcStatusLike } from "./errors.js";
export {
  EdgeplaneError,
  ERROR_CODES,
  ERROR_METADATA_KEY,
  fromGrpcStatus,
  invalidArgument,
  isEdgeplaneError,
  toGrpcStatus,
} from "./errors.js";
export { newId } from "./ids.js";
export type {
  ConfigFileConfig,
  ConfigJobConfig,
  ExecJobConfig,
  JobConfigByType,
  JsonataExpression,
  PipelineInputConfig,
  PipelineJobConfig,
  PipelineOutputConfig,
  PipelineProcessorConfig,
} from "./job-config.js";
export {
  compileJsonata,
  dataSubjectProblem,
  describeJsonataError,
  JOB_CONFIG_LIMITS,
  JSONATA_LIMITS,
  parseJobConfig,
  parseOctalMode,
  validateJobConfig,
} from "./job-config.js";
export type { JobStateType, JobType } from "./job-state.js";
export {
  allowedFrom,
  canTransition,
  isJobState,
  isJobType,
  isTerminalJobState,
  JOB_STATES,
  JOB_TRANSITIONS,
  JOB_TYPES,
} from "./job-state.js";
export {
  MAX_NAME_BYTES,
  MAX_PREFIX_BYTES,
  MAX_VALUE_BYTES,
  parseInt64,
  utf8Length,
  validateLabelKey,
  validateLabelValue,
} from "./labels.js";
export type { LogFields, Logger, LoggerOptions, LogLevel } from "./logger.js";
export { createLogger } from "./logger.js";
export type { JobSpec, RestartPolicy, SelectorSyntax, Strategy } from "./spec.js";
export {
  canonicalize,
  formatPath,
  MAX_CONFIG_BYTES,
  RESERVED_META_PREFIX,
  RESTART_POLICIES,
  SPEC_DEFAULTS,
  STRATEGIES,
  specError,
  validateJobSpec,
  waveSize,
} from "./spec.js";
export { API_VERSION, EDGEPLANE_VERSION } from "./version.js";
