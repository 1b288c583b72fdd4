/**
 * `edgectl dev` (what `npm start` runs): the whole stack on one machine with embedded defaults: a
 * nats-server child process on a free port (or, without the binary, an in-process bus), the
 * control plane on the memory store, and local agents whose labels make the examples/ jobs
 * select something. State lives in a temp dir and is gone on exit.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, EdgeplaneError } from "@edgeplane/core";
import { parseFlags } from "../args.js";
import { findNatsServer, startDevNats } from "../dev-nats.js";
import { runUntilSignal } from "./server.js";

export const devHelp = `Usage: edgectl dev [flags]

Runs the development stack: nats-server on a free port (or an in-process bus when nats-server
is not installed), a control plane on the memory store (gRPC 127.0.0.1:50051, HTTP 127.0.0.1:8080)
and 3 local agents. Ctrl-C stops everything; nothing is kept.

Flags:
  --grpc-addr host:port   gRPC listen address (default 127.0.0.1:50051)
  --http-addr host:port   HTTP listen address (default 127.0.0.1:8080)
  --agents N              local agents (default 3, at most 20)
  --nats URL              use this NATS instead of starting one
`;

/** The dev fleet: labels chosen so every job in examples/ selects some of them. */
export const DEV_AGENTS = [
  { id: "edge-1", labels: { env: "production", region: "eu-west", tier: "edge" } },
  { id: "edge-2", labels: { env: "production", region: "eu-west", tier: "gateway" } },
  { id: "edge-3", labels: { env: "staging", region: "us-west", tier: "edge" } },
] as const;

/** What dev agents may do: enough to run the examples, nothing outside the temp dir. */
function devAgentYaml(dir: string): string {
  return `executors:
  pipeline:
    enabled: true
    health_window: 5s
    allowed_input_paths: ["/var/log/app/*", "${dir}/**"]
    allowed_output_paths: ["${dir}/**"]
    nats_subjects_allowed: ["metrics.>", "logs.>"]
  exec:
    enabled: true
    allow:
      - { command: uname, args: any }
      - { command: df, args: any }
  config:
    enabled: true
    root_dir: ${dir}/config
    reload_allow:
      - { command: "true" }
`;
}

export async function dev(argv: readonly string[]): Promise<number> {
  const { values } = parseFlags("dev", argv, {
    "grpc-addr": { type: "string" },
    "http-addr": { type: "string" },
    agents: { type: "string" },
    nats: { type: "string" },
  });
  const count = values.agents === undefined ? 3 : Number(values.agents);
  if (!Number.isInteger(count) || count < 0 || count > 20) {
    throw new EdgeplaneError("invalid_argument", "--agents: must be an integer from 0 to 20");
  }
  // Loaded here, not at the top: client commands never load the server or the agent.
  const [{ startControlPlane }, { createAgent, parseAgentConfig }, { MemoryBroker }] = await Promise.all([
    import("@edgeplane/control-plane"),
    import("@edgeplane/agent"),
    import("@edgeplane/bus"),
  ]);
  const dir = mkdtempSync(join(tmpdir(), "edgeplane-dev-"));
  // The config executor writes only under an existing root_dir.
  mkdirSync(join(dir, "config"));
  const cleanups: Array<() => Promise<void>> = [async () => rmSync(dir, { recursive: true, force: true })];
  try {
    let natsUrl = values.nats;
    let transport = natsUrl ? `NATS ${natsUrl}` : "";
    const binary = natsUrl ? undefined : findNatsServer();
    if (binary) {
      const nats = await startDevNats(binary);
      cleanups.push(() => nats.stop());
      natsUrl = nats.url;
      transport = `nats-server ${nats.url} (agents on other machines can join with --nats ${nats.url})`;
    }
    const broker = natsUrl ? undefined : new MemoryBroker();
    if (broker) transport = "in-process bus (install nats-server to let outside agents join)";

    const cp = await startControlPlane({
      grpcAddr: values["grpc-addr"],
      httpAddr: values["http-addr"],
      store: "memory",
      nats: natsUrl ? [natsUrl] : [],
      broker,
    });
    const agentConfig = parseAgentConfig(devAgentYaml(dir), "dev agent.yaml");
    const agents: Array<ReturnType<typeof createAgent>> = [];
    for (let i = 0; i < count; i++) {
      const def = DEV_AGENTS[i % DEV_AGENTS.length] as (typeof DEV_AGENTS)[number];
      const id = i < DEV_AGENTS.length ? def.id : `edge-${i + 1}`;
      const agent = createAgent({
        nodeId: id,
        dataDir: join(dir, "agents", id),
        labels: def.labels,
        executorConfig: agentConfig.executors,
        ...(broker ? { bus: broker.connect() } : { nats: { servers: [natsUrl as string] } }),
        heartbeatIntervalMs: 2000,
        logger: createLogger({ component: "agent" }),
      });
      await agent.start();
      agents.push(agent);
    }
    process.stderr.write(
      `\nedgeplane dev stack is up
  gRPC:       ${cp.grpcAddress}   (npx edgectl job run -f examples/canary-metrics.yaml)
  HTTP:       ${cp.httpUrl}   (${cp.httpUrl}/api/v1/nodes, ${cp.httpUrl}/api/v1/jobs?namespace=*)
  transport:  ${transport}
  agents:     ${agents.map((a) => a.nodeId).join(", ") || "none"}
  store:      memory (state is lost on exit)
  stop with Ctrl-C\n\n`,
    );
    const code = await runUntilSignal({
      ...cp,
      stop: async (opts) => {
        await Promise.all(agents.map((a) => a.stop({ graceMs: 2000 })));
        await cp.stop(opts);
      },
    });
    return code;
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }
}
