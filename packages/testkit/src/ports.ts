/**
 * Free loopback ports, asked of the OS (listen on 127.0.0.1:0, read the port, close).
 */
import { createServer } from "node:net";

/**
 * Ports testkit never hands out, even if free: the well-known NATS (client, cluster, monitor)
 * and Redis ports, which the developer's own or the machine's shared servers use.
 */
export const RESERVED_PORTS: ReadonlySet<number> = new Set([4222, 6222, 8222, 6379, 26379]);

/** Ports handed out by this process; never handed out twice, so parallel starts do not collide. */
const handedOut = new Set<number>();

/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago. Another process may still take it
 * before the server binds it; the server launchers retry with a new port when that happens.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await listenOnEphemeralPort();
    if (RESERVED_PORTS.has(port) || handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error("could not find a free loopback port in 50 attempts");
}

/** Returns `n` distinct free ports (see {@link freePort}). */
export async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < n; i++) ports.push(await freePort());
  return ports;
}

function listenOnEphemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("listen(0) returned no port"))));
    });
  });
}
