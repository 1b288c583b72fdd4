/**
 * The composition root of the control plane: builds the stores, connections and servers from
 * options, starts them in order and stops them in reverse (`stop({ graceMs })`: stop accepting,
 * drain, close connections).
 */
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Health as HealthService, JobService, SystemService } from "@edgeplane/api";
import { type Bus, connectNatsBus, MemoryBroker } from "@edgeplane/bus";
import {
  API_VERSION,
  type Clock,
  createLogger,
  EDGEPLANE_VERSION,
  EdgeplaneError,
  type Logger,
  systemClock,
} from "@edgeplane/core";
import {
  checkRedisDurability,
  coalesceWrites,
  createMemoryDeploymentData,
  createMemoryDesiredStateStore,
  createMemoryJobStore,
  createMemoryNodeData,
  createMemoryNodeStore,
  createRedisDesiredStateStore,
  createRedisJobStore,
  createRedisNodeStore,
  type DesiredStateStore,
  type JobStore,
  memoryFencing,
  type NodeStore,
  sharedSecret,
} from "@edgeplane/store";
import { Redis } from "ioredis";
import { type DeploymentStores, deploymentStores, startDeploymentServices } from "./deployments/index.js";
import {
  createDesiredStateCanceler,
  type ExecutionServicesOptions,
  startExecutionServices,
} from "./executions/index.js";
import { createHealthService } from "./grpc/health-service.js";
import { GrpcServer } from "./grpc/server.js";
import { Health } from "./health.js";
import { Router, sendJson } from "./http/router.js";
import { createJobGrpcService } from "./jobs/grpc.js";
import { registerJobRoutes } from "./jobs/rest.js";
import { JobsService } from "./jobs/service.js";
import type { NodeServicesOptions } from "./nodes/index.js";
import { PageTokens } from "./page-token.js";

/** Options of {@link startControlPlane}. */
export interface ControlPlaneOptions {
  /** gRPC listen address, default `127.0.0.1:50051` (port 0 picks a free port). */
  readonly grpcAddr?: string;
  /** HTTP listen address, default `127.0.0.1:8080`. */
  readonly httpAddr?: string;
  /** `memory` (default) or a Redis URL `redis://host:port[/db]`. */
  readonly store?: string;
  /** NATS server URLs of the agents' transport. */
  readonly nats?: readonly string[];
  /**
   * An in-process broker instead of NATS (the single-process dev stack, tests): agents created
   * on the same broker talk to this control plane. Ignored when `nats` is given; without either
   * the control plane runs with a private broker (API only, no agent can reach it).
   */
  readonly broker?: MemoryBroker;
  /** Execution archive, log bounds and retry tunables. */
  readonly executions?: Pick<
    ExecutionServicesOptions,
    | "retentionMs"
    | "purgeAfterMs"
    | "sweepIntervalMs"
    | "logBounds"
    | "maxResultBytes"
    | "maxAttempts"
    | "retryGraceMs"
  >;
  /** Node registry and placement tunables (liveness timings, periods). */
  readonly nodes?: Pick<NodeServicesOptions, "registry" | "placement">;
  readonly logger?: Logger;
  /**
   * Production mode refuses to start on a Redis that could lose acknowledged writes (not
   * `appendonly yes` + `maxmemory-policy noeviction`); dev mode warns. Default: production when
   * `EDGEPLANE_ENV=production`.
   */
  readonly production?: boolean;
  /** Secret that signs page tokens; shared by every replica. Default: kept in Redis, or random. */
  readonly tokenSecret?: string;
  /** Versions kept per job (default 50). */
  readonly maxVersions?: number;
  /** Prefix of every Redis key (default "ep"); tests use a random one to share a Redis. */
  readonly redisPrefix?: string;
  readonly clock?: Clock;
}

/** A running control plane. */
export interface ControlPlane {
  /** `host:port` of the gRPC server. */
  readonly grpcAddress: string;
  /** `http://host:port` of the HTTP server. */
  readonly httpUrl: string;
  readonly health: Health;
  /** The job store in use. */
  readonly store: JobStore;
  /** Stops accepting, drains for up to `graceMs`, closes connections. */
  stop(options?: { graceMs?: number }): Promise<void>;
}

/** Splits `host:port`, accepting `[::1]:port` and a bare `:port`. */
export function parseHostPort(address: string, field: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) {
    throw new EdgeplaneError(
      "invalid_argument",
      `${field}: "${address}" is not host:port (such as 127.0.0.1:8080)`,
      {
        details: [{ field, description: "expected host:port" }],
      },
    );
  }
  return { host: m[1] ?? (m[2] || "127.0.0.1"), port };
}

function validateStore(store: string): "memory" | URL {
  if (store === "memory") return "memory";
  let url: URL | undefined;
  try {
    url = new URL(store);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "redis:" && url.protocol !== "rediss:")) {
    throw new EdgeplaneError(
      "invalid_argument",
      `--store: "${store}" is neither "memory" nor redis://host:port`,
      {
        details: [{ field: "store", description: "expected memory or a redis:// URL" }],
      },
    );
  }
  return url;
}

/** Builds and starts a control plane. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const log = options.logger ?? createLogger({ component: "control-plane" });
  const grpcAddr = parseHostPort(options.grpcAddr ?? "127.0.0.1:50051", "grpc-addr");
  const httpAddr = parseHostPort(options.httpAddr ?? "127.0.0.1:8080", "http-addr");
  const store = validateStore(options.store ?? "memory");
  const health = new Health();
  const closers: Array<() => Promise<void>> = [];

  try {
    let redis: Redis | undefined;
    let jobStore: JobStore;
    let rolloutStores: DeploymentStores;
    let nodeStore: NodeStore;
    let desiredStore: DesiredStateStore;
    let tokenSecret: string | Buffer | undefined = options.tokenSecret;
    if (store !== "memory") {
      // Commands from independent work in one event-loop turn leave in one socket write.
      redis = coalesceWrites(new Redis(store.toString(), { lazyConnect: true, maxRetriesPerRequest: null }));
      redis.on("error", (err: Error) => log.warn("redis connection error", { err: err.message }));
      await redis.connect().catch((err: unknown) => {
        throw new EdgeplaneError(
          "unavailable",
          `cannot reach Redis at ${store.host}: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      });
      const client = redis;
      const durability = await checkRedisDurability(client);
      if (!durability.ok) {
        const production = options.production ?? process.env.EDGEPLANE_ENV === "production";
        const what = `Redis at ${store.host} can lose acknowledged writes: ${durability.problems.join("; ")}`;
        if (production) {
          throw new EdgeplaneError(
            "failed_precondition",
            `${what}. Run it with --appendonly yes --maxmemory-policy noeviction (see docs/api.md).`,
          );
        }
        log.warn(`${what} (allowed outside production)`);
      }
      jobStore = createRedisJobStore({ redis: client, prefix: options.redisPrefix });
      rolloutStores = deploymentStores(client, options.redisPrefix);
      nodeStore = createRedisNodeStore({ redis: client, prefix: options.redisPrefix });
      desiredStore = createRedisDesiredStateStore({ redis: client, prefix: options.redisPrefix });
      // Every replica signs page tokens with the same key, kept in Redis.
      tokenSecret ??= await sharedSecret(client, "page-tokens", options.redisPrefix);
      health.addProbe("redis", async () => {
        await client.ping();
      });
      closers.push(async () => {
        await client.quit().catch(() => client.disconnect());
      });
    } else {
      // The job store's fence reads the lease the memory rollout stores keep.
      const deploymentData = createMemoryDeploymentData();
      jobStore = createMemoryJobStore({ fencing: memoryFencing(deploymentData) });
      rolloutStores = deploymentStores(undefined, undefined, deploymentData);
      const nodeData = createMemoryNodeData();
      nodeStore = createMemoryNodeStore({ data: nodeData });
      desiredStore = createMemoryDesiredStateStore({ data: nodeData });
    }
    const storeInUse = jobStore;
    closers.push(() => storeInUse.close());
    const clock = options.clock ?? systemClock;
    const tokens = new PageTokens(tokenSecret);
    const jobs = new JobsService({
      store: jobStore,
      tokens,
      clock,
      maxVersions: options.maxVersions,
    });

    let bus: Bus;
    const natsUrls = options.nats ?? [];
    if (natsUrls.length > 0) {
      const natsBus = await connectNatsBus({ servers: natsUrls, name: "edgeplane-control-plane" });
      bus = natsBus;
      health.addProbe("nats", async () => {
        if (natsBus.isClosed) throw new Error("connection closed");
        await natsBus.flush();
      });
    } else {
      bus = (options.broker ?? new MemoryBroker()).connect();
    }
    const busInUse = bus;
    closers.push(() => busInUse.close());

    const grpcServer = new GrpcServer(log.child("grpc"));
    grpcServer.add(HealthService, createHealthService(health));
    grpcServer.add(SystemService, {
      async getVersion() {
        return {
          version: EDGEPLANE_VERSION,
          apiVersion: API_VERSION,
          runtime: `node ${process.versions.node}`,
          store: store === "memory" ? "memory" : "redis",
          busConnected: !bus.isClosed,
        };
      },
    });
    const router = new Router();
    // Node services (registry, placement, Nodes API) and the rollout runtime over them: a new
    // job version starts a deployment; placement gives each node the version the runtime names.
    const rollouts = await startDeploymentServices({
      nodes: {
        bus,
        jobStore,
        nodeStore,
        desiredStore,
        tokens,
        router,
        grpc: grpcServer,
        clock,
        logger: log.child("nodes"),
        ...options.nodes,
      },
      redis,
      redisPrefix: options.redisPrefix,
      stores: rolloutStores,
      maxVersions: options.maxVersions,
      clock,
      logger: log.child("rollouts"),
    });
    const nodes = rollouts.nodes;
    // A job written through this control plane's API is read from the change stream at once (by
    // the runtime, to start its deployment, and by placement), not at the next poll.
    jobs.onChange(rollouts.readJobChangesNow);
    // Pushed after the bus and store closers, so it stops before them (and releases the lease).
    closers.push(() => rollouts.stop());
    grpcServer.add(JobService, { ...createJobGrpcService(jobs), planJob: rollouts.planJob });
    const executions = await startExecutionServices({
      registry: nodes.registry,
      desiredStore,
      jobStore,
      redis,
      prefix: options.redisPrefix,
      tokens,
      router,
      grpc: grpcServer,
      clock,
      logger: log.child("executions"),
      cancelAssignment: createDesiredStateCanceler({ desiredStore, registry: nodes.registry, clock }),
      ...options.executions,
    });
    const grpcPort = await grpcServer.listen(`${grpcAddr.host}:${grpcAddr.port}`);
    closers.push(() => grpcServer.stop(5000));

    router.add("GET", "/healthz", async () => ({
      status: health.serving === "SERVING" ? 200 : 503,
      body: { status: health.serving === "SERVING" ? "ok" : "stopping" },
    }));
    router.add("GET", "/readyz", async () => {
      const report = await health.check();
      return {
        status: report.ready ? 200 : 503,
        body: { status: report.ready ? "ready" : "not_ready", ...report },
      };
    });
    router.add("GET", "/api/v1/version", async () => ({
      body: {
        version: EDGEPLANE_VERSION,
        api_version: API_VERSION,
        runtime: `node ${process.versions.node}`,
      },
    }));
    registerJobRoutes(router, jobs);
    const httpLog = log.child("http");
    const http: HttpServer = createServer((req, res) => {
      router.handle(req, res, httpLog).catch((err: unknown) => {
        httpLog.error("unhandled", { err });
        if (!res.headersSent)
          sendJson(res, 500, { error: { code: "internal", message: "internal error", details: [] } });
      });
    });
    http.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      http.once("error", reject);
      http.listen(httpAddr.port, httpAddr.host, () => {
        http.off("error", reject);
        resolve();
      });
    });
    const httpPort = (http.address() as AddressInfo).port;
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          http.close(() => resolve());
          http.closeIdleConnections();
          setTimeout(() => http.closeAllConnections(), 5000).unref();
        }),
    );

    // Last pushed, first run: ends log follows (SSE, gRPC streams) so the servers can drain.
    closers.push(() => executions.stop());
    health.setServing("SERVING");
    const hostOf = (h: string): string => (h.includes(":") ? `[${h}]` : h);
    const grpcAddress = `${hostOf(grpcAddr.host)}:${grpcPort}`;
    const httpUrl = `http://${hostOf(httpAddr.host)}:${httpPort}`;
    log.info("control plane started", { grpc: grpcAddress, http: httpUrl, store: options.store ?? "memory" });

    let stopping: Promise<void> | undefined;
    return {
      grpcAddress,
      httpUrl,
      health,
      store: jobStore,
      stop: ({ graceMs = 5000 } = {}) => {
        stopping ??= (async () => {
          health.setServing("NOT_SERVING");
          log.info("control plane stopping", { graceMs });
          // Reverse order: servers first (stop accepting, drain), then connections.
          for (const close of closers.reverse()) {
            await Promise.race([close(), new Promise((r) => setTimeout(r, graceMs).unref())]);
          }
          log.info("control plane stopped");
        })();
        return stopping;
      },
    };
  } catch (err) {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    throw err;
  }
}
