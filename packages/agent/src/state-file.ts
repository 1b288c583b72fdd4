/**
 * What the agent has applied, persisted in `<data-dir>/state.json` so that a restart neither loses
 * running work nor re-runs a finished run-once assignment.
 *
 * Written atomically: a temp file in the same directory, fsync, rename over the old file, fsync
 * of the directory. A crash at any point leaves either the old or the new file, never a torn one.
 * Assignments and statuses are stored in their protobuf JSON form (snake_case proto field names),
 * so the file is readable with `jq` when debugging a node.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import {
  type Assignment,
  AssignmentSchema,
  type ExecutionStatus,
  ExecutionStatusSchema,
} from "@edgeplane/api";
import { EdgeplaneError } from "@edgeplane/core";

/** The file name under the data dir. */
export const STATE_FILE = "state.json";

/** The format version written in the file; a newer one is refused rather than misread. */
export const STATE_FORMAT = 1;

/** Proto field names (`execution_id`), as everywhere in edgeplane's JSON. */
const JSON_OPTIONS = { useProtoFieldName: true } as const;

/** What the agent persists. */
export interface PersistedState {
  readonly nodeId: string;
  /** The desired-state revision applied last (0: none). */
  readonly appliedRevision: number;
  /** The assignment set of that revision. */
  readonly assignments: readonly Assignment[];
  /** Final statuses of run-once executions, by execution id: these never run again. */
  readonly finished: ReadonlyMap<string, ExecutionStatus>;
  /** How often each execution was started on this node (a run-once one with no final status was interrupted). */
  readonly attempts: ReadonlyMap<string, number>;
  /**
   * Executions that failed and wait for their next attempt (restart policy `on-failure` or
   * `always`), with the time (ms since the epoch) the retry was due. A restart starts them at once
   * as attempt + 1. Absent in files of older agents (none pending).
   */
  readonly retries?: ReadonlyMap<string, number>;
}

/** The path of the state file under `dataDir`. */
export function stateFilePath(dataDir: string): string {
  return join(dataDir, STATE_FILE);
}

/** Serializes a state to the file's JSON text. */
export function encodeState(state: PersistedState, savedAtMs: number): string {
  const finished: Record<string, JsonValue> = {};
  for (const [id, status] of state.finished)
    finished[id] = toJson(ExecutionStatusSchema, status, JSON_OPTIONS);
  const doc = {
    format: STATE_FORMAT,
    node_id: state.nodeId,
    applied_revision: state.appliedRevision,
    saved_at: new Date(savedAtMs).toISOString(),
    assignments: state.assignments.map((a) => toJson(AssignmentSchema, a, JSON_OPTIONS)),
    finished,
    attempts: Object.fromEntries(state.attempts),
    retries: Object.fromEntries(
      [...(state.retries ?? [])].map(([id, ms]) => [id, new Date(ms).toISOString()] as const),
    ),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Parses the file's JSON text; `failed_precondition` naming the file when it cannot be read. */
export function decodeState(text: string, file: string): PersistedState {
  const bad = (why: string, cause?: unknown): EdgeplaneError =>
    new EdgeplaneError(
      "failed_precondition",
      `${file}: ${why}; the agent will not guess what it had applied. Move the file aside to start ` +
        "with an empty state (finished run-once assignments may then run again)",
      { cause },
    );
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw bad(`is not JSON (${(err as Error).message})`, err);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw bad("is not a JSON object");
  const d = doc as Record<string, unknown>;
  if (d.format !== STATE_FORMAT) {
    throw bad(`has format ${JSON.stringify(d.format)}, this agent reads format ${STATE_FORMAT}`);
  }
  if (typeof d.node_id !== "string") throw bad("has no node_id");
  const revision = d.applied_revision;
  if (typeof revision !== "number" || !Number.isInteger(revision) || revision < 0) {
    throw bad("has no valid applied_revision");
  }
  try {
    const assignments = (Array.isArray(d.assignments) ? d.assignments : []).map((a) =>
      fromJson(AssignmentSchema, a as JsonValue),
    );
    const finished = new Map<string, ExecutionStatus>();
    for (const [id, s] of Object.entries((d.finished ?? {}) as Record<string, JsonValue>)) {
      finished.set(id, fromJson(ExecutionStatusSchema, s));
    }
    const attempts = new Map<string, number>();
    for (const [id, n] of Object.entries((d.attempts ?? {}) as Record<string, unknown>)) {
      if (typeof n === "number" && Number.isInteger(n) && n >= 0) attempts.set(id, n);
    }
    const retries = new Map<string, number>();
    for (const [id, at] of Object.entries((d.retries ?? {}) as Record<string, unknown>)) {
      const ms = typeof at === "string" ? Date.parse(at) : Number.NaN;
      if (Number.isFinite(ms)) retries.set(id, ms);
    }
    return { nodeId: d.node_id, appliedRevision: revision, assignments, finished, attempts, retries };
  } catch (err) {
    throw bad(`holds an invalid assignment or status (${(err as Error).message})`, err);
  }
}

/** Reads the state of `dataDir`; `undefined` when there is none yet (a new node). */
export async function loadState(dataDir: string): Promise<PersistedState | undefined> {
  const file = stateFilePath(dataDir);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new EdgeplaneError("failed_precondition", `cannot read ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return decodeState(text, file);
}

/** Writes `state` atomically (temp file + fsync + rename + directory fsync). */
export async function saveState(dataDir: string, state: PersistedState, savedAtMs: number): Promise<void> {
  await writeFileAtomic(stateFilePath(dataDir), encodeState(state, savedAtMs), 0o600);
}

/**
 * Writes `data` to `file` atomically with mode `mode`: readers see the old content or the new,
 * never a mix, even across a power cut (the data and the rename are both fsynced).
 */
export async function writeFileAtomic(file: string, data: string, mode: number): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fh = await open(tmp, "w", mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw new EdgeplaneError("unavailable", `cannot write ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  // The rename is durable only once the directory entry is.
  await fsyncDir(dir);
}

/**
 * Fsyncs directory `dir`, so that renames and new entries in it survive a power cut. Best effort:
 * some platforms cannot fsync a directory (EISDIR/EPERM); a rename is still atomic there.
 */
export async function fsyncDir(dir: string): Promise<void> {
  try {
    const dh = await open(dir, "r");
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    // not possible on every platform; the rename is atomic anyway
  }
}
