/**
 * `edgectl nats-config`: generate a nats-server authorization in which each node's agent may
 * only use its own subjects, plus one nkey seed file per node and one for the control plane.
 */
import { EdgeplaneError } from "@edgeplane/core";
import { parseFlags } from "../args.js";

export const natsConfigHelp = `Usage: edgectl nats-config --nodes n1,n2,... --out DIR [flags]

Writes DIR/nats-server.conf and one nkey seed per user (DIR/<node>.nk, DIR/control-plane.nk,
mode 0600). Each node may publish only ep.node.<id>.out.> and subscribe only to ep.node.<id>.in.>
and its reply inbox ep.inbox.<id>.>: no other node's subjects, no JetStream API. The control plane
gets its own user. Existing seed files in DIR are kept (so adding a node does not rotate the
others); run again with the full node list whenever nodes come or go, then reload nats-server.

Flags:
  --nodes n1,n2,...            node ids (repeatable or comma-separated)
  --out DIR                    output directory (created)
  --control-plane-user NAME    the control plane's user and seed file name (default control-plane)
  --port N                     add "port: N" to the config (default: none, nats-server's 4222)
  --rotate                     generate new seeds for every user, replacing existing ones
`;

/** Runs `edgectl nats-config`. */
export async function natsConfig(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags("nats-config", argv, {
    nodes: { type: "string", multiple: true },
    out: { type: "string" },
    "control-plane-user": { type: "string" },
    port: { type: "string" },
    rotate: { type: "boolean" },
  });
  if (positionals.length > 0) {
    throw new EdgeplaneError(
      "invalid_argument",
      `edgectl nats-config: unexpected argument ${JSON.stringify(positionals[0])}`,
    );
  }
  if (!values.out) throw new EdgeplaneError("invalid_argument", "--out DIR is required");
  const nodes = (values.nodes ?? []).flatMap((v) => v.split(","));
  let port: number | undefined;
  if (values.port !== undefined) {
    if (!/^\d+$/.test(values.port)) {
      throw new EdgeplaneError("invalid_argument", `--port: ${JSON.stringify(values.port)} is not a number`);
    }
    port = Number(values.port);
  }
  // The generator lives with the agent (it builds subjects from @edgeplane/bus); loaded on demand.
  const { writeNatsConfig } = await import("@edgeplane/agent");
  const result = await writeNatsConfig({
    nodes,
    outDir: values.out,
    controlPlaneUser: values["control-plane-user"],
    port,
    rotate: values.rotate ?? false,
  });
  const out = process.stdout;
  out.write(`wrote ${result.configFile}\n`);
  for (const c of result.credentials) {
    out.write(
      `  ${c.created ? "new " : "kept"} ${c.role === "node" ? "node" : "control plane"} ${c.name}: ${c.file} (${c.publicKey})\n`,
    );
  }
  for (const f of result.stale)
    out.write(`  stale: ${f} is no longer in the config; delete it once nats-server is reloaded\n`);
  out.write(
    `\nNext: copy each <node>.nk to its node (e.g. /etc/edgeplane/nats.nk, mode 0600) and start the agent with --creds;\n` +
      `run nats-server -c ${result.configFile} (or include it in your config) and reload it after changes.\n`,
  );
  return 0;
}
