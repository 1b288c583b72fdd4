/**
 * Running one allowed command: no shell, its own process group, output split into bounded lines,
 * stdout optionally captured up to a cap, and a stop that takes the whole group down.
 *
 * The command is spawned `detached` (a new session, so its pid is its process group id). When it
 * is stopped (the signal aborts: cancel, timeout, agent shutdown), the group gets SIGTERM, then
 * SIGKILL once `killGraceMs` has passed without its output pipes closing. When the command exits
 * on its own, whatever it left running in its group gets the same treatment: a run-once command
 * leaves nothing behind (use a service manager to start services).
 */
import { spawn } from "node:child_process";

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  /** The absolute path of the program (already checked against the allow list). */
  readonly path: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  /** Aborting stops the command (SIGTERM, then SIGKILL after `killGraceMs`). */
  readonly signal: AbortSignal;
  readonly killGraceMs: number;
  /** Called with each output line (cut at `maxLineBytes`). */
  readonly onLine?: (stream: "stdout" | "stderr", line: string) => void;
  /** Keep up to this many bytes of stdout (a query's result); 0 keeps none. */
  readonly captureStdoutBytes?: number;
  /** Called once the process runs. */
  readonly onSpawn?: (pid: number) => void;
  /** Longer lines are cut (with "…") and the rest of the line skipped (default 8 KiB). */
  readonly maxLineBytes?: number;
}

/** How a command ended. */
export interface CommandOutcome {
  /** The exit code; null when it was ended by a signal or never started. */
  readonly exitCode: number | null;
  /** The signal that ended it, if any. */
  readonly exitSignal: NodeJS.Signals | null;
  /** Why it could not start (ENOENT, EACCES, a missing working directory, ...). */
  readonly spawnError: Error | undefined;
  /** The captured start of stdout (at most `captureStdoutBytes`). */
  readonly stdout: Buffer;
  /** How many bytes stdout had in all. */
  readonly stdoutBytes: number;
  /** The last non-empty stderr line (for the exception of a failed command). */
  readonly lastStderrLine: string;
  /** Whether it was stopped through `signal`. */
  readonly aborted: boolean;
  readonly pid: number | undefined;
}

const NEWLINE = 0x0a;

/** Splits a byte stream into lines of at most `maxBytes` bytes; memory stays bounded by `maxBytes`. */
export class LineSplitter {
  readonly #maxBytes: number;
  readonly #emit: (line: string) => void;
  #parts: Buffer[] = [];
  #size = 0;
  #skipping = false;

  constructor(maxBytes: number, emit: (line: string) => void) {
    this.#maxBytes = maxBytes;
    this.#emit = emit;
  }

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl === -1 ? chunk.length : nl;
      if (!this.#skipping) {
        const room = this.#maxBytes - this.#size;
        if (end - start > room) {
          this.#parts.push(chunk.subarray(start, start + room));
          this.#size += room;
          this.#flush("…");
          this.#skipping = true;
        } else if (end > start) {
          this.#parts.push(chunk.subarray(start, end));
          this.#size += end - start;
        }
      }
      if (nl === -1) break;
      if (this.#skipping) this.#skipping = false;
      else this.#flush("");
      start = nl + 1;
    }
  }

  /** Emits a last line without a newline, if any. */
  end(): void {
    if (this.#size > 0 && !this.#skipping) this.#flush("");
    this.#parts = [];
    this.#size = 0;
    this.#skipping = false;
  }

  #flush(suffix: string): void {
    let line = Buffer.concat(this.#parts, this.#size).toString("utf8");
    if (line.endsWith("\r")) line = line.slice(0, -1);
    this.#parts = [];
    this.#size = 0;
    this.#emit(line + suffix);
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone already
  }
}

/** Runs one command to its end (or until stopped) and reports how it ended; never rejects. */
export function runCommand(options: RunCommandOptions): Promise<CommandOutcome> {
  const cap = options.captureStdoutBytes ?? 0;
  const maxLine = options.maxLineBytes ?? 8192;
  const captured: Buffer[] = [];
  let capturedBytes = 0;
  let stdoutBytes = 0;
  let lastStderrLine = "";

  return new Promise<CommandOutcome>((resolve) => {
    if (options.signal.aborted) {
      resolve({
        exitCode: null,
        exitSignal: null,
        spawnError: undefined,
        stdout: Buffer.alloc(0),
        stdoutBytes: 0,
        lastStderrLine: "",
        aborted: true,
        pid: undefined,
      });
      return;
    }
    const child = spawn(options.path, [...options.args], {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      shell: false,
      stdio: ["ignore", "pipe", "pipe"],
      windowsHide: true,
    });
    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    let spawnError: Error | undefined;
    let aborted = false;
    let settled = false;
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    let lastTimer: ReturnType<typeof setTimeout> | undefined;

    const out = new LineSplitter(maxLine, (line) => options.onLine?.("stdout", line));
    const err = new LineSplitter(maxLine, (line) => {
      if (line.trim() !== "") lastStderrLine = line;
      options.onLine?.("stderr", line);
    });
    child.stdout.on("data", (chunk: Buffer) => {
      stdoutBytes += chunk.length;
      if (capturedBytes < cap) {
        const take = chunk.subarray(0, cap - capturedBytes);
        captured.push(take);
        capturedBytes += take.length;
      }
      out.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => err.push(chunk));

    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(killTimer);
      clearTimeout(lastTimer);
      options.signal.removeEventListener("abort", onAbort);
      out.end();
      err.end();
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({
        exitCode,
        exitSignal,
        spawnError,
        stdout: Buffer.concat(captured, capturedBytes),
        stdoutBytes,
        lastStderrLine,
        aborted,
        pid: child.pid,
      });
    };

    /** SIGTERM the group; SIGKILL it once the grace has passed without the pipes closing. */
    const terminate = (): void => {
      const pid = child.pid;
      if (pid === undefined || killTimer) return;
      signalGroup(pid, "SIGTERM");
      killTimer = setTimeout(() => {
        signalGroup(pid, "SIGKILL");
        // Pipes held by something outside the group (it escaped with setsid): stop waiting.
        lastTimer = setTimeout(finish, 1000);
      }, options.killGraceMs);
    };

    const onAbort = (): void => {
      aborted = true;
      terminate();
    };

    child.on("spawn", () => {
      if (child.pid !== undefined) options.onSpawn?.(child.pid);
    });
    child.on("error", (e) => {
      // Spawn failures (ENOENT, EACCES, a bad cwd) end here and get no "close" of their own.
      if (child.pid === undefined) {
        spawnError = e;
        finish();
      }
    });
    child.on("exit", (code, signal) => {
      exitCode = code;
      exitSignal = signal;
      // Whatever the command left running in its group goes with it.
      if (child.pid !== undefined) {
        signalGroup(child.pid, "SIGTERM");
        if (!killTimer) {
          const pid = child.pid;
          killTimer = setTimeout(() => {
            signalGroup(pid, "SIGKILL");
            lastTimer = setTimeout(finish, 1000);
          }, options.killGraceMs);
        }
      }
    });
    child.on("close", finish);
    options.signal.addEventListener("abort", onAbort, { once: true });
  });
}
