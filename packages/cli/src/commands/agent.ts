/**
 * `edgectl agent`: run a node agent in the foreground until SIGTERM/SIGINT. The agent package is
 * loaded only when this command runs, so client commands never load it.
 */
import { EdgeplaneError } from "@edgeplane/core";
import { parseFlags } from "../args.js";

export const agentHelp = `Usage: edgectl agent --node-id ID [flags]

Runs a node agent in the foreground: connects to NATS with the node's credentials, registers
with the control plane, runs what it is assigned, and reconnects forever. SIGTERM or SIGINT stops
it gracefully (final heartbeat, connection drained). See docs/agent.md.

Flags (flags win over agent.yaml):
  --node-id ID              node id: letters, digits, "-" and "_" (agent.yaml node_id, $EDGEPLANE_NODE_ID)
  --labels k=v,...          operator labels (repeatable); keys under edgeplane.io/ are the agent's own
  --nats URL                NATS server (repeatable or comma-separated; default nats://127.0.0.1:4222)
  --creds FILE              NATS credentials: the node's nkey seed from "edgectl nats-config", or a .creds file
  --data-dir DIR            where the agent keeps what it applied (default $STATE_DIRECTORY under systemd)
  --config FILE             agent.yaml: enabled executors and what they may run, labels, defaults
  --heartbeat-interval DUR  heartbeat period until the control plane sets one (default 5s)
  --shutdown-grace DUR      how long run-once work may finish on SIGTERM (default 10s)
`;

/** Runs `edgectl agent`; resolves the exit code once the agent has stopped. */
export async function agent(argv: readonly string[]): Promise<number> {
  const { AGENT_FLAGS, runAgent } = await import("@edgeplane/agent");
  const { values, positionals } = parseFlags("agent", argv, AGENT_FLAGS);
  if (positionals.length > 0) {
    throw new EdgeplaneError(
      "invalid_argument",
      `edgectl agent: unexpected argument ${JSON.stringify(positionals[0])}; see edgectl agent --help`,
    );
  }
  return runAgent(values);
}
