import { systemClock } from "@edgeplane/core";
import { createMemoryJobStore, type JobRecord } from "@edgeplane/store";
import { beforeEach, describe, expect, it } from "vitest";
import { PageTokens } from "../page-token.js";
import { JobsService } from "./service.js";

const config = { input: { generate: { interval: "1s", message: {} } }, output: { stdout: {} } };
const spec = (description = "") => ({ name: "web", type: "pipeline", config, description });

describe("JobsService.onChange", () => {
  let jobs: JobsService;
  let seen: Array<[number, string]>;
  beforeEach(() => {
    jobs = new JobsService({
      store: createMemoryJobStore(),
      tokens: new PageTokens("t"),
      clock: systemClock,
    });
    seen = [];
    jobs.onChange((job: JobRecord) => seen.push([job.revision, job.state]));
  });

  it("tells its listeners of every write that changed a job, and of no other", async () => {
    const created = await jobs.put(spec());
    expect(seen).toEqual([[1, "pending"]]);
    await jobs.put(spec()); // identical: nothing written
    expect(seen).toHaveLength(1);
    await jobs.put(spec("v2"));
    expect(seen).toHaveLength(2);
    await jobs.revert(created.job.id, 2); // the current spec: a no-op
    expect(seen).toHaveLength(2);
    await jobs.revert(created.job.id, 1);
    expect(seen).toHaveLength(3);
    await jobs.stop(created.job.id, "done");
    expect(seen.at(-1)?.[1]).toBe("stopped");
    await jobs.stop(created.job.id, "again"); // already stopped
    expect(seen).toHaveLength(4);
    await jobs.delete(created.job.id);
    expect(seen.at(-1)?.[1]).toBe("deleted");
    expect(seen).toHaveLength(5);
  });

  it("a failing listener does not fail the write, and a removed one is not called", async () => {
    const off = jobs.onChange(() => {
      throw new Error("listener trouble");
    });
    const put = await jobs.put(spec());
    expect(put.changed).toBe(true);
    off();
    const calls = seen.length;
    await jobs.put(spec("v2"));
    expect(seen.length).toBe(calls + 1);
  });
});
