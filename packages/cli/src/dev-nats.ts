/**
 * The dev stack's NATS: a `nats-server` child process on a free loopback port (the machine's own
 * 4222 may be taken), stopped with the stack. Without the binary the stack falls back to an
 * in-process bus (agents then run in the same process).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";

/** A running dev nats-server. */
export interface DevNats {
  readonly url: string;
  stop(): Promise<void>;
}

/** The path of `nats-server`, or undefined when it is not on PATH. */
export function findNatsServer(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(dir, "nats-server");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts nats-server on a free port; resolves once it accepts clients. */
export async function startDevNats(binary: string): Promise<DevNats> {
  const port = await freePort();
  const child: ChildProcess = spawn(binary, ["-a", "127.0.0.1", "-p", String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`nats-server did not start within 10 s:\n${log}`)),
      10_000,
    );
    child.stderr?.on("data", (d: Buffer) => {
      log += d.toString();
      if (log.includes("Server is ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited with ${code}:\n${log}`));
    });
  });
  const kill = (): void => {
    if (child.exitCode === null) child.kill("SIGKILL");
  };
  process.once("exit", kill);
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(kill, 3000).unref();
      }),
  };
}
