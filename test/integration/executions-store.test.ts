/**
 * The execution and log stores' conformance suite against a real Redis (the memory run is a unit
 * test), plus what only Redis has: keys stay under their prefix in the layout of `keys.ts`.
 */
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  describeExecutionStoreConformance,
  sampleIdentity,
  sampleLine,
  sampleReport,
} from "../../packages/store/src/executions/conformance/execution-store-suite.js";
import { createRedisExecutionStore, createRedisLogStore } from "../../packages/store/src/executions/redis.js";
import { dropPrefix } from "../support/redis.js";

let redis: Redis;

beforeAll(async () => {
  redis = new Redis(inject("redisUrl"), { maxRetriesPerRequest: null });
});

afterAll(async () => {
  await redis.quit();
});

describeExecutionStoreConformance(
  "redis",
  async ({ logBounds }) => {
    const prefix = `t${randomUUID().slice(0, 8)}:`;
    const clients: Redis[] = [];
    const open = () => {
      const client = new Redis(inject("redisUrl"), { maxRetriesPerRequest: null });
      clients.push(client);
      return {
        executions: createRedisExecutionStore({ redis: client, prefix }),
        logs: createRedisLogStore({ redis: client, prefix, ...logBounds }),
      };
    };
    return {
      ...open(),
      reopen: async () => open(),
      close: async () => {
        await dropPrefix(redis, prefix);
        await Promise.all(clients.map((c) => c.quit()));
      },
    };
  },
  { numRuns: 40 },
);

describe("Redis execution stores", () => {
  it("write only under their prefix, in the layout of keys.ts", async () => {
    const prefix = `t${randomUUID().slice(0, 8)}:`;
    const store = createRedisExecutionStore({ redis, prefix });
    const logs = createRedisLogStore({ redis, prefix });
    try {
      await store.observe(sampleReport("e1", { state: "finished", exitCode: 0 }), sampleIdentity("e1"));
      await store.ensure([sampleIdentity("e2", { nodeId: "n2" })], 1);
      await logs.append("e1", [sampleLine(1)], 0);
      expect((await redis.keys(`${prefix}*`)).sort()).toEqual(
        [
          `${prefix}exec:ended`,
          `${prefix}exec:job:job-1:live`,
          `${prefix}exec:log:e1`,
          `${prefix}exec:logm:e1`,
          `${prefix}exec:node:n1`,
          `${prefix}exec:node:n2`,
          `${prefix}exec:r:e1`,
          `${prefix}exec:r:e2`,
        ].sort(),
      );
      expect(await redis.hget(`${prefix}exec:r:e1`, "state")).toBe("finished");
      await store.archive(Number.MAX_SAFE_INTEGER, 5, 10);
      expect(await redis.zcard(`${prefix}exec:job:job-1:arch`)).toBe(1);
      expect(await redis.zscore(`${prefix}exec:archived`, "e1")).toBe("5");
      expect(await redis.sismember(`${prefix}exec:node:n1`, "e1")).toBe(0);
    } finally {
      await dropPrefix(redis, prefix);
    }
  });
});
