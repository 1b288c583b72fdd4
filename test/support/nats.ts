/**
 * A nats-server of a test file's own. The run's shared one also carries other suites' node
 * registries, which could answer the register requests of a file's agents.
 */
import { type NatsServer, type NatsServerOptions, startNats } from "@edgeplane/testkit";
import { afterAll, beforeAll } from "vitest";

/**
 * Starts a nats-server before the file's tests and stops it after them; `server` may be read
 * once `beforeAll` has run.
 */
export function useOwnNats(options: NatsServerOptions = { jetstream: false }): {
  readonly server: NatsServer;
} {
  let server: NatsServer | undefined;
  beforeAll(async () => {
    server = await startNats(options);
  });
  afterAll(() => server?.stop({ graceMs: 1000 }));
  return {
    get server(): NatsServer {
      if (!server) throw new Error("useOwnNats: the server is read before beforeAll has run");
      return server;
    },
  };
}
