import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { AssignmentSchema, ExecutionStatusSchema } from "@edgeplane/api";
import { afterEach, describe, expect, it } from "vitest";
import { loadState, type PersistedState, saveState, stateFilePath } from "./state-file.js";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "agent-state-"));
  dirs.push(d);
  return d;
}

const state: PersistedState = {
  nodeId: "n1",
  appliedRevision: 7,
  assignments: [
    create(AssignmentSchema, {
      executionId: "exe-1",
      jobId: "job-1",
      type: "query",
      desiredState: "running",
      config: { cmd: ["a", 1, true, null, { x: "y" }] },
      timeouts: { executionTimeout: 30 },
    }),
  ],
  finished: new Map([
    [
      "exe-1",
      create(ExecutionStatusSchema, {
        executionId: "exe-1",
        state: "finished",
        exitCode: 0,
        attempt: 1,
        finishTime: timestampFromMs(Date.UTC(2026, 0, 1)),
      }),
    ],
  ]),
  attempts: new Map([
    ["exe-1", 1],
    ["exe-2", 2],
  ]),
  retries: new Map([["exe-2", Date.UTC(2026, 0, 1, 0, 0, 4)]]),
};

describe("state file", () => {
  it("round-trips, including a zero exit code and free-form config", async () => {
    const dir = await tempDir();
    expect(await loadState(dir)).toBeUndefined();
    await saveState(dir, state, Date.UTC(2026, 0, 1));
    const back = await loadState(dir);
    expect(back?.appliedRevision).toBe(7);
    expect(back?.assignments[0]?.config).toEqual({ cmd: ["a", 1, true, null, { x: "y" }] });
    expect(back?.assignments[0]?.timeouts?.executionTimeout).toBe(30);
    expect(back?.finished.get("exe-1")?.exitCode).toBe(0);
    expect(back?.attempts.get("exe-1")).toBe(1);
    expect(back?.retries?.get("exe-2")).toBe(Date.UTC(2026, 0, 1, 0, 0, 4));
    expect((await stat(stateFilePath(dir))).mode & 0o777).toBe(0o600);
    const json = JSON.parse(await readFile(stateFilePath(dir), "utf8"));
    expect(json).toMatchObject({
      format: 1,
      node_id: "n1",
      applied_revision: 7,
      retries: { "exe-2": "2026-01-01T00:00:04.000Z" },
    });
    expect(await readdir(dir)).toEqual(["state.json"]); // no temp files left behind
  });

  it("refuses a corrupt or foreign file with a message that says what to do", async () => {
    const dir = await tempDir();
    await writeFile(stateFilePath(dir), "{ half a");
    await expect(loadState(dir)).rejects.toThrow(/is not JSON.*Move the file aside/);
    await writeFile(stateFilePath(dir), JSON.stringify({ format: 99, node_id: "n1", applied_revision: 1 }));
    await expect(loadState(dir)).rejects.toMatchObject({ code: "failed_precondition" });
  });
});
