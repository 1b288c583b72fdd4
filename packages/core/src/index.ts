/**
 * `@edgeplane/core`: domain types, schemas, state tables, ids, clock and the error model.
 * No network or disk I/O lives here.
 */

export type { Clock } from "./clock.js";
export { systemClock } from "./clock.js";
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
export type { LogFields, Logger, LoggerOptions, LogLevel } from "./logger.js";
export { createLogger } from "./logger.js";
export { API_VERSION, EDGEPLANE_VERSION } from "./version.js";
