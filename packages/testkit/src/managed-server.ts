/**
 * The lifecycle shared by every server testkit spawns: launch and wait until ready, stop,
 * kill, restart on the same port, pause and resume. `redis-server.ts` and `nats-server.ts` only
 * say which binary, which arguments and how to probe readiness.
 */
import { EdgeplaneError } from "@edgeplane/core";
import { binaryNotFound } from "./binaries.js";
import type { LogBuffer } from "./log-buffer.js";
import type { ProbeResult } from "./probes.js";
import type { ServerKind, StopOptions } from "./server-handle.js";
import { describeExit, type ExitStatus, removeTempDir, ServerProcess } from "./server-process.js";
import { delay, waitFor } from "./wait-for.js";

/** What to run and how to tell it is ready. Fixed for the life of a server, restarts included. */
export interface LaunchSpec {
  readonly kind: ServerKind;
  /** The binary as the user named it (for messages): `redis-server`. */
  readonly binaryName: string;
  /** The resolved path of the binary. */
  readonly binary: string;
  readonly args: readonly string[];
  /** The client port, for messages. */
  readonly port: number;
  /** One readiness check of the freshly spawned process. */
  readonly probe: (proc: ServerProcess) => Promise<ProbeResult>;
  /** Deadline for one launch (including restarts), in ms. */
  readonly startTimeoutMs: number;
}

/** Metadata key set on a launch error when the server could not bind its port. */
export const ADDRESS_IN_USE = "address_in_use";

const DEFAULT_GRACE_MS = 5000;
const KILL_TIMEOUT_MS = 10_000;
const PROBE_INTERVAL_MS = 50;
const STATE_TIMEOUT_MS = 5000;
/** `/proc` states of a stopped thread: `T` (job control stop), `t` (tracing stop). */
const STOPPED_STATES = new Set(["T", "t"]);
/** `/proc` states of a thread that is exiting. */
const GONE_STATES = new Set(["Z", "X"]);
const FORBIDDEN_KILL_SIGNALS = new Set<NodeJS.Signals>(["SIGSTOP", "SIGCONT", "SIGTSTP"]);

/**
 * Spawns the server and polls `spec.probe` until it passes. On any failure the process is
 * SIGKILLed and the error (code `unavailable`, or `failed_precondition` for a missing binary)
 * carries the server's last log lines; `metadata.address_in_use` says whether retrying on
 * another (or, later, the same) port may help.
 */
export async function launch(spec: LaunchSpec, log: LogBuffer, signal?: AbortSignal): Promise<ServerProcess> {
  const mark = log.mark();
  log.push(`--- testkit: ${spec.binaryName} ${spec.args.join(" ")}`);
  const proc = ServerProcess.spawn(spec.binary, spec.args, log);
  const deadline = Date.now() + spec.startTimeoutMs;
  const where = `${spec.binaryName} on 127.0.0.1:${spec.port}`;
  let reason = "no probe finished yet";
  try {
    for (;;) {
      if (signal?.aborted) {
        throw new EdgeplaneError("canceled", `start of ${where} aborted`, { cause: signal.reason });
      }
      if (proc.exit) throw await exitedEarly(spec, where, proc, proc.exit, log, mark);
      const result = await spec.probe(proc);
      if (proc.exit) throw await exitedEarly(spec, where, proc, proc.exit, log, mark);
      if (result.ok) return proc;
      reason = result.reason;
      if (Date.now() >= deadline) {
        throw new EdgeplaneError(
          "unavailable",
          `${where} (pid ${proc.pid}) was not ready within ${spec.startTimeoutMs} ms (${reason}); ` +
            `last log lines:\n${lastLines(log, mark)}`,
        );
      }
      await delay(PROBE_INTERVAL_MS, signal).catch(() => {}); // an abort is reported at the loop top
    }
  } catch (err) {
    proc.signal("SIGKILL");
    await proc.exited;
    throw err;
  }
}

async function exitedEarly(
  spec: LaunchSpec,
  where: string,
  proc: ServerProcess,
  exit: ExitStatus,
  log: LogBuffer,
  mark: number,
): Promise<EdgeplaneError> {
  if ((exit.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") {
    return binaryNotFound(spec.binaryName, exit.error);
  }
  // Let the pipes drain so the reason (bind error, bad flag) is in the log; bounded, because a
  // forked grandchild (a Redis AOF rewrite) may hold them open.
  await settlesWithin(proc.closed, 250);
  const lines = log.since(mark);
  const addressInUse = lines.some((line) => /address already in use/i.test(line));
  return new EdgeplaneError(
    "unavailable",
    `${where}${describeExit(exit)} before it was ready; last log lines:\n${lastLines(log, mark)}`,
    { cause: exit.error, metadata: { [ADDRESS_IN_USE]: addressInUse } },
  );
}

function lastLines(log: LogBuffer, mark: number): string {
  return log.since(mark).slice(-25).join("\n") || "(no output)";
}

/** Whether `err` is a launch failure caused by a port that is still taken. */
export function isAddressInUse(err: unknown): boolean {
  return err instanceof EdgeplaneError && err.metadata[ADDRESS_IN_USE] === true;
}

/** Resolves true when `promise` (which never rejects) settles within `ms`, false otherwise; clears its timer. */
function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void promise.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * The process side of a server handle: owns the current {@link ServerProcess}, the log and the
 * temp dir. Subclasses add the URL and the server-specific fields.
 */
export abstract class ManagedServer {
  /** Always false: testkit started this server. */
  readonly external = false as const;
  /** Always `127.0.0.1`: testkit binds loopback only. */
  readonly host = "127.0.0.1";
  readonly #spec: LaunchSpec;
  readonly #log: LogBuffer;
  readonly #ownedDir: string | undefined;
  #proc: ServerProcess;
  #paused = false;
  #stopped = false;

  protected constructor(spec: LaunchSpec, log: LogBuffer, proc: ServerProcess, ownedDir: string | undefined) {
    this.#spec = spec;
    this.#log = log;
    this.#proc = proc;
    this.#ownedDir = ownedDir;
  }

  /** The client port; unchanged across restarts. */
  get port(): number {
    return this.#spec.port;
  }

  /** The pid of the current (or last) process. */
  get pid(): number {
    return this.#proc.pid;
  }

  /** Whether the process is alive (a paused process is alive). */
  get running(): boolean {
    return this.#proc.running;
  }

  /** Whether the process is stopped by {@link ManagedServer.pause}. */
  get paused(): boolean {
    return this.#paused && this.#proc.running;
  }

  /** The full command line, for debugging. */
  get command(): readonly string[] {
    return [this.#spec.binary, ...this.#spec.args];
  }

  async stop(options: StopOptions = {}): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#terminate(options.graceMs ?? DEFAULT_GRACE_MS);
    if (this.#ownedDir !== undefined) await removeTempDir(this.#ownedDir);
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (FORBIDDEN_KILL_SIGNALS.has(signal)) {
      throw new EdgeplaneError(
        "invalid_argument",
        `kill(${signal}): use pause()/resume() to stop and continue`,
      );
    }
    const proc = this.#proc;
    if (!proc.running) return;
    this.#log.push(`--- testkit: kill ${signal} pid ${proc.pid}`);
    proc.signal(signal);
    if (this.#paused && signal !== "SIGKILL") proc.signal("SIGCONT"); // a stopped process cannot handle it
    if (!(await settlesWithin(proc.exited, KILL_TIMEOUT_MS))) {
      throw new EdgeplaneError(
        "deadline_exceeded",
        `${this.#spec.binaryName} pid ${proc.pid} did not exit within ${KILL_TIMEOUT_MS} ms of ${signal}`,
      );
    }
    this.#paused = false;
  }

  async restart(options: StopOptions = {}): Promise<void> {
    if (this.#stopped) {
      throw new EdgeplaneError(
        "failed_precondition",
        `${this.#spec.binaryName} on port ${this.port} was stopped (its data dir is gone); start a new one`,
      );
    }
    await this.#terminate(options.graceMs ?? DEFAULT_GRACE_MS);
    // The old process is gone, but the port may still be held for a moment (a child it forked,
    // TIME_WAIT without SO_REUSEADDR): retry on the same port until the start deadline.
    const deadline = Date.now() + this.#spec.startTimeoutMs;
    for (;;) {
      try {
        this.#proc = await launch(this.#spec, this.#log);
        return;
      } catch (err) {
        if (!isAddressInUse(err) || Date.now() >= deadline) throw err;
        await delay(100);
      }
    }
  }

  async pause(): Promise<void> {
    this.#requireRunning("pause");
    const proc = this.#proc;
    proc.signal("SIGSTOP");
    this.#paused = true;
    // kill(2) only queues the signal: wait until every thread has actually stopped, so nothing
    // the test sends next can still be answered.
    await this.#awaitThreads(proc, "stop", (state) => STOPPED_STATES.has(state));
  }

  async resume(): Promise<void> {
    this.#requireRunning("resume");
    const proc = this.#proc;
    proc.signal("SIGCONT");
    this.#paused = false;
    await this.#awaitThreads(proc, "continue", (state) => state !== "T");
  }

  async #awaitThreads(proc: ServerProcess, what: string, ok: (state: string) => boolean): Promise<void> {
    await waitFor(
      async () => {
        if (!proc.running) return true;
        const states = await proc.threadStates();
        return states === undefined || states.every((state) => ok(state) || GONE_STATES.has(state));
      },
      {
        timeoutMs: STATE_TIMEOUT_MS,
        intervalMs: 2,
        message: `${this.#spec.binaryName} pid ${proc.pid} to ${what}`,
      },
    );
  }

  logs(lines = 50): string {
    return this.#log.tail(lines);
  }

  #requireRunning(op: string): void {
    if (!this.#proc.running) {
      throw new EdgeplaneError(
        "failed_precondition",
        `cannot ${op} ${this.#spec.binaryName}: it is not running`,
      );
    }
  }

  /** SIGTERM (after SIGCONT if paused), SIGKILL after `graceMs`, wait for the exit. */
  async #terminate(graceMs: number): Promise<void> {
    const proc = this.#proc;
    if (proc.running) {
      this.#log.push(`--- testkit: stop pid ${proc.pid}`);
      if (this.#paused) proc.signal("SIGCONT");
      proc.signal("SIGTERM");
      if (!(await settlesWithin(proc.exited, graceMs))) {
        proc.signal("SIGKILL");
        await proc.exited;
      }
    }
    this.#paused = false;
  }
}
