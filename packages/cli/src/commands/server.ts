/** `edgectl server` and `edgectl dev`: run a control plane in the foreground until SIGTERM/SIGINT. */
import type { ControlPlane } from "@edgeplane/control-plane";
import { EdgeplaneError } from "@edgeplane/core";
import { parseFlags } from "../args.js";

export const serverHelp = `Usage: edgectl server [flags]

Runs the control plane in the foreground; SIGTERM or SIGINT stops it gracefully.

Flags:
  --grpc-addr host:port   gRPC listen address (default 127.0.0.1:50051)
  --http-addr host:port   HTTP listen address (default 127.0.0.1:8080)
  --store memory|URL      memory (default) or redis://host:port
  --redis-prefix PREFIX   prefix of every Redis key (default "ep:"; or $EDGEPLANE_REDIS_PREFIX):
                          control planes sharing a prefix are replicas of one another
  --nats URL              NATS server URL (repeatable, or comma-separated)
  --token-secret TEXT     secret that signs page tokens, shared by every replica
                          (or $EDGEPLANE_TOKEN_SECRET; default: kept in Redis, or random)
  --max-versions N        versions kept per job (default 50)
  --production            refuse a Redis that can lose writes (also EDGEPLANE_ENV=production)
`;

/** Waits for SIGTERM/SIGINT, then stops the control plane and resolves the exit code. */
export function runUntilSignal(cp: ControlPlane): Promise<number> {
  return new Promise((resolve) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) {
        // A second signal while draining: give up on the grace period.
        process.stderr.write(`received ${signal} again, exiting now\n`);
        process.exit(1);
      }
      signalled = true;
      cp.stop({ graceMs: 5000 }).then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

export async function server(argv: readonly string[]): Promise<number> {
  const { values } = parseFlags("server", argv, {
    "grpc-addr": { type: "string" },
    "http-addr": { type: "string" },
    store: { type: "string" },
    "redis-prefix": { type: "string" },
    nats: { type: "string", multiple: true },
    "token-secret": { type: "string" },
    "max-versions": { type: "string" },
    production: { type: "boolean" },
  });
  const maxVersions = values["max-versions"] === undefined ? undefined : Number(values["max-versions"]);
  if (
    maxVersions !== undefined &&
    (!Number.isInteger(maxVersions) || maxVersions < 1 || maxVersions > 10_000)
  ) {
    throw new EdgeplaneError("invalid_argument", "--max-versions: must be an integer from 1 to 10000");
  }
  const redisPrefix = values["redis-prefix"] ?? (process.env.EDGEPLANE_REDIS_PREFIX || undefined);
  if (redisPrefix !== undefined && !/^[A-Za-z0-9{}:._-]{1,64}$/.test(redisPrefix)) {
    throw new EdgeplaneError(
      "invalid_argument",
      '--redis-prefix: must be 1-64 characters of letters, digits and {}:._- (for example "ep:" or "{ep}:")',
    );
  }
  // Loaded here, not at the top: client commands never load the server.
  const { startControlPlane } = await import("@edgeplane/control-plane");
  const nats = (values.nats ?? []).flatMap((v) => v.split(",")).filter(Boolean);
  const cp = await startControlPlane({
    grpcAddr: values["grpc-addr"],
    httpAddr: values["http-addr"],
    store: values.store ?? "memory",
    redisPrefix,
    nats,
    tokenSecret: values["token-secret"] ?? process.env.EDGEPLANE_TOKEN_SECRET,
    maxVersions,
    production: values.production || undefined,
  });
  return runUntilSignal(cp);
}
