/** `edgectl version`: the client's version and, unless --client, the server's. */
import { createClient, SystemService } from "@edgeplane/api";
import { API_VERSION, EDGEPLANE_VERSION, fromGrpcStatus } from "@edgeplane/core";
import { parseFlags, serverAddress } from "../args.js";

export const versionHelp = `Usage: edgectl version [--client] [--server host:port] [-o text|json]

Prints the client's version and the server's (GetVersion over gRPC).
`;

export async function version(argv: readonly string[]): Promise<number> {
  const { values } = parseFlags("version", argv, {
    client: { type: "boolean" },
    server: { type: "string" },
    output: { type: "string", short: "o" },
  });
  const client = { version: EDGEPLANE_VERSION, api_version: API_VERSION };
  const json = values.output === "json";
  if (values.client) {
    process.stdout.write(
      json ? `${JSON.stringify({ client })}\n` : `client: ${client.version} (${client.api_version})\n`,
    );
    return 0;
  }
  const address = serverAddress(values.server);
  const api = createClient(SystemService, address, { fromStatus: fromGrpcStatus, defaultTimeoutMs: 5000 });
  try {
    const v = await api.getVersion({});
    const serverInfo = {
      version: v.version,
      api_version: v.apiVersion,
      runtime: v.runtime,
      store: v.store,
      address,
    };
    if (json) process.stdout.write(`${JSON.stringify({ client, server: serverInfo })}\n`);
    else {
      process.stdout.write(`client: ${client.version} (${client.api_version})\n`);
      process.stdout.write(
        `server: ${v.version} (${v.apiVersion}) at ${address}, ${v.runtime}, store ${v.store}\n`,
      );
    }
    return 0;
  } finally {
    api.close();
  }
}
