import { processGroupGone as groupGone, waitFor } from "@edgeplane/testkit";
import { describe, expect, it } from "vitest";
import { LineSplitter, runCommand } from "./process.js";
import { queryResult } from "./shared.js";

const SH = "/bin/sh";
const env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };

function run(script: string, extra: Partial<Parameters<typeof runCommand>[0]> = {}) {
  const lines: Array<[string, string]> = [];
  const controller = new AbortController();
  const done = runCommand({
    path: SH,
    args: ["-c", script],
    env,
    cwd: "/",
    signal: controller.signal,
    killGraceMs: 500,
    onLine: (stream, line) => lines.push([stream, line]),
    ...extra,
  });
  return { done, lines, controller };
}

describe("LineSplitter", () => {
  it("splits across chunks, strips CR, cuts long lines and skips their rest", () => {
    const out: string[] = [];
    const s = new LineSplitter(5, (l) => out.push(l));
    s.push(Buffer.from("ab\r\ncd"));
    s.push(Buffer.from("e\n0123456789\nxy"));
    s.end();
    expect(out).toEqual(["ab", "cde", "01234…", "xy"]);
  });
});

describe("runCommand", () => {
  it("captures output lines, stdout up to a cap, and the exit code", async () => {
    const { done, lines } = run("echo one; echo two >&2; echo three; exit 3", { captureStdoutBytes: 6 });
    const o = await done;
    expect(o.exitCode).toBe(3);
    expect(o.stdout.toString()).toBe("one\nth");
    expect(o.stdoutBytes).toBe(10);
    expect(o.lastStderrLine).toBe("two");
    expect(lines).toContainEqual(["stdout", "three"]);
    expect(lines).toContainEqual(["stderr", "two"]);
  });

  it("reports a program that cannot start", async () => {
    const o = await runCommand({
      path: "/nonexistent/tool",
      args: [],
      env,
      cwd: "/",
      signal: new AbortController().signal,
      killGraceMs: 100,
    });
    expect(o.spawnError?.message).toMatch(/ENOENT/);
    expect(o.exitCode).toBeNull();
  });

  it("stops the whole process group on abort, SIGKILL after the grace when SIGTERM is ignored", async () => {
    let pid = 0;
    const { done, controller } = run("trap '' TERM; sleep 30 & sleep 30; wait", {
      onSpawn: (p) => {
        pid = p;
      },
      killGraceMs: 200,
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(groupGone(pid)).toBe(false);
    const t = Date.now();
    controller.abort();
    const o = await done;
    expect(o.aborted).toBe(true);
    expect(Date.now() - t).toBeGreaterThanOrEqual(150);
    // The pipes close as the killed processes exit; the kernel may take a moment more to finish
    // them on a busy machine (a CI run saw one still there at this instant).
    await waitFor(() => groupGone(pid), { timeoutMs: 2000, intervalMs: 10, message: "the group to be gone" });
  });

  it("takes down what a command left running in its group when it exits", async () => {
    let pid = 0;
    const { done } = run("sleep 30 >/dev/null 2>&1 & echo started", {
      onSpawn: (p) => {
        pid = p;
      },
    });
    const o = await done;
    expect(o.exitCode).toBe(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(groupGone(pid)).toBe(true);
  });
});

describe("queryResult", () => {
  it("parses JSON, keeps text, and reports a cut", () => {
    expect(queryResult(Buffer.from('{"a": 1}\n'), 9)).toEqual({
      result: { a: 1 },
      resultTruncated: false,
      resultBytes: 9,
    });
    expect(queryResult(Buffer.from("Linux box 6.1\n"), 14)).toEqual({
      result: "Linux box 6.1",
      resultTruncated: false,
      resultBytes: 14,
    });
    expect(queryResult(Buffer.from('{"a": '), 100)).toEqual({
      result: '{"a": ',
      resultTruncated: true,
      resultBytes: 100,
    });
    const euro = Buffer.from("x€");
    expect(queryResult(euro.subarray(0, 2), 4).result).toBe("x");
  });
});
