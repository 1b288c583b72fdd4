/**
 * The deployment stores' conformance suite against a real Redis (the memory run is a unit test),
 * plus what only Redis has: the lease expires by Redis' own clock, keys stay under the prefix.
 */
import { randomUUID } from "node:crypto";
import { delay } from "@edgeplane/testkit";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  describeDeploymentStoreConformance,
  sampleWrite,
} from "../../packages/store/src/deployments/conformance/deployment-store-suite.js";
import {
  createRedisDeploymentStore,
  createRedisLeaderLease,
  createRedisNodeVersionStore,
} from "../../packages/store/src/deployments/redis.js";
import { dropPrefix } from "../support/redis.js";

let redis: Redis;

beforeAll(async () => {
  redis = new Redis(inject("redisUrl"), { maxRetriesPerRequest: null });
});

afterAll(async () => {
  await redis.quit();
});

describeDeploymentStoreConformance("redis", async () => {
  const prefix = `t${randomUUID().slice(0, 8)}:`;
  const client = new Redis(inject("redisUrl"), { maxRetriesPerRequest: null });
  const lease = createRedisLeaderLease({ redis: client, prefix });
  return {
    store: createRedisDeploymentStore({ redis: client, prefix }),
    versions: createRedisNodeVersionStore({ redis: client, prefix }),
    lease,
    expireLease: async () => {
      await client.del(lease.keys.lease);
    },
    close: async () => {
      await dropPrefix(redis, prefix);
      await client.quit();
    },
  };
});

describe("Redis deployment stores", () => {
  it("let the lease expire by its TTL, and write only under their prefix", async () => {
    const prefix = `t${randomUUID().slice(0, 8)}:`;
    const lease = createRedisLeaderLease({ redis, prefix });
    const store = createRedisDeploymentStore({ redis, prefix });
    const a = await lease.acquire("cp-a", 150);
    expect(a).toMatchObject({ held: true, fresh: true });
    await store.create(sampleWrite("d1"), { epoch: a.held ? a.epoch : 0 });
    expect(await lease.acquire("cp-b", 150)).toMatchObject({ held: false });
    await delay(300);
    expect(await lease.acquire("cp-b", 150)).toMatchObject({ held: true, fresh: true });
    const keys = (await redis.keys(`${prefix}*`)).sort();
    expect(keys).toEqual(
      [
        `${prefix}deploy:active`,
        `${prefix}deploy:all`,
        `${prefix}deploy:changes`,
        `${prefix}deploy:d:d1`,
        `${prefix}deploy:job:job-1`,
        `${prefix}leader`,
        `${prefix}leader:epoch`,
      ].sort(),
    );
    await dropPrefix(redis, prefix);
  });
});
