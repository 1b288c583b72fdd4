/**
 * `startRedis()`: a real `redis-server` on a free loopback port, configured like production
 * (AOF on with `appendfsync everysec`, `noeviction`, no RDB snapshots) in a temp data dir.
 */
import { resolveBinary } from "./binaries.js";
import { LogBuffer } from "./log-buffer.js";
import { isAddressInUse, type LaunchSpec, launch, ManagedServer } from "./managed-server.js";
import { freePort } from "./ports.js";
import { probeRedis } from "./probes.js";
import type { ServerHandle } from "./server-handle.js";
import { createTempDir, removeTempDir, type ServerProcess } from "./server-process.js";

/** Options of {@link startRedis}. */
export interface RedisServerOptions {
  /** The client port (default: a free one, never 6379). A fixed port is not retried if taken. */
  readonly port?: number;
  /** The binary to run, a name on `PATH` or a path (default `redis-server`). */
  readonly binary?: string;
  /** Extra arguments appended after testkit's own (later ones win in Redis): `["--maxmemory", "64mb"]`. */
  readonly args?: readonly string[];
  /** How long to wait for `PING` → `+PONG`, in ms, on start and on every restart (default 10000). */
  readonly startTimeoutMs?: number;
  /** Aborts the start (the half-started server is killed). */
  readonly signal?: AbortSignal;
}

/** A `redis-server` started by testkit. */
export interface RedisServer extends ServerHandle {
  readonly kind: "redis";
  readonly external: false;
  readonly pid: number;
  /** The data dir (`--dir`): the AOF lives in `<dataDir>/appendonlydir`. Kept across restarts. */
  readonly dataDir: string;
  /** Whether the process is stopped by `pause()`. */
  readonly paused: boolean;
  /** The full command line, for debugging. */
  readonly command: readonly string[];
}

const DEFAULT_START_TIMEOUT_MS = 10_000;
const PORT_ATTEMPTS = 5;

/**
 * The arguments testkit passes to `redis-server`: loopback only, the data dir, AOF with
 * `everysec` fsync, `noeviction`, RDB snapshots off, logs to stdout, foreground.
 */
export function redisArgs(port: number, dataDir: string, extra: readonly string[] = []): string[] {
  return [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dataDir,
    "--appendonly",
    "yes",
    "--appendfsync",
    "everysec",
    "--maxmemory-policy",
    "noeviction",
    "--save",
    "",
    "--daemonize",
    "no",
    "--logfile",
    "",
    ...extra,
  ];
}

class RedisServerImpl extends ManagedServer implements RedisServer {
  readonly kind = "redis" as const;
  readonly dataDir: string;
  readonly url: string;

  constructor(spec: LaunchSpec, log: LogBuffer, proc: ServerProcess, dataDir: string) {
    super(spec, log, proc, dataDir);
    this.dataDir = dataDir;
    this.url = `redis://127.0.0.1:${spec.port}`;
  }
}

/**
 * Starts `redis-server` on a free 127.0.0.1 port with a fresh temp data dir
 * (`<tmpdir>/edgeplane-testkit-redis-*`) and resolves once it answers `PING` with `+PONG`.
 * `stop()` removes the dir; `kill()` + `restart()` keep it, so AOF-persisted data survives.
 *
 * @throws EdgeplaneError `failed_precondition` if the binary is missing (naming the apt-get
 *   command), `unavailable` if it does not become ready in time (with its last log lines).
 *
 * @example
 * ```ts
 * const server = await startRedis();
 * const redis = new Redis(server.url);
 * await server.kill();      // kill -9
 * await server.restart();   // same port, same data dir
 * await server.stop();
 * ```
 */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  const binaryName = options.binary ?? "redis-server";
  const binary = resolveBinary(binaryName);
  const dataDir = await createTempDir("redis");
  const log = new LogBuffer();
  try {
    for (let attempt = 1; ; attempt++) {
      const port = options.port ?? (await freePort());
      const spec: LaunchSpec = {
        kind: "redis",
        binaryName,
        binary,
        args: redisArgs(port, dataDir, options.args),
        port,
        probe: (proc) => probeRedis(port, proc.pid),
        startTimeoutMs: options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
      };
      try {
        const proc = await launch(spec, log, options.signal);
        return new RedisServerImpl(spec, log, proc, dataDir);
      } catch (err) {
        // Someone took the free port between our probe and the bind: take another one.
        if (options.port !== undefined || attempt >= PORT_ATTEMPTS || !isAddressInUse(err)) throw err;
      }
    }
  } catch (err) {
    await removeTempDir(dataDir);
    throw err;
  }
}
