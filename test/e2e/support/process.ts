/**
 * A control plane in a child process (for `kill -9` and SIGSTOP): started from the built
 * packages, ready when it prints its `{"ready": true, ...}` line; its output is kept for
 * assertions and shown when a test fails.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** What to run: `edgectl server` (default), or the support launcher (`EDGEPLANE_E2E_CONTROL_PLANE=launcher`). */
const LAUNCHER = fileURLToPath(new URL("./control-plane-process.mjs", import.meta.url));
const CLI = fileURLToPath(new URL("../../../packages/cli/dist/main.js", import.meta.url));

/** A control plane process. */
export interface ControlPlaneProcess {
  readonly pid: number;
  readonly httpUrl: string;
  readonly grpcAddress: string;
  readonly child: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Sends a signal (SIGKILL, SIGSTOP, SIGCONT, SIGTERM). */
  signal(sig: NodeJS.Signals): void;
  /** Resolves when it exited. */
  exited(): Promise<void>;
}

/** Options of {@link startControlPlaneProcess}. */
export interface ControlPlaneProcessOptions {
  readonly redisUrl: string;
  readonly natsUrl: string;
  readonly prefix: string;
  readonly env?: Record<string, string>;
}

/**
 * Starts a control plane process: `node packages/cli/dist/main.js server --store … --nats …
 * --redis-prefix …` (the product itself; timings in the environment), or with
 * `EDGEPLANE_E2E_CONTROL_PLANE=launcher` the support launcher, which composes the same services.
 */
export async function startControlPlaneProcess(
  options: ControlPlaneProcessOptions,
): Promise<ControlPlaneProcess> {
  const useCli = process.env.EDGEPLANE_E2E_CONTROL_PLANE !== "launcher";
  const args = useCli
    ? [
        CLI,
        "server",
        "--store",
        options.redisUrl,
        "--nats",
        options.natsUrl,
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--redis-prefix",
        options.prefix,
      ]
    : [LAUNCHER];
  const child = spawn(process.execPath, args, {
    env: {
      ...process.env,
      REDIS_URL: options.redisUrl,
      NATS_URL: options.natsUrl,
      PREFIX: options.prefix,
      EDGEPLANE_LEADER_TTL_MS: "2000",
      EDGEPLANE_LEADER_TICK_MS: "200",
      EDGEPLANE_ROLLOUT_SETTLE_MS: "3000",
      ...(useCli ? { EDGEPLANE_LOG_FORMAT: "json" } : {}),
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", () => {
      exited = true;
      resolve();
    });
  });
  const ready = new Promise<{ httpUrl: string; grpcAddress: string }>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString("utf8");
      for (const line of out.split("\n")) {
        if (!line.startsWith("{")) continue;
        try {
          const info = JSON.parse(line) as Record<string, unknown>;
          // The launcher's line, or the CLI server's "control plane started" log entry.
          if (info.ready === true) resolve(info as { httpUrl: string; grpcAddress: string });
          if (info.message === "control plane started")
            resolve({ httpUrl: String(info.http), grpcAddress: String(info.grpc) });
        } catch {
          // a partial or text line
        }
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    void exit.then(() => reject(new Error(`the control plane exited before it was ready:\n${out}`)));
    setTimeout(() => reject(new Error(`the control plane was not ready in 30 s:\n${out}`)), 30_000).unref();
  });
  const info = await ready;
  return {
    pid: child.pid ?? 0,
    httpUrl: info.httpUrl,
    grpcAddress: info.grpcAddress,
    child,
    output: () => out,
    signal: (sig) => {
      if (!exited) child.kill(sig);
    },
    exited: () => exit,
  };
}

/** A REST call against a process. */
export async function api(
  httpUrl: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${httpUrl}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}
