/**
 * The memory store against the JobStore conformance suite (the Redis store runs the same suite
 * in test/integration/store-redis.test.ts), plus what only the memory store has.
 */
import { describe, expect, it } from "vitest";
import { describeJobStoreConformance, putCommand, TestClock } from "./conformance/job-store-suite.js";
import { createMemoryDeploymentData, createMemoryLeaderLease, memoryFencing } from "./deployments/memory.js";
import { createMemoryJobStore } from "./memory-store.js";

describeJobStoreConformance(
  "memory",
  async () => {
    const data = createMemoryDeploymentData();
    return {
      store: createMemoryJobStore({ fencing: memoryFencing(data) }),
      lease: createMemoryLeaderLease({ data }),
      cleanup: async () => {},
    };
  },
  {
    numRuns: 60,
  },
);

describe("memory store", () => {
  it("caps the change stream like Redis' MAXLEN, keeping positions stable", async () => {
    const store = createMemoryJobStore({ eventsMaxLen: 3 });
    const clock = new TestClock();
    for (let i = 0; i < 5; i++) await store.putJob(putCommand(clock, "default", `j${i}`));
    const events = await store.readEvents("0", 10);
    expect(events.map((e) => e.id)).toEqual(["3", "4", "5"]);
    expect((await store.readEvents("3", 10)).map((e) => e.id)).toEqual(["4", "5"]);
    expect((await store.readEvents("1", 10)).map((e) => e.id)).toEqual(["3", "4", "5"]);
  });

  it("forgets an idempotency key after 24 hours (by the commands' clock)", async () => {
    const store = createMemoryJobStore();
    const clock = new TestClock();
    const first = await store.putJob(putCommand(clock, "default", "a", { idempotencyKey: "k" }));
    const later = putCommand(clock, "default", "a", {
      idempotencyKey: "k",
      config: { v: 2 },
      now: first.job.createdAt + 86_400_000,
    });
    const result = await store.putJob(later);
    expect(result).toMatchObject({ changed: true, created: false });
    expect(result.job.version).toBe(2);
  });
});
