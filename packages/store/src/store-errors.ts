/**
 * The failures a JobStore reports, built in one place so that the memory store and the Redis
 * store (whose Lua scripts return coded failures, mapped in `redis/scripts.ts`) say exactly the
 * same thing. Messages say what happened and what to do next.
 */
import { EdgeplaneError, type JobStateType } from "@edgeplane/core";

/** `not_found`: no job has this id. */
export function jobNotFound(id: string): EdgeplaneError {
  return new EdgeplaneError("not_found", `job ${id} not found`, { metadata: { job_id: id } });
}

/**
 * `aborted`: a check-and-set on the version lost. `expected` 0 means "must not exist yet";
 * `currentVersion` 0 means the job does not exist.
 */
export function versionConflict(
  expected: number,
  currentVersion: number,
  currentRevision: number,
): EdgeplaneError {
  const want =
    expected === 0 ? "expected no job with this name yet (version 0)" : `expected version ${expected}`;
  const have = currentVersion === 0 ? "the job does not exist" : `the job is at version ${currentVersion}`;
  return new EdgeplaneError("aborted", `${want} but ${have}: re-read it and retry`, {
    metadata: { current_version: currentVersion, current_revision: currentRevision },
  });
}

/** `aborted`: a check-and-set on the revision lost. */
export function revisionConflict(
  expected: number,
  currentVersion: number,
  currentRevision: number,
): EdgeplaneError {
  const have = currentVersion === 0 ? "the job does not exist" : `the job is at revision ${currentRevision}`;
  return new EdgeplaneError("aborted", `expected revision ${expected} but ${have}: re-read it and retry`, {
    metadata: { current_version: currentVersion, current_revision: currentRevision },
  });
}

/** `failed_precondition`: the job is deleted, so it cannot change any more. */
export function jobDeleted(id: string): EdgeplaneError {
  return new EdgeplaneError(
    "failed_precondition",
    `job ${id} is deleted and cannot change; submit the spec again to create a new job`,
    { metadata: { job_id: id, current_state: "deleted" } },
  );
}

/** `failed_precondition`: the job's state is not one the write may start from. */
export function illegalTransition(
  id: string,
  current: JobStateType,
  target: JobStateType,
  allowed: readonly string[],
): EdgeplaneError {
  return new EdgeplaneError(
    "failed_precondition",
    `job ${id} is ${current} and cannot become ${target} (only from: ${allowed.join(", ") || "none"})`,
    { metadata: { job_id: id, current_state: current, target_state: target } },
  );
}

/** `already_exists`: the id a create would use belongs to another job (ids are never reused). */
export function idTaken(id: string): EdgeplaneError {
  return new EdgeplaneError("already_exists", `job id ${id} is already taken; generate a new id`, {
    metadata: { job_id: id },
  });
}
