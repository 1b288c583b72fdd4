/**
 * `edgectl` as a user runs it: a real `edgectl server` process, client commands against it, and a
 * graceful SIGTERM. Needs the build (npm test builds first).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { waitFor } from "@edgeplane/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");
const bin = join(root, "packages/cli/dist/main.js");
const run = promisify(execFile);

async function edgectl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], { cwd: root, timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

describe("edgectl", () => {
  let server: ChildProcess;
  let grpc = "";
  let http = "";
  let stderr = "";

  beforeAll(async () => {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run npm run build first`);
    server = spawn(
      process.execPath,
      [bin, "server", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"],
      {
        cwd: root,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    server.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    await waitFor(() => /grpc=(\S+) http=(\S+)/.exec(stderr), {
      timeoutMs: 15_000,
      message: "server did not start",
    });
    const m = /grpc=(\S+) http=(\S+)/.exec(stderr);
    grpc = m?.[1] ?? "";
    http = m?.[2] ?? "";
  });

  afterAll(() => {
    if (server.exitCode === null) server.kill("SIGKILL");
  });

  it("prints client and server versions", async () => {
    const out = await edgectl("version", "--server", grpc);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/client: 0\.1\.0/);
    expect(out.stdout).toMatch(/server: 0\.1\.0 .* store memory/);
  });

  it("fails clearly when no server answers", async () => {
    const out = await edgectl("version", "--server", "127.0.0.1:1");
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/error: .*EDGEPLANE_SERVER/);
  });

  it("submits the examples, lists with a next-page command, gets, diffs", async () => {
    const first = await edgectl("job", "run", "-f", "examples/log-processor.yaml", "--server", grpc);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/id: job-\S+\nversion: 1\nchanged: true/);
    const again = await edgectl("job", "run", "-f", "examples/log-processor.yaml", "--server", grpc);
    expect(again.stdout).toMatch(/changed: false/);
    for (const f of ["canary-metrics.yaml", "uname-query.yaml", "rolling-config.yaml"]) {
      const r = await edgectl("job", "run", "-f", `examples/${f}`, "--server", grpc);
      expect(r.code, `${f}: ${r.stderr}`).toBe(0);
    }
    const list = await edgectl("job", "list", "-A", "--limit", "2", "--server", grpc);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^ID\s+NAMESPACE\s+NAME\s+TYPE\s+STATE\s+VERSION/);
    const next = /next page: edgectl (.*)$/m.exec(list.stdout);
    expect(next).not.toBeNull();
    const args = (next?.[1] ?? "").split(" ");
    const page2 = await edgectl(...args);
    expect(page2.code, page2.stderr).toBe(0);
    expect(page2.stdout.split("\n").filter((l) => l.startsWith("job-"))).toHaveLength(2);
    const get = await edgectl(
      "job",
      "get",
      "log-processor",
      "-n",
      "production",
      "-o",
      "json",
      "--server",
      grpc,
    );
    const job = JSON.parse(get.stdout) as { spec: { name: string }; status: { version: number } };
    expect(job.spec.name).toBe("log-processor");
  });

  it("refuses a bad file before calling the server, naming the field", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "edgectl-")), "bad.yaml");
    writeFileSync(file, "name: x\ntype: pipeline\ncolour: blue\n");
    const out = await edgectl("job", "run", "-f", file, "--server", "127.0.0.1:1");
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/spec\.colour: is not a field of the job spec/);
    const owned = await edgectl("job", "run", "-f", "package.json", "--server", "127.0.0.1:1");
    expect(owned.stderr).toMatch(/spec\.version: is set by the server/);
  });

  it("refuses a bad server flag before starting anything, naming the flag", async () => {
    const out = await edgectl("server", "--store", "redis://127.0.0.1:1", "--redis-prefix", "no spaces");
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/--redis-prefix: must be 1-64 characters/);
  });

  it("stops gracefully on SIGTERM with exit code 0", async () => {
    expect((await fetch(`${http}/healthz`)).status).toBe(200);
    server.kill("SIGTERM");
    const code = await new Promise<number | null>((resolve) => server.once("exit", resolve));
    expect(code).toBe(0);
    expect(stderr).toMatch(/control plane stopped/);
  });
});

describe("edgectl dev (npm start)", () => {
  it("brings up NATS, the control plane and 3 agents that the examples select, and stops on SIGTERM", async () => {
    const proc = spawn(
      process.execPath,
      [bin, "dev", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"],
      {
        cwd: root,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let err = "";
    proc.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    try {
      await waitFor(() => err.includes("dev stack is up"), {
        timeoutMs: 20_000,
        message: "dev stack did not start",
      });
      const grpc = /grpc=(\S+)/.exec(err)?.[1] ?? "";
      const http = /http=(\S+)/.exec(err)?.[1] ?? "";
      type Nodes = { items: Array<{ id: string; state: string }> };
      await waitFor(
        async () => {
          const nodes = (await (await fetch(`${http}/api/v1/nodes`)).json()) as Nodes;
          return nodes.items.filter((n) => n.state === "ready").length === 3;
        },
        { timeoutMs: 20_000, message: "3 ready agents" },
      );
      const run = await edgectl("job", "run", "-f", "examples/canary-metrics.yaml", "--server", grpc);
      expect(run.code, run.stderr).toBe(0);
      // The canary example selects tier in (edge,gateway) and !maintenance: all three dev agents;
      // its deployment gives the new version to canary_count (2) of them first.
      await waitFor(
        async () => {
          const nodes = (await (await fetch(`${http}/api/v1/nodes`)).json()) as {
            items: Array<{ executions?: string[] }>;
          };
          return nodes.items.filter((n) => (n.executions ?? []).length > 0).length >= 2;
        },
        { timeoutMs: 20_000, message: "the canaries running the example" },
      );
    } finally {
      proc.kill("SIGTERM");
      const code = await new Promise<number | null>((resolve) =>
        proc.exitCode !== null ? resolve(proc.exitCode) : proc.once("exit", resolve),
      );
      expect(code).toBe(0);
    }
  });
});
