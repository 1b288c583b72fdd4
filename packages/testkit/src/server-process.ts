/**
 * One spawned server process, and the process-wide bookkeeping that guarantees no server or
 * temp dir outlives the test process: every live child is SIGKILLed and every owned temp dir
 * removed from a `process.on("exit")` hook.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LogBuffer } from "./log-buffer.js";

/** How a process ended: its exit code, or the signal that killed it, or the spawn error. */
export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly error?: Error;
}

const liveChildren = new Set<ChildProcess>();
const ownedDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: SIGKILL is, and rmSync is.
  process.on("exit", () => {
    for (const child of liveChildren) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    for (const dir of ownedDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort at exit
      }
    }
  });
}

/** Creates `<os.tmpdir()>/edgeplane-testkit-<kind>-XXXXXX`, removed at process exit at the latest. */
export async function createTempDir(kind: string): Promise<string> {
  installExitHook();
  const dir = await mkdtemp(join(tmpdir(), `edgeplane-testkit-${kind}-`));
  ownedDirs.add(dir);
  return dir;
}

/** Removes a dir made by {@link createTempDir}. */
export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  ownedDirs.delete(dir);
}

/** A spawned server: its pid, its exit, and signals to it. */
export class ServerProcess {
  readonly #child: ChildProcess;
  #exit: ExitStatus | undefined;
  /** Resolves (never rejects) when the process has exited or failed to spawn. */
  readonly exited: Promise<ExitStatus>;
  /** Resolves when its stdout and stderr are closed too (all output is in the log). */
  readonly closed: Promise<void>;

  private constructor(child: ChildProcess) {
    this.#child = child;
    this.closed = new Promise<void>((resolve) => {
      child.once("close", () => resolve());
      child.once("error", () => {
        if (child.pid === undefined) resolve();
      });
    });
    this.exited = new Promise<ExitStatus>((resolve) => {
      child.once("exit", (code, signal) => {
        this.#exit ??= { code, signal };
        liveChildren.delete(child);
        resolve(this.#exit);
      });
      // A spawn failure (ENOENT, EACCES) emits 'error' and no 'exit'.
      child.once("error", (error) => {
        if (child.pid !== undefined && this.#exit === undefined) return; // a failed kill(); 'exit' still comes
        this.#exit ??= { code: null, signal: null, error };
        liveChildren.delete(child);
        resolve(this.#exit);
      });
    });
  }

  /** Spawns `binary args…` with stdout and stderr going to `log`. */
  static spawn(binary: string, args: readonly string[], log: LogBuffer): ServerProcess {
    installExitHook();
    const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"], detached: false });
    const proc = new ServerProcess(child);
    if (child.pid !== undefined) liveChildren.add(child);
    if (child.stdout) log.attach(child.stdout);
    if (child.stderr) log.attach(child.stderr);
    return proc;
  }

  /** The OS pid, or -1 if the spawn failed. */
  get pid(): number {
    return this.#child.pid ?? -1;
  }

  /** How the process ended, `undefined` while it runs. */
  get exit(): ExitStatus | undefined {
    return this.#exit;
  }

  /** Whether the process is still running (possibly stopped by SIGSTOP). */
  get running(): boolean {
    return this.#exit === undefined && this.#child.pid !== undefined;
  }

  /**
   * The scheduler state letter (`R`, `S`, `T` for stopped, ...) of each of the process's threads,
   * read from Linux `/proc`; `undefined` where `/proc` is not available.
   */
  async threadStates(): Promise<string[] | undefined> {
    const base = `/proc/${this.pid}/task`;
    try {
      const tasks = await readdir(base);
      const stats = await Promise.all(tasks.map((task) => readFile(`${base}/${task}/stat`, "utf8")));
      // "tid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ")".
      return stats.map((stat) => stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3));
    } catch {
      return undefined;
    }
  }

  /** Sends `signal` if the process is running; returns whether it was sent. */
  signal(signal: NodeJS.Signals): boolean {
    if (!this.running) return false;
    try {
      return this.#child.kill(signal);
    } catch {
      return false;
    }
  }
}

/** `" exited with code 1"` / `" was killed by SIGKILL"` / `" failed to spawn: …"`. */
export function describeExit(exit: ExitStatus): string {
  if (exit.error) return ` failed to spawn: ${exit.error.message}`;
  if (exit.signal) return ` was killed by ${exit.signal}`;
  return ` exited with code ${exit.code}`;
}
