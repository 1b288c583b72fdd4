/**
 * The `config` executor (job type `config`): writes the files of a job's config under agent.yaml
 * `executors.config.root_dir`, atomically, keeping what they held before; then runs an optional
 * reload command that `reload_allow` allows.
 *
 * 1. Every path is resolved under the real `root_dir`; a path through a symbolic link, or onto
 *    something that is not a regular file, is refused (no escape from the root).
 * 2. Unchanged files (same content, same mode) are left alone; if nothing changed, no reload runs.
 * 3. The previous content of every changed file is kept in
 *    `<data-dir>/config-backups/<job_id>/<time>-<execution_id>/` (`manifest.json` + `files/`, mode
 *    0600; the newest 10 per job are kept), for {@link restoreConfigBackup} or an operator.
 * 4. New contents are written to temp files next to their targets (fsync, mode set exactly), then
 *    renamed over them one by one; a failed rename puts back the files already renamed.
 * 5. The reload command runs (no shell, own process group, in `root_dir`). If it fails or is
 *    stopped, the previous contents are restored and the execution ends in `error`.
 *
 * A rollback to an older job version deploys that version's config, which writes the old content
 * again: the normal path. The backups are for recovering by hand (or with `restoreConfigBackup`).
 */
import { randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import {
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  unlink,
  writeFile,
} from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Assignment } from "@edgeplane/api";
import { type ConfigJobConfig, EdgeplaneError, parseJobConfig } from "@edgeplane/core";
import type { ConfigExecutorConfig } from "../config.js";
import type { ExecutionContext, ExecutionHandle, Executor } from "../executor.js";
import { fsyncDir } from "../state-file.js";
import { describeOutcome } from "./exec.js";
import { commandEnv, matchCommand, type ResolvedCommandRule, resolveCommandRules } from "./policy.js";
import { runCommand } from "./process.js";
import { failedHandle, LogBudget } from "./shared.js";

/** Options of {@link createConfigExecutor}. */
export interface ConfigExecutorOptions {
  /** agent.yaml `executors.config`. */
  readonly config: ConfigExecutorConfig;
  /** Where previous contents are kept (`<data-dir>/config-backups`). */
  readonly backupDir: string;
  /** The agent's environment: PATH resolves bare rule names (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv;
  /** Backups kept per job (default 10). */
  readonly keepBackups?: number;
}

/** One file of a backup's manifest. */
export interface ConfigBackupEntry {
  /** Relative to root_dir. */
  readonly path: string;
  /** Whether the file existed before (if not, restoring removes it). */
  readonly existed: boolean;
  /** Its permission bits before. */
  readonly mode: number;
}

/** `manifest.json` of one backup. */
export interface ConfigBackupManifest {
  readonly format: 1;
  readonly job_id: string;
  readonly job_version: number;
  readonly execution_id: string;
  readonly time: string;
  readonly root_dir: string;
  readonly files: readonly ConfigBackupEntry[];
}

const MANIFEST = "manifest.json";

/** A job id as one directory name. */
function safeName(id: string): string {
  return id.replace(/[^A-Za-z0-9_.-]/g, "_").replace(/^\.+/, "_") || "_";
}

function pathError(rel: string, why: string): EdgeplaneError {
  return new EdgeplaneError("failed_precondition", `files path ${JSON.stringify(rel)}: ${why}`);
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Resolves relative `rel` under real directory `root`: every existing parent must be a real
 * directory (not a link), the target a regular file or nothing. Returns the target and the
 * parents still to create.
 */
async function resolveUnder(root: string, rel: string): Promise<{ target: string; missing: string[] }> {
  const segs = rel.split("/");
  if (segs.some((s) => s === "" || s === "." || s === "..")) throw pathError(rel, "must stay under root_dir");
  let cur = root;
  const missing: string[] = [];
  for (const seg of segs.slice(0, -1)) {
    cur = join(cur, seg);
    if (missing.length > 0) {
      missing.push(cur);
      continue;
    }
    const st = await lstatOrUndefined(cur);
    if (!st) missing.push(cur);
    else if (st.isSymbolicLink())
      throw pathError(rel, `${cur} is a symbolic link; config jobs never write through links`);
    else if (!st.isDirectory()) throw pathError(rel, `${cur} is not a directory`);
  }
  const target = join(root, rel);
  if (!target.startsWith(`${root}/`)) throw pathError(rel, "must stay under root_dir");
  const st = await lstatOrUndefined(target);
  if (st?.isSymbolicLink())
    throw pathError(rel, `${target} is a symbolic link; config jobs never write through links`);
  if (st && !st.isFile()) throw pathError(rel, `${target} is not a regular file`);
  return { target, missing };
}

/** Writes `content` to a temp file next to `target` with exactly `mode`, fsynced; returns its path. */
async function stage(target: string, content: string | Buffer, mode: number): Promise<string> {
  const tmp = join(dirname(target), `.${basename(target)}.edgeplane-${randomBytes(4).toString("hex")}.tmp`);
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.writeFile(content);
    await fh.chmod(mode); // exactly, whatever the umask
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  return tmp;
}

/** Writes one file atomically (temp + fsync + rename + directory fsync). */
async function writeAtomic(target: string, content: string | Buffer, mode: number): Promise<void> {
  const tmp = await stage(target, content, mode);
  try {
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(target));
}

interface PlannedFile {
  readonly rel: string;
  readonly target: string;
  readonly missing: readonly string[];
  readonly content: string;
  readonly mode: number;
  readonly previous: Buffer | undefined;
  readonly previousMode: number;
  readonly changed: boolean;
}

/** What {@link applyConfigFiles} did. */
export interface AppliedConfig {
  readonly changed: readonly string[];
  readonly unchanged: readonly string[];
  /** The backup directory of this run (undefined when nothing changed). */
  readonly backup: string | undefined;
  /** Puts the previous contents back (removes files that did not exist). */
  restore(): Promise<void>;
}

/** Options of {@link applyConfigFiles}. */
export interface ApplyConfigFilesOptions {
  readonly rootDir: string;
  readonly files: ConfigJobConfig["files"];
  /** `<data-dir>/config-backups`. */
  readonly backupDir: string;
  readonly jobId: string;
  readonly jobVersion: number;
  readonly executionId: string;
  readonly keepBackups?: number;
  readonly now?: () => number;
}

/** Writes the files of a config job (steps 1-4 of the module comment). */
export async function applyConfigFiles(o: ApplyConfigFilesOptions): Promise<AppliedConfig> {
  let root: string;
  try {
    root = await realpath(o.rootDir);
  } catch {
    throw new EdgeplaneError(
      "failed_precondition",
      `agent.yaml executors.config.root_dir ${o.rootDir} does not exist on this node`,
    );
  }
  const planned: PlannedFile[] = [];
  for (const f of o.files) {
    const { target, missing } = await resolveUnder(root, f.path);
    const st = await lstatOrUndefined(target);
    const previous = st ? await readFile(target) : undefined;
    const previousMode = st ? st.mode & 0o777 : 0o644;
    const mode = f.mode ?? previousMode;
    const changed = !previous?.equals(Buffer.from(f.content, "utf8")) || mode !== previousMode;
    planned.push({ rel: f.path, target, missing, content: f.content, mode, previous, previousMode, changed });
  }
  const changed = planned.filter((p) => p.changed);
  const restore = async (files: readonly PlannedFile[]): Promise<void> => {
    for (const p of files) {
      if (p.previous) await writeAtomic(p.target, p.previous, p.previousMode);
      else await unlink(p.target).catch(() => {});
    }
  };
  if (changed.length === 0) {
    return { changed: [], unchanged: planned.map((p) => p.rel), backup: undefined, restore: async () => {} };
  }

  // Keep what was there, before touching anything.
  const now = new Date(o.now?.() ?? Date.now());
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  const jobDir = join(o.backupDir, safeName(o.jobId));
  const backup = join(jobDir, `${stamp}-${safeName(o.executionId)}`);
  await mkdir(join(backup, "files"), { recursive: true, mode: 0o700 });
  for (const p of changed) {
    if (!p.previous) continue;
    const copy = join(backup, "files", p.rel);
    await mkdir(dirname(copy), { recursive: true, mode: 0o700 });
    await writeFile(copy, p.previous, { mode: 0o600 });
  }
  const manifest: ConfigBackupManifest = {
    format: 1,
    job_id: o.jobId,
    job_version: o.jobVersion,
    execution_id: o.executionId,
    time: now.toISOString(),
    root_dir: root,
    files: changed.map((p) => ({ path: p.rel, existed: p.previous !== undefined, mode: p.previousMode })),
  };
  await writeFile(join(backup, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
  await pruneBackups(jobDir, o.keepBackups ?? 10);

  // Stage every file, then rename them over their targets.
  const staged: Array<{ file: PlannedFile; tmp: string }> = [];
  try {
    for (const p of changed) {
      for (const dir of p.missing) {
        await mkdir(dir, { mode: 0o755 }).catch(async (err: NodeJS.ErrnoException) => {
          if (err.code !== "EEXIST") throw err;
          const st = await lstat(dir);
          if (st.isSymbolicLink() || !st.isDirectory()) throw pathError(p.rel, `${dir} is not a directory`);
        });
      }
      staged.push({ file: p, tmp: await stage(p.target, p.content, p.mode) });
    }
  } catch (err) {
    await Promise.allSettled(staged.map((s) => rm(s.tmp, { force: true })));
    throw err;
  }
  const committed: PlannedFile[] = [];
  try {
    for (const s of staged) {
      await rename(s.tmp, s.file.target);
      committed.push(s.file);
    }
  } catch (err) {
    await Promise.allSettled(staged.map((s) => rm(s.tmp, { force: true })));
    await restore(committed).catch(() => {});
    throw err;
  }
  for (const dir of new Set(committed.map((p) => dirname(p.target)))) await fsyncDir(dir);
  return {
    changed: changed.map((p) => p.rel),
    unchanged: planned.filter((p) => !p.changed).map((p) => p.rel),
    backup,
    restore: () => restore(changed),
  };
}

async function pruneBackups(jobDir: string, keep: number): Promise<void> {
  const names = (await readdir(jobDir).catch(() => [] as string[])).sort();
  for (const old of names.slice(0, Math.max(0, names.length - keep))) {
    await rm(join(jobDir, old), { recursive: true, force: true }).catch(() => {});
  }
}

/** Options of {@link restoreConfigBackup}. */
export interface RestoreConfigBackupOptions {
  /** `<data-dir>/config-backups`. */
  readonly backupDir: string;
  /** agent.yaml `executors.config.root_dir`. */
  readonly rootDir: string;
  readonly jobId: string;
  /** The backup taken by this execution; the newest of the job when absent. */
  readonly executionId?: string;
}

/**
 * Puts back the contents a config job's execution replaced (the newest backup of `jobId`, or the
 * one `executionId` took): files that existed get their old content and mode, files it created are
 * removed. Returns the restored paths (relative to root_dir). For operators and tooling; a normal
 * rollback simply deploys the old job version.
 */
export async function restoreConfigBackup(o: RestoreConfigBackupOptions): Promise<string[]> {
  const jobDir = join(o.backupDir, safeName(o.jobId));
  const names = (await readdir(jobDir).catch(() => [] as string[])).sort();
  const name = o.executionId
    ? names.filter((n) => n.endsWith(`-${safeName(o.executionId ?? "")}`)).at(-1)
    : names.at(-1);
  if (!name) {
    throw new EdgeplaneError(
      "not_found",
      `no config backup of job ${o.jobId}${o.executionId ? ` by execution ${o.executionId}` : ""} in ${jobDir}`,
    );
  }
  const dir = join(jobDir, name);
  const manifest = JSON.parse(await readFile(join(dir, MANIFEST), "utf8")) as ConfigBackupManifest;
  const root = await realpath(o.rootDir);
  const restored: string[] = [];
  for (const f of manifest.files) {
    const { target } = await resolveUnder(root, f.path);
    if (f.existed) await writeAtomic(target, await readFile(join(dir, "files", f.path)), f.mode);
    else await unlink(target).catch(() => {});
    restored.push(f.path);
  }
  return restored;
}

/**
 * Creates the config executor; resolves `reload_allow`'s bare command names on PATH now (throws
 * `invalid_argument` naming the rule when one is not found).
 */
export function createConfigExecutor(options: ConfigExecutorOptions): Executor {
  const env = options.env ?? process.env;
  const rules = resolveCommandRules(options.config.reloadAllow, "executors.config.reload_allow", env.PATH);
  return {
    name: "config",
    types: ["config"],
    start: (assignment, ctx) => startConfig(assignment, ctx, options, rules, env),
  };
}

function startConfig(
  a: Assignment,
  ctx: ExecutionContext,
  o: ConfigExecutorOptions,
  rules: readonly ResolvedCommandRule[],
  baseEnv: NodeJS.ProcessEnv,
): ExecutionHandle {
  const rootDir = o.config.rootDir;
  if (!rootDir)
    return failedHandle(ctx, "agent.yaml executors.config.root_dir is not set; config jobs cannot run here");
  let job: ConfigJobConfig;
  try {
    job = parseJobConfig("config", a.config, "spec.config");
  } catch (err) {
    return failedHandle(ctx, `the job config is invalid: ${(err as Error).message}`);
  }
  let reloadPath: string | undefined;
  if (job.reload) {
    const verdict = matchCommand(rules, "executors.config.reload_allow", job.reload.command, job.reload.args);
    if (!verdict.ok) return failedHandle(ctx, verdict.message);
    reloadPath = verdict.path;
  }
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  ctx.emit({ state: "running" });

  const done = (async (): Promise<void> => {
    let applied: AppliedConfig;
    try {
      applied = await applyConfigFiles({
        rootDir,
        files: job.files,
        backupDir: o.backupDir,
        jobId: a.jobId,
        jobVersion: a.jobVersion,
        executionId: a.executionId,
        keepBackups: o.keepBackups,
      });
    } catch (err) {
      ctx.emit({ state: "error", exception: `cannot write the config files: ${(err as Error).message}` });
      return;
    }
    for (const p of applied.changed) ctx.log("INFO", "agent", `wrote ${p} under ${rootDir}`);
    for (const p of applied.unchanged) ctx.log("INFO", "agent", `${p} is unchanged`);
    if (applied.backup) ctx.log("INFO", "agent", `previous contents kept in ${applied.backup}`);
    if (!job.reload || !reloadPath) {
      ctx.emit({ state: "finished", exitCode: 0, progress: 1 });
      return;
    }
    if (applied.changed.length === 0) {
      ctx.log("INFO", "agent", "nothing changed; the reload command was not run");
      ctx.emit({ state: "finished", exitCode: 0, progress: 1 });
      return;
    }
    const budget = new LogBudget(ctx);
    const outcome = await runCommand({
      path: reloadPath,
      args: job.reload.args,
      env: commandEnv(baseEnv, {}),
      cwd: rootDir,
      signal: stop.signal,
      killGraceMs: o.config.killGraceMs,
      onSpawn: (pid) =>
        ctx.log(
          "INFO",
          "agent",
          `reloading: ${reloadPath} ${JSON.stringify(job.reload?.args ?? [])} (pid ${pid})`,
        ),
      onLine: (stream, line) => budget.log("INFO", stream, line),
    });
    ctx.signal.removeEventListener("abort", onAbort);
    if (!outcome.aborted && !outcome.spawnError && outcome.exitCode === 0) {
      ctx.log("INFO", "agent", "the reload command exited with code 0");
      ctx.emit({ state: "finished", exitCode: 0, progress: 1 });
      return;
    }
    let restored = `the previous content of ${applied.changed.length} file(s) was restored`;
    try {
      await applied.restore();
    } catch (err) {
      restored = `restoring the previous content failed (${(err as Error).message}); it is in ${applied.backup}`;
    }
    const why = outcome.aborted ? "was stopped" : describeOutcome(reloadPath, outcome);
    const exception = `the reload command ${why}; ${restored}`;
    ctx.log("ERROR", "agent", exception);
    ctx.emit({
      state: outcome.aborted ? "canceled" : "error",
      exception,
      ...(outcome.exitCode !== null ? { exitCode: outcome.exitCode } : {}),
    });
  })();

  return {
    async stop() {
      stop.abort();
      await done;
    },
    status: () => ({}),
  };
}
