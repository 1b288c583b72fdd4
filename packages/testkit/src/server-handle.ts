/**
 * The handle every server helper returns, whether testkit started the server or it is an
 * external one named by `REDIS_URL` / `NATS_URL`.
 */
import { EdgeplaneError } from "@edgeplane/core";

/** Which server a handle is for. */
export type ServerKind = "redis" | "nats";

/** Options of {@link ServerHandle.stop} and {@link ServerHandle.restart}. */
export interface StopOptions {
  /** How long to wait after SIGTERM before SIGKILL, in ms (default 5000). */
  readonly graceMs?: number;
}

/**
 * A running (or stopped) server. All methods are safe to call in `afterEach`/`afterAll`: `stop`
 * is idempotent. A handle is not meant to be driven from two places at once.
 */
export interface ServerHandle {
  /** `"redis"` or `"nats"`. */
  readonly kind: ServerKind;
  /** The URL clients connect to: `redis://127.0.0.1:PORT` or `nats://127.0.0.1:PORT`. */
  readonly url: string;
  /** The host clients connect to (`127.0.0.1` for servers testkit starts). */
  readonly host: string;
  /** The client port; unchanged across restarts. */
  readonly port: number;
  /** True for a server named by `REDIS_URL`/`NATS_URL`, which testkit cannot kill or restart. */
  readonly external: boolean;
  /** The pid of the current (or last) process; `undefined` for an external server. */
  readonly pid: number | undefined;
  /** Whether the process is alive (a paused process is alive). Always true for an external server. */
  readonly running: boolean;
  /**
   * Stops the server for good: SIGTERM, SIGKILL after `graceMs`, then removes its temp dir.
   * Idempotent. A no-op for an external server.
   */
  stop(options?: StopOptions): Promise<void>;
  /**
   * Sends `signal` (default SIGKILL, i.e. `kill -9`) and waits for the process to exit. The data
   * dir is kept, so {@link ServerHandle.restart} brings the same data back. A no-op if not running.
   */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /**
   * Starts the server again on the same port with the same data dir (stopping it first, with
   * SIGTERM, if it is running) and waits until it is ready. Retries while the port is still
   * held (TIME_WAIT, a slow exit). Rejects after {@link ServerHandle.stop}.
   */
  restart(options?: StopOptions): Promise<void>;
  /**
   * SIGSTOP: the process keeps its sockets but answers nothing, like a hung or partitioned
   * server. Resolves once every thread is stopped (checked in Linux `/proc`).
   */
  pause(): Promise<void>;
  /** SIGCONT after {@link ServerHandle.pause}; resolves once the process runs again. */
  resume(): Promise<void>;
  /** The last `lines` lines (default 50) of the server's stdout and stderr, across restarts. */
  logs(lines?: number): string;
}

/** A server named by an environment variable; it cannot be killed, restarted or paused. */
export interface ExternalServer extends ServerHandle {
  readonly external: true;
  readonly pid: undefined;
  /** The variable that named it: `REDIS_URL` or `NATS_URL`. */
  readonly envVar: string;
}

const DEFAULT_PORTS: Record<ServerKind, number> = { redis: 6379, nats: 4222 };

/**
 * A handle on a server testkit did not start. `stop` does nothing (the server is not ours);
 * `kill`, `restart`, `pause` and `resume` reject with `failed_precondition` saying which variable to
 * unset, so a fault test can check {@link ServerHandle.external} first and skip with a reason.
 */
export function createExternalServer(kind: ServerKind, url: string, envVar: string): ExternalServer {
  const { host, port } = parseServerUrl(kind, url);
  const refuse = (op: string): EdgeplaneError =>
    new EdgeplaneError(
      "failed_precondition",
      `cannot ${op} an external server (${envVar}=${url}); unset ${envVar} to let testkit start one`,
    );
  return Object.freeze({
    kind,
    url,
    host,
    port,
    external: true as const,
    pid: undefined,
    running: true,
    envVar,
    stop: async () => {},
    kill: async () => {
      throw refuse("kill");
    },
    restart: async () => {
      throw refuse("restart");
    },
    pause: async () => {
      throw refuse("pause");
    },
    resume: async () => {
      throw refuse("resume");
    },
    logs: () => `(external ${kind} server at ${url}: logs are not available)`,
  });
}

/**
 * Host and port of a server URL. Accepts `redis://[:pw@]host[:port][/db]`, `rediss://…`,
 * `nats://host[:port]`, bare `host:port`, and a comma-separated NATS server list (the first
 * entry is used).
 */
export function parseServerUrl(kind: ServerKind, url: string): { host: string; port: number } {
  const first = url.split(",")[0]?.trim() ?? "";
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(first) ? first : `${kind}://${first}`;
  let parsed: URL;
  try {
    parsed = new URL(withScheme);
  } catch (err) {
    throw new EdgeplaneError("invalid_argument", `not a ${kind} server URL: ${JSON.stringify(url)}`, {
      cause: err,
    });
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  if (host === "")
    throw new EdgeplaneError("invalid_argument", `no host in ${kind} server URL ${JSON.stringify(url)}`);
  return { host, port: parsed.port === "" ? DEFAULT_PORTS[kind] : Number(parsed.port) };
}
