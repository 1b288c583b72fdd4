/**
 * The coded failures of the Lua scripts and the ONE table that turns them into
 * {@link EdgeplaneError}s (like bullmq's `error-code.ts`). A script that refuses a write returns
 * `{code, ...args}` with a negative code instead of raising a Lua error, so a refusal is data,
 * never confused with a script bug (which surfaces as `internal`).
 */
import { EdgeplaneError, isJobState, type JobStateType } from "@edgeplane/core";
import { fencedWrite } from "../deployments/codec.js";
import { DEPLOYMENT_FAILURES } from "../deployments/lua.js";
import {
  idTaken,
  illegalTransition,
  jobDeleted,
  jobNotFound,
  revisionConflict,
  versionConflict,
} from "../store-errors.js";

/** The failure codes, one line each: what the script found. */
export const FAILURE_CODES = {
  /** `{-1, id}`: no record with this id. */
  NOT_FOUND: -1,
  /** `{-2, expected, currentVersion, currentRevision}`: the version check-and-set lost. */
  VERSION_CONFLICT: -2,
  /** `{-3, expected, currentVersion, currentRevision}`: the revision check-and-set lost. */
  REVISION_CONFLICT: -3,
  /** `{-4, id}`: the job is deleted. */
  DELETED: -4,
  /** `{-5, id, currentState, targetState, allowedCsv}`: the state guard refused. */
  ILLEGAL_TRANSITION: -5,
  /** `{-6, id}`: a create's new id is already used by another job. */
  ID_TAKEN: -6,
  /**
   * `{-10, currentEpoch or "", epoch}`: the write carries a leader epoch that is not the lease's
   * (the same code and Lua `fenceFailure` as the deployment store).
   */
  FENCED: DEPLOYMENT_FAILURES.FENCED,
} as const;

/** `local E_NOT_FOUND = -1` ..., prepended to every script. */
export const LUA_FAILURES = Object.entries(FAILURE_CODES)
  .map(([name, code]) => `local E_${name} = ${code}`)
  .join("\n");

const num = (v: unknown): number => Number(v);
const str = (v: unknown): string => String(v);
const state = (v: unknown): JobStateType => {
  const s = String(v);
  return isJobState(s) ? s : "pending";
};

/** The one mapping of script failures to errors. */
const FAILURES: Record<number, (args: readonly unknown[]) => EdgeplaneError> = {
  [FAILURE_CODES.NOT_FOUND]: ([id]) => jobNotFound(str(id)),
  [FAILURE_CODES.VERSION_CONFLICT]: ([want, v, r]) => versionConflict(num(want), num(v), num(r)),
  [FAILURE_CODES.REVISION_CONFLICT]: ([want, v, r]) => revisionConflict(num(want), num(v), num(r)),
  [FAILURE_CODES.DELETED]: ([id]) => jobDeleted(str(id)),
  [FAILURE_CODES.ILLEGAL_TRANSITION]: ([id, from, to, allowed]) =>
    illegalTransition(str(id), state(from), state(to), str(allowed).split(",").filter(Boolean)),
  [FAILURE_CODES.ID_TAKEN]: ([id]) => idTaken(str(id)),
  [FAILURE_CODES.FENCED]: ([current, epoch]) =>
    fencedWrite(num(epoch), current === "" || current == null ? undefined : str(current)),
};

/** The error a script reply stands for, or undefined when the reply is a success (`{1, ...}`). */
export function failureOf(reply: readonly unknown[]): EdgeplaneError | undefined {
  const code = reply[0];
  if (typeof code !== "number" || code >= 0) return undefined;
  const build = FAILURES[code];
  if (build === undefined)
    throw new EdgeplaneError("internal", `unknown job store script failure code ${code}`);
  return build(reply.slice(1));
}
