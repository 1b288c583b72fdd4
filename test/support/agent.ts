/** Real agents in integration tests: started with test defaults and stopped after the test. */
import { randomBytes } from "node:crypto";
import { type Agent, type AgentOptions, createAgent } from "@edgeplane/agent";
import { createLogger } from "@edgeplane/core";
import type { Cleanups } from "./cleanups.js";

/** A logger that prints nothing. */
export const quiet = createLogger({ component: "test", level: "error", sink: () => {} });

/** A short random hex id (`bytes` random bytes) to keep node ids unique across tests. */
export const uid = (bytes = 4): string => randomBytes(bytes).toString("hex");

/** Starts an agent (quiet, fast retries unless `options` says otherwise); it stops after the test. */
export async function startTestAgent(cleanups: Cleanups, options: AgentOptions): Promise<Agent> {
  const agent = createAgent({ retry: { baseMs: 50, maxMs: 500 }, logger: quiet, ...options });
  cleanups.push(() => agent.stop({ graceMs: 0 }));
  await agent.start();
  return agent;
}
