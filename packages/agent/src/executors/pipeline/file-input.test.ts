import { appendFile, mkdir, mkdtemp, rename, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FileInput, type FileInputOptions, lineMessage } from "./file-input.js";
import type { Message } from "./runtime.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "tail-"));
  cleanups.push(() => rm(d, { recursive: true, force: true }));
  return d;
}

/** A file input with fast timings, and a reader that collects what it hands out. */
async function tail(dir: string, options: Partial<FileInputOptions> = {}) {
  const logs: string[] = [];
  const input = new FileInput({
    paths: [join(dir, "*.log")],
    allowed: [dir],
    maxBuffer: 100,
    offsetsFile: join(dir, "offsets.json"),
    pollIntervalMs: 5,
    scanIntervalMs: 20,
    rotateWaitMs: 80,
    log: (level, text) => logs.push(`${level} ${text}`),
    ...options,
  });
  const controller = new AbortController();
  const got: Message[] = [];
  await input.open();
  const reading = (async () => {
    for (;;) {
      const batch = await input.next(controller.signal);
      if (!batch) return;
      got.push(...batch);
    }
  })();
  const stop = async () => {
    controller.abort();
    await reading;
    await input.close();
  };
  cleanups.push(stop);
  const lines = () => got.map((m) => (m as { line?: string }).line ?? JSON.stringify(m));
  const until = async (n: number) => {
    const deadline = Date.now() + 3000;
    while (got.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    return lines();
  };
  return { input, got, lines, until, stop, logs };
}

describe("FileInput", () => {
  it("tails existing files from their end and new files from their start", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "a.log"), "old 1\nold 2\n");
    const t = await tail(dir);
    await appendFile(join(dir, "a.log"), "new 1\n");
    expect(await t.until(1)).toEqual(["new 1"]);
    await writeFile(join(dir, "b.log"), "b 1\nb 2\n");
    await writeFile(join(dir, "ignored.txt"), "x\n");
    expect(await t.until(3)).toEqual(["new 1", "b 1", "b 2"]);
    expect(t.got[1]).toEqual({ line: "b 1", path: join(dir, "b.log") });
  });

  it("emits JSON lines as objects, skips empty lines, and waits for a line's newline", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "a.log"), "");
    const t = await tail(dir);
    await appendFile(join(dir, "a.log"), '{"level":"info","n":1}\n\n[1,2]\npart');
    expect(await t.until(2)).toEqual(['{"level":"info","n":1}', "[1,2]"]);
    await appendFile(join(dir, "a.log"), "ial\n");
    expect(await t.until(3)).toEqual(['{"level":"info","n":1}', "[1,2]", "partial"]);
    expect(t.got[0]).toEqual({ level: "info", n: 1 });
  });

  it("survives rotation by rename: drains the old file, reads the new one from its start", async () => {
    const dir = await tempDir();
    const file = join(dir, "app.log");
    await writeFile(file, "");
    const t = await tail(dir);
    await appendFile(file, "before 1\n");
    expect(await t.until(1)).toEqual(["before 1"]);
    await rename(file, join(dir, "app.log.1"));
    await appendFile(join(dir, "app.log.1"), "late write to the old file\n");
    await writeFile(file, "after 1\n");
    await appendFile(file, "after 2\n");
    const got = await t.until(4);
    expect(got.slice().sort()).toEqual(["after 1", "after 2", "before 1", "late write to the old file"]);
    expect(t.logs.some((l) => /was rotated|was moved or removed/.test(l))).toBe(true);
  });

  it("survives copytruncate: reads again from the start", async () => {
    const dir = await tempDir();
    const file = join(dir, "app.log");
    await writeFile(file, "");
    const t = await tail(dir);
    await appendFile(file, "line one that is long enough\n");
    expect(await t.until(1)).toHaveLength(1);
    await truncate(file, 0);
    await new Promise((r) => setTimeout(r, 30));
    await appendFile(file, "after truncate\n");
    expect(await t.until(2)).toEqual(["line one that is long enough", "after truncate"]);
    expect(t.logs.some((l) => l.includes("was truncated"))).toBe(true);
  });

  it("resumes from the saved offset of the same file after a restart", async () => {
    const dir = await tempDir();
    const file = join(dir, "app.log");
    await writeFile(file, "");
    const first = await tail(dir);
    await appendFile(file, "one\ntwo\n");
    await first.until(2);
    await first.stop(); // saves the offsets
    await appendFile(file, "three (while stopped)\n");
    const second = await tail(dir);
    expect(await second.until(1)).toEqual(["three (while stopped)"]);
  });

  it("refuses a directory that does not exist, and skips files that resolve outside the allowed paths", async () => {
    const dir = await tempDir();
    await expect(
      new FileInput({ paths: [join(dir, "missing", "*.log")], allowed: [dir], maxBuffer: 10 }).open(),
    ).rejects.toThrow(/input\.file\.paths\[0\]: directory .*missing of .* does not exist on this node/);

    const outside = await tempDir();
    await writeFile(join(outside, "secret"), "s3cret\n");
    const logs = join(dir, "logs");
    await mkdir(logs);
    await symlink(join(outside, "secret"), join(logs, "x.log"));
    const t = await tail(logs, { allowed: [logs] });
    await appendFile(join(outside, "secret"), "more\n");
    await new Promise((r) => setTimeout(r, 60));
    expect(t.got).toEqual([]);
    expect(t.logs.join("\n")).toMatch(/skipped .*x\.log: it resolves to .*secret, outside agent\.yaml/);
  });

  it("cuts over-long lines", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, "a.log"), "");
    const t = await tail(dir, { maxLineBytes: 8 });
    await appendFile(join(dir, "a.log"), `${"x".repeat(20)}\nok\n`);
    expect(await t.until(2)).toEqual(["xxxxxxxx…", "ok"]);
  });

  it("turns a line into a message", () => {
    expect(lineMessage('{"a":1}', "/x")).toEqual({ a: 1 });
    expect(lineMessage("{not json", "/x")).toEqual({ line: "{not json", path: "/x" });
    expect(lineMessage("42", "/x")).toEqual({ line: "42", path: "/x" });
  });
});
