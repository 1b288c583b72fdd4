/**
 * `startNats()` and `startNatsCluster()`: real `nats-server` processes on free loopback ports,
 * JetStream on by default with a temp store dir, each with an HTTP monitoring port.
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { EdgeplaneError } from "@edgeplane/core";
import { resolveBinary } from "./binaries.js";
import { LogBuffer } from "./log-buffer.js";
import { isAddressInUse, type LaunchSpec, launch, ManagedServer } from "./managed-server.js";
import { freePort } from "./ports.js";
import { httpGetJson, type ProbeResult, probeNatsClientPort, probeNatsHealthz } from "./probes.js";
import type { ServerHandle, StopOptions } from "./server-handle.js";
import { createTempDir, removeTempDir, type ServerProcess } from "./server-process.js";
import { waitFor } from "./wait-for.js";

/** Options of {@link startNats}. */
export interface NatsServerOptions {
  /** The client port (default: a free one, never 4222). A fixed port is not retried if taken. */
  readonly port?: number;
  /** The binary to run, a name on `PATH` or a path (default `nats-server`). */
  readonly binary?: string;
  /** Enable JetStream with the temp dir as store (`-js -sd <dir>`); default true. */
  readonly jetstream?: boolean;
  /**
   * Text of a nats-server config file (accounts, users, permissions…), written to
   * `<storeDir>/nats.conf` and passed with `-c`. Command-line flags (port, name, JetStream,
   * cluster) override what the file says.
   */
  readonly config?: string;
  /** Extra arguments appended after testkit's own: `["-DV"]` for debug and trace logs. */
  readonly args?: readonly string[];
  /** `--server_name` (default `testkit-<random>`); readiness checks that the port answers with it. */
  readonly serverName?: string;
  /** How long to wait for readiness, in ms, on start and on every restart (default 15000). */
  readonly startTimeoutMs?: number;
  /** Aborts the start (the half-started servers are killed). */
  readonly signal?: AbortSignal;
}

/** A `nats-server` started by testkit. */
export interface NatsServer extends ServerHandle {
  readonly kind: "nats";
  readonly external: false;
  readonly pid: number;
  /** The server's temp dir: JetStream stores under `<storeDir>/jetstream`. Kept across restarts. */
  readonly storeDir: string;
  /** Whether JetStream is enabled. */
  readonly jetstream: boolean;
  /** `--server_name`, unique per server (JetStream clustering needs that). */
  readonly serverName: string;
  /** The HTTP monitoring port (`-m`). */
  readonly monitorPort: number;
  /** `http://127.0.0.1:<monitorPort>`: `/varz`, `/routez`, `/jsz`, `/healthz`. */
  readonly monitorUrl: string;
  /** The cluster (route) port, for members of a {@link NatsCluster}. */
  readonly clusterPort: number | undefined;
  /** The config file passed with `-c`, if {@link NatsServerOptions.config} was given. */
  readonly configFile: string | undefined;
  /** Whether the process is stopped by `pause()`. */
  readonly paused: boolean;
  /** The full command line, for debugging. */
  readonly command: readonly string[];
  /** GETs a monitoring endpoint (`"/varz"`, `"/routez"`, `"/jsz"`) and returns its JSON. */
  monitor(path: string): Promise<Record<string, unknown>>;
}

/** Options of {@link startNatsCluster}: those of {@link startNats} for every member. */
export interface NatsClusterOptions extends Omit<NatsServerOptions, "port" | "serverName"> {
  /** `--cluster_name` (default `testkit-<random>`); members are named `<clusterName>-<i>`. */
  readonly clusterName?: string;
}

/** Options of {@link NatsCluster.waitReady}. */
export interface ClusterReadyOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** Several `nats-server`s routed to each other. */
export interface NatsCluster {
  /** `--cluster_name`. */
  readonly name: string;
  /** The members, in start order. Kill, restart or pause them one by one for fault tests. */
  readonly servers: readonly NatsServer[];
  /** The client URLs of all members, for `connect({ servers: cluster.urls })`. */
  readonly urls: readonly string[];
  /**
   * Waits until every running, unpaused member answers `/healthz` (JetStream meta leader known)
   * and has a route to every other running member. Call it after restarting members.
   */
  waitReady(options?: ClusterReadyOptions): Promise<void>;
  /** Stops every member (in parallel) and removes their dirs. Idempotent. */
  stop(options?: StopOptions): Promise<void>;
}

const DEFAULT_START_TIMEOUT_MS = 15_000;
const PORT_ATTEMPTS = 5;

interface NatsLayout {
  readonly port: number;
  readonly monitorPort: number;
  readonly serverName: string;
  readonly storeDir: string;
  readonly jetstream: boolean;
  readonly configFile: string | undefined;
  readonly cluster?: { readonly name: string; readonly port: number; readonly routes: readonly string[] };
}

/** The arguments testkit passes to `nats-server` for one server. */
function natsArgs(layout: NatsLayout, extra: readonly string[] = []): string[] {
  const args: string[] = [];
  if (layout.configFile !== undefined) args.push("-c", layout.configFile);
  args.push("-a", "127.0.0.1", "-p", String(layout.port), "-m", String(layout.monitorPort));
  args.push("--server_name", layout.serverName);
  if (layout.jetstream) args.push("-js", "-sd", layout.storeDir);
  if (layout.cluster) {
    args.push("--cluster", `nats://127.0.0.1:${layout.cluster.port}`, "--cluster_name", layout.cluster.name);
    // Every member gets the full list, itself included (nats-server ignores a route to itself),
    // so each command line is the same shape and survives restarts unchanged.
    args.push("--routes", layout.cluster.routes.join(","));
  }
  args.push(...extra);
  return args;
}

class NatsServerImpl extends ManagedServer implements NatsServer {
  readonly kind = "nats" as const;
  readonly url: string;
  readonly storeDir: string;
  readonly jetstream: boolean;
  readonly serverName: string;
  readonly monitorPort: number;
  readonly monitorUrl: string;
  readonly clusterPort: number | undefined;
  readonly configFile: string | undefined;

  constructor(spec: LaunchSpec, log: LogBuffer, proc: ServerProcess, layout: NatsLayout) {
    super(spec, log, proc, layout.storeDir);
    this.url = `nats://127.0.0.1:${layout.port}`;
    this.storeDir = layout.storeDir;
    this.jetstream = layout.jetstream;
    this.serverName = layout.serverName;
    this.monitorPort = layout.monitorPort;
    this.monitorUrl = `http://127.0.0.1:${layout.monitorPort}`;
    this.clusterPort = layout.cluster?.port;
    this.configFile = layout.configFile;
  }

  async monitor(path: string): Promise<Record<string, unknown>> {
    const { status, body } = await httpGetJson(this.monitorPort, path.startsWith("/") ? path : `/${path}`);
    if (status !== 200) {
      throw new EdgeplaneError("unavailable", `GET ${this.monitorUrl}${path} answered ${status}`, {
        metadata: { status, body: JSON.stringify(body) },
      });
    }
    return body as Record<string, unknown>;
  }
}

function makeSpec(
  binaryName: string,
  binary: string,
  layout: NatsLayout,
  options: NatsServerOptions,
): LaunchSpec {
  // A lone server is ready when /healthz is ok (JetStream recovered) and the client port greets
  // with our server name. A cluster member cannot be healthy without a quorum, which may be down
  // in a fault test, so it only waits for its client port; NatsCluster.waitReady does the rest.
  const probe = async (): Promise<ProbeResult> => {
    if (!layout.cluster) {
      const health = await probeNatsHealthz(layout.monitorPort);
      if (!health.ok) return health;
    }
    return probeNatsClientPort(layout.port, layout.serverName);
  };
  return {
    kind: "nats",
    binaryName,
    binary,
    args: natsArgs(layout, options.args),
    port: layout.port,
    probe,
    startTimeoutMs: options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
  };
}

async function prepareDir(options: NatsServerOptions): Promise<{ storeDir: string; configFile?: string }> {
  const storeDir = await createTempDir("nats");
  if (options.config === undefined) return { storeDir };
  const configFile = join(storeDir, "nats.conf");
  await writeFile(configFile, options.config);
  return { storeDir, configFile };
}

function randomName(): string {
  return `testkit-${randomBytes(4).toString("hex")}`;
}

/**
 * Starts `nats-server` on a free 127.0.0.1 port (and a free monitoring port) with JetStream in
 * a temp dir (`<tmpdir>/edgeplane-testkit-nats-*`), and resolves once `/healthz` is ok and the
 * client port greets with an `INFO` naming this server.
 *
 * @throws EdgeplaneError `failed_precondition` if the binary is missing (naming the apt-get
 *   command), `unavailable` if it does not become ready in time (with its last log lines).
 *
 * @example
 * ```ts
 * const server = await startNats({ config: "max_payload: 65536" });
 * const nc = await connect({ servers: server.url });
 * await server.kill();     // kill -9
 * await server.restart();  // same port, same JetStream store
 * ```
 */
export async function startNats(options: NatsServerOptions = {}): Promise<NatsServer> {
  const binaryName = options.binary ?? "nats-server";
  const binary = resolveBinary(binaryName);
  const { storeDir, configFile } = await prepareDir(options);
  const log = new LogBuffer();
  try {
    for (let attempt = 1; ; attempt++) {
      const layout: NatsLayout = {
        port: options.port ?? (await freePort()),
        monitorPort: await freePort(),
        serverName: options.serverName ?? randomName(),
        storeDir,
        jetstream: options.jetstream ?? true,
        configFile,
      };
      const spec = makeSpec(binaryName, binary, layout, options);
      try {
        const proc = await launch(spec, log, options.signal);
        return new NatsServerImpl(spec, log, proc, layout);
      } catch (err) {
        if (attempt >= PORT_ATTEMPTS || !isAddressInUse(err)) throw err;
      }
    }
  } catch (err) {
    await removeTempDir(storeDir);
    throw err;
  }
}

/**
 * Starts `n` nats-servers routed to each other (`--cluster`, `--routes`, `--cluster_name`),
 * each with its own store dir and a unique `--server_name`, so JetStream runs clustered.
 * Resolves once every member is healthy and fully routed ({@link NatsCluster.waitReady}).
 *
 * @example
 * ```ts
 * const cluster = await startNatsCluster(3);
 * const a = await connect({ servers: cluster.urls[0] });
 * await cluster.servers[1]?.kill();
 * await cluster.servers[1]?.restart();
 * await cluster.waitReady();
 * ```
 */
export async function startNatsCluster(n: number, options: NatsClusterOptions = {}): Promise<NatsCluster> {
  if (!Number.isInteger(n) || n < 1) {
    throw new EdgeplaneError("invalid_argument", `startNatsCluster: n must be an integer ≥ 1, got ${n}`);
  }
  const binaryName = options.binary ?? "nats-server";
  const binary = resolveBinary(binaryName);
  const name = options.clusterName ?? randomName();
  const dirs: { storeDir: string; configFile?: string }[] = [];
  try {
    for (let i = 0; i < n; i++) dirs.push(await prepareDir(options));
    for (let attempt = 1; ; attempt++) {
      const clusterPorts: number[] = [];
      for (let i = 0; i < n; i++) clusterPorts.push(await freePort());
      const routes = clusterPorts.map((port) => `nats://127.0.0.1:${port}`);
      const layouts: NatsLayout[] = [];
      for (const [i, dir] of dirs.entries()) {
        layouts.push({
          port: await freePort(),
          monitorPort: await freePort(),
          serverName: `${name}-${i}`,
          storeDir: dir.storeDir,
          jetstream: options.jetstream ?? true,
          configFile: dir.configFile,
          cluster: { name, port: clusterPorts[i] ?? 0, routes },
        });
      }
      const launched = await Promise.allSettled(
        layouts.map(async (layout) => {
          const log = new LogBuffer();
          const spec = makeSpec(binaryName, binary, layout, options);
          const proc = await launch(spec, log, options.signal);
          return new NatsServerImpl(spec, log, proc, layout);
        }),
      );
      const servers = launched.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
      const failure = launched.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failure) {
        await Promise.all(servers.map((s) => s.kill()));
        if (attempt < PORT_ATTEMPTS && isAddressInUse(failure.reason)) continue;
        throw failure.reason;
      }
      const cluster = new NatsClusterImpl(name, servers);
      try {
        await cluster.waitReady({
          timeoutMs: options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
          signal: options.signal,
        });
      } catch (err) {
        await cluster.stop({ graceMs: 0 });
        throw err;
      }
      return cluster;
    }
  } catch (err) {
    await Promise.all(dirs.map((dir) => removeTempDir(dir.storeDir)));
    throw err;
  }
}

class NatsClusterImpl implements NatsCluster {
  readonly name: string;
  readonly servers: readonly NatsServerImpl[];
  readonly urls: readonly string[];

  constructor(name: string, servers: readonly NatsServerImpl[]) {
    this.name = name;
    this.servers = servers;
    this.urls = servers.map((s) => s.url);
  }

  async waitReady(options: ClusterReadyOptions = {}): Promise<void> {
    let status = "";
    try {
      await waitFor(
        async () => {
          const up = this.servers.filter((s) => s.running && !s.paused);
          const states = await Promise.all(up.map((s) => memberState(s, up.length - 1)));
          status = states.map((state, i) => `${up[i]?.serverName}: ${state}`).join("; ");
          return states.every((state) => state === "ok");
        },
        { timeoutMs: options.timeoutMs ?? DEFAULT_START_TIMEOUT_MS, intervalMs: 50, signal: options.signal },
      );
    } catch (err) {
      const tails = this.servers.map((s) => `--- ${s.serverName}:\n${s.logs(10)}`).join("\n");
      throw new EdgeplaneError(
        "unavailable",
        `NATS cluster ${this.name} not ready (${status}); logs:\n${tails}`,
        {
          cause: err,
        },
      );
    }
  }

  async stop(options: StopOptions = {}): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop(options)));
  }
}

async function memberState(server: NatsServerImpl, peers: number): Promise<string> {
  const health = await probeNatsHealthz(server.monitorPort);
  if (!health.ok) return health.reason;
  try {
    const routez = await server.monitor("/routez");
    const routes = Number(routez.num_routes ?? 0);
    return routes >= peers ? "ok" : `${routes}/${peers} routes`;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
