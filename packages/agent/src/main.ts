#!/usr/bin/env node
/**
 * The agent as a standalone process (`node packages/agent/dist/main.js --node-id ...`), the same
 * as `edgectl agent` without the rest of the CLI: for edge boxes that only need the agent.
 */
import { parseArgs } from "node:util";
import { EdgeplaneError } from "@edgeplane/core";
import { AGENT_FLAGS, AGENT_USAGE, exitWith, reportError } from "./cli.js";
import { runAgent } from "./run.js";

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(AGENT_USAGE);
    return 0;
  }
  try {
    let parsed: ReturnType<typeof parseArgs<{ options: typeof AGENT_FLAGS; strict: true }>>;
    try {
      parsed = parseArgs({ args: [...argv], options: AGENT_FLAGS, strict: true });
    } catch (err) {
      throw new EdgeplaneError("invalid_argument", `${(err as Error).message}; see --help`);
    }
    return await runAgent(parsed.values);
  } catch (err) {
    return reportError(err);
  }
}

exitWith(main(process.argv.slice(2)), "edgeplane-agent");
