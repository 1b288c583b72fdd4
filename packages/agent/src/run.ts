/**
 * Running an agent as a process: the flags of `edgectl agent` (and of `dist/main.js`), how they
 * combine with agent.yaml and the environment, and the SIGTERM/SIGINT handling.
 */
import { createLogger, EdgeplaneError, type Logger, parseDuration } from "@edgeplane/core";
import { type Agent, createAgent } from "./agent.js";
import type { AgentFlagValues } from "./cli.js";
import { type AgentConfig, DEFAULT_AGENT_CONFIG, loadAgentConfig } from "./config.js";
import type { Executor } from "./executor.js";
import { assertLabels, parseLabelFlags } from "./labels.js";

/** Everything an agent process needs, from flags, agent.yaml and the environment. */
export interface AgentSettings {
  readonly nodeId: string;
  readonly dataDir: string;
  readonly servers: readonly string[];
  readonly credsFile: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly heartbeatIntervalMs: number | undefined;
  readonly shutdownGraceMs: number;
  readonly config: AgentConfig;
}

/** The NATS server used when neither `--nats` nor agent.yaml names one. */
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

function durationFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined) {
    throw new EdgeplaneError(
      "invalid_argument",
      `--${name}: ${JSON.stringify(value)} is not a duration such as 5s`,
    );
  }
  return ms;
}

/**
 * Combines flags, agent.yaml (`--config`) and the environment (`EDGEPLANE_NODE_ID`, systemd's
 * `STATE_DIRECTORY`) into {@link AgentSettings}; throws `invalid_argument` naming what is missing.
 */
export async function resolveAgentSettings(
  values: AgentFlagValues,
  env: NodeJS.ProcessEnv = process.env,
): Promise<AgentSettings> {
  const config = values.config ? await loadAgentConfig(values.config) : DEFAULT_AGENT_CONFIG;
  const nodeId = values["node-id"] ?? config.nodeId ?? env.EDGEPLANE_NODE_ID;
  if (!nodeId) {
    throw new EdgeplaneError(
      "invalid_argument",
      "--node-id is required (or node_id in agent.yaml, or $EDGEPLANE_NODE_ID); it must match the node's NATS credentials",
    );
  }
  const dataDir = values["data-dir"] ?? config.dataDir ?? env.STATE_DIRECTORY?.split(":")[0];
  if (!dataDir) {
    throw new EdgeplaneError(
      "invalid_argument",
      "--data-dir is required (or data_dir in agent.yaml); the agent keeps what it applied there",
    );
  }
  const flagServers = (values.nats ?? [])
    .flatMap((v) => v.split(","))
    .map((s) => s.trim())
    .filter(Boolean);
  const servers =
    flagServers.length > 0
      ? flagServers
      : config.nats.servers.length > 0
        ? config.nats.servers
        : [DEFAULT_NATS_URL];
  const labels = { ...config.labels, ...parseLabelFlags(values.labels ?? []) };
  assertLabels(labels, "labels");
  const heartbeat =
    durationFlag("heartbeat-interval", values["heartbeat-interval"]) ?? config.heartbeatIntervalMs;
  if (heartbeat !== undefined && heartbeat < 50) {
    throw new EdgeplaneError("invalid_argument", "--heartbeat-interval: must be at least 50ms");
  }
  return {
    nodeId,
    dataDir,
    servers,
    credsFile: values.creds ?? config.nats.creds,
    labels,
    heartbeatIntervalMs: heartbeat,
    shutdownGraceMs:
      durationFlag("shutdown-grace", values["shutdown-grace"]) ?? config.shutdownGraceMs ?? 10_000,
    config,
  };
}

/** Options of {@link runAgent}. */
export interface RunAgentOptions {
  /** The executors to run with; default: the built-in ones agent.yaml enables. */
  readonly executors?: readonly Executor[];
  readonly logger?: Logger;
  readonly env?: NodeJS.ProcessEnv;
}

/** Stops `agent` on the first SIGTERM/SIGINT and resolves 0 (1 if stopping failed); a second signal exits at once. */
export function stopOnSignal(agent: Agent, graceMs: number, logger: Logger): Promise<number> {
  return new Promise((resolve) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) {
        logger.warn(`received ${signal} again, exiting now`);
        process.exit(1);
      }
      signalled = true;
      logger.info(`received ${signal}, stopping`, { grace_ms: graceMs });
      agent.stop({ graceMs }).then(
        () => {
          process.off("SIGTERM", onSignal);
          process.off("SIGINT", onSignal);
          resolve(0);
        },
        (err: unknown) => {
          logger.error("agent did not stop cleanly", { err });
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

/**
 * Runs an agent process until SIGTERM/SIGINT: resolves settings, starts the agent and resolves
 * the exit code once it has stopped. What `edgectl agent` and `dist/main.js` run.
 */
export async function runAgent(values: AgentFlagValues, options: RunAgentOptions = {}): Promise<number> {
  const settings = await resolveAgentSettings(values, options.env);
  const logger = options.logger ?? createLogger({ component: "agent" });
  const agent = createAgent({
    nodeId: settings.nodeId,
    dataDir: settings.dataDir,
    labels: settings.labels,
    executors: options.executors,
    executorConfig: settings.config.executors,
    nats: { servers: settings.servers, credsFile: settings.credsFile },
    heartbeatIntervalMs: settings.heartbeatIntervalMs,
    logger,
  });
  const stopped = stopOnSignal(agent, settings.shutdownGraceMs, logger);
  await agent.start();
  logger.info("agent running", { node: settings.nodeId, nats: settings.servers.join(",") });
  return stopped;
}
