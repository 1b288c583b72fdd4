#!/usr/bin/env node
/**
 * `edgectl`: the command line of edgeplane. Client commands talk gRPC to a control plane
 * (`--server`, `EDGEPLANE_SERVER`); `server` and `dev` run one.
 */
import { exitWith, reportError } from "@edgeplane/agent/cli";
import { EDGEPLANE_VERSION } from "@edgeplane/core";
import { agent, agentHelp } from "./commands/agent.js";
import { deployment, deploymentHelp } from "./commands/deployment.js";
import { dev, devHelp } from "./commands/dev.js";
import { exec, execHelp } from "./commands/exec.js";
import { job, jobHelp } from "./commands/job.js";
import { natsConfig, natsConfigHelp } from "./commands/nats-config.js";
import { server, serverHelp } from "./commands/server.js";
import { version, versionHelp } from "./commands/version.js";

const usage = `edgectl ${EDGEPLANE_VERSION}: the edgeplane command line

Usage: edgectl <command> [flags]

Commands:
  server     run a control plane
  dev        run the development stack (NATS, control plane, 3 local agents)
  version    print client and server versions
  job        submit, list, inspect, revert, stop and delete jobs
  exec       list, inspect, follow the logs of, and cancel a job's executions
  deployment   list, get, watch and steer rollouts; simulate one
  agent      run a node agent (on an edge box)
  nats-config  generate a nats-server config with per-node credentials

Run "edgectl <command> --help" for a command's flags.
`;

const commands: Record<string, { help: string; run: (argv: readonly string[]) => Promise<number> }> = {
  server: { help: serverHelp, run: server },
  dev: { help: devHelp, run: dev },
  version: { help: versionHelp, run: version },
  job: { help: jobHelp, run: job },
  exec: { help: execHelp, run: exec },
  agent: { help: agentHelp, run: agent },
  deployment: { help: deploymentHelp, run: deployment },
  "nats-config": { help: natsConfigHelp, run: natsConfig },
};

/** Runs one command line; resolves the exit code. Errors are printed once, here. */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "help" || name === "--help" || name === "-h") {
    process.stdout.write(usage);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`edgectl: unknown command "${name}"\n\n${usage}`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(command.help);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    return reportError(err);
  }
}

exitWith(main(process.argv.slice(2)), "edgectl");
