/**
 * The node stores' conformance suite against a real Redis (the memory run is a unit test), plus
 * what only Redis has: key prefixes isolate stores, and the layout of `keys.ts` is what is written.
 */
import { waitFor } from "@edgeplane/testkit";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  describeNodeStoreConformance,
  sampleNode,
} from "../../packages/store/src/nodes/conformance/node-store-suite.js";
import { createRedisDesiredStateStore, createRedisNodeStore } from "../../packages/store/src/nodes/redis.js";
import { dropPrefix, testPrefix } from "../support/redis.js";

let redis: Redis;

beforeAll(async () => {
  redis = new Redis(inject("redisUrl"), { maxRetriesPerRequest: null });
});

afterAll(async () => {
  await redis.quit();
});

describeNodeStoreConformance("redis", async ({ onCorrupt }) => {
  const prefix = testPrefix();
  const clients: Redis[] = [];
  const open = () => {
    const client = new Redis(inject("redisUrl"), { maxRetriesPerRequest: null });
    clients.push(client);
    return {
      nodes: createRedisNodeStore({ redis: client, prefix, onCorrupt }),
      desired: createRedisDesiredStateStore({ redis: client, prefix, onCorrupt }),
    };
  };
  const first = open();
  return {
    ...first,
    reopen: async () => open(),
    corruptNode: async (id, text) => {
      await redis.hset(first.nodes.keys.records, id, text);
    },
    close: async () => {
      await dropPrefix(redis, prefix);
      await Promise.all(clients.map((c) => c.quit()));
    },
  };
});

describe("Redis node stores", () => {
  it("write only under their prefix, in the layout of keys.ts", async () => {
    const a = testPrefix();
    const b = testPrefix();
    const storeA = createRedisNodeStore({ redis, prefix: a });
    const storeB = createRedisNodeStore({ redis, prefix: b });
    const desiredA = createRedisDesiredStateStore({ redis, prefix: a });
    try {
      await storeA.saveMany([sampleNode("n1")]);
      await desiredA.put({ nodeId: "n1", assignments: [], now: 1 });
      expect(await storeB.loadAll()).toEqual([]);
      expect((await redis.keys(`${a}*`)).sort()).toEqual([
        `${a}nodes:desired`,
        `${a}nodes:desired-rev`,
        `${a}nodes:rec`,
      ]);
      expect(await redis.hget(`${a}nodes:desired-rev`, "n1")).toBe("1");
    } finally {
      await dropPrefix(redis, a);
      await dropPrefix(redis, b);
    }
  });

  it("a store given a URL owns and closes its client", async () => {
    const prefix = testPrefix();
    const store = createRedisNodeStore({ redis: inject("redisUrl"), prefix });
    await store.saveMany([sampleNode("n1")]);
    await store.close();
    await waitFor(() => store.redis.status === "end", { message: "the store's own client to close" });
    await dropPrefix(redis, prefix);
  });
});
