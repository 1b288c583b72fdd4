/**
 * What the agent process (`dist/main.js`) and `edgectl` share on the command line: the flags and
 * usage of `edgectl agent`, and how an error ends a process. Importable as `@edgeplane/agent/cli`,
 * which loads nothing but `@edgeplane/core`, so `edgectl` may import it for every command.
 */
import { EdgeplaneError, isEdgeplaneError } from "@edgeplane/core";

/** The flags of `edgectl agent` (node:util `parseArgs` options). */
export const AGENT_FLAGS = {
  "node-id": { type: "string" },
  labels: { type: "string", multiple: true },
  nats: { type: "string", multiple: true },
  creds: { type: "string" },
  "data-dir": { type: "string" },
  config: { type: "string" },
  "heartbeat-interval": { type: "string" },
  "shutdown-grace": { type: "string" },
} as const;

/** Parsed values of {@link AGENT_FLAGS}. */
export interface AgentFlagValues {
  readonly "node-id"?: string;
  readonly labels?: readonly string[];
  readonly nats?: readonly string[];
  readonly creds?: string;
  readonly "data-dir"?: string;
  readonly config?: string;
  readonly "heartbeat-interval"?: string;
  readonly "shutdown-grace"?: string;
}

/** The usage text of the agent process (`edgectl agent --help` prints the same flags). */
export const AGENT_USAGE = `Usage: edgectl agent --node-id ID [flags]

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

/**
 * Prints `err` to stderr as `error: <message>` with one indented line per field detail; returns
 * the exit code: 2 for `invalid_argument` (a usage error), 1 for anything else.
 */
export function reportError(err: unknown): number {
  const e = isEdgeplaneError(err) ? err : EdgeplaneError.from(err);
  process.stderr.write(`error: ${e.message}\n`);
  for (const d of e.details) process.stderr.write(`  ${d.field}: ${d.description}\n`);
  return e.code === "invalid_argument" ? 2 : 1;
}

/**
 * Sets the process exit code to what `main` resolves; if it rejects (a bug: errors are reported
 * inside), prints `<program>: <error>` and sets exit code 1.
 */
export function exitWith(main: Promise<number>, program: string): void {
  main.then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${program}: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
