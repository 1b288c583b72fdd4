/**
 * `edgectl agent`: run a node agent in the foreground until SIGTERM/SIGINT. The agent package is
 * loaded only when this command runs, so client commands never load it (its flags and usage come
 * from `@edgeplane/agent/cli`, which loads only `@edgeplane/core`).
 */
import { AGENT_FLAGS, AGENT_USAGE } from "@edgeplane/agent/cli";
import { EdgeplaneError } from "@edgeplane/core";
import { parseFlags } from "../args.js";

/** The usage of `edgectl agent`: the agent process's own. */
export const agentHelp = AGENT_USAGE;

/** Runs `edgectl agent`; resolves the exit code once the agent has stopped. */
export async function agent(argv: readonly string[]): Promise<number> {
  const { runAgent } = await import("@edgeplane/agent");
  const { values, positionals } = parseFlags("agent", argv, AGENT_FLAGS);
  if (positionals.length > 0) {
    throw new EdgeplaneError(
      "invalid_argument",
      `edgectl agent: unexpected argument ${JSON.stringify(positionals[0])}; see edgectl agent --help`,
    );
  }
  return runAgent(values);
}
