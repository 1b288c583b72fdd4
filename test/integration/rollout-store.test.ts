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
    await store.create(sampleWrite("d1", { nodes: [["n1", { state: "pending" }]], targets: ["n1"] }), {
      epoch: a.held ? a.epoch : 0,
    });
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
        `${prefix}deploy:n:d1`,
        `${prefix}deploy:job:job-1`,
        `${prefix}leader`,
        `${prefix}leader:epoch`,
      ].sort(),
    );
    await dropPrefix(redis, prefix);
  });

  it("keep the node table in its own hash and the targets in `tgt`, written once", async () => {
    const prefix = `t${randomUUID().slice(0, 8)}:`;
    const store = createRedisDeploymentStore({ redis, prefix });
    await store.create(
      sampleWrite("d1", {
        record: { id: "d1" },
        summary: undefined,
        nodes: [
          ["n1", { state: "pending" }],
          ["n2", { state: "pending" }],
        ],
        targets: ["n2", "n1"],
      }),
    );
    expect(await redis.hgetall(store.keys.deploymentNodes("d1"))).toEqual({
      n1: '{"state":"pending"}',
      n2: '{"state":"pending"}',
    });
    expect(await redis.hmget(store.keys.deployment("d1"), "rec", "sum", "tgt")).toEqual([
      '{"revision":1,"id":"d1"}',
      null,
      '["n2","n1"]',
    ]);
    await store.update(sampleWrite("d1", { record: { id: "d1" }, nodes: [["n2", { state: "done" }]] }), {
      expectedRevision: 1,
    });
    expect(await redis.hget(store.keys.deploymentNodes("d1"), "n2")).toBe('{"state":"done"}');
    expect(await redis.hget(store.keys.deployment("d1"), "sum")).not.toBeNull();
    await dropPrefix(redis, prefix);
  });

  it("take the largest write: 100,000 node entries and targets in one create", async () => {
    const prefix = `t${randomUUID().slice(0, 8)}:`;
    const store = createRedisDeploymentStore({ redis, prefix });
    const ids = Array.from({ length: 100_000 }, (_, i) => `node-${i}`);
    await store.create(
      sampleWrite("big", { nodes: ids.map((id) => [id, { s: 1 }]), targets: ids, summary: undefined }),
    );
    expect(await redis.hlen(store.keys.deploymentNodes("big"))).toBe(100_000);
    const got = await store.get("big");
    expect(got?.targets).toHaveLength(100_000);
    expect(got?.nodes["node-99999"]).toEqual({ s: 1 });
    await dropPrefix(redis, prefix);
  });

  it("read deployments written before the node table had its own hash", async () => {
    const prefix = `t${randomUUID().slice(0, 8)}:`;
    const store = createRedisDeploymentStore({ redis, prefix });
    // As the store wrote them before: the node table inside `rec`, a `sum`, no node hash, no `tgt`.
    const rec = '{"revision":3,"id":"old","targets":["n1"],"nodes":{"n1":{"state":"done"}}}';
    await redis.hset(store.keys.deployment("old"), {
      rec,
      sum: '{"revision":3,"id":"old","state":"running"}',
      rev: "3",
      state: "running",
      job: "job-1",
      created: "1000",
      updated: "2000",
    });
    await redis.zadd(store.keys.all, 0, `${(1000).toString(16).padStart(12, "0")}old`);
    const got = await store.get("old");
    expect(got).toMatchObject({
      id: "old",
      revision: 3,
      state: "running",
      nodes: {},
      record: JSON.parse(rec),
    });
    expect(got?.targets).toBeUndefined();
    expect((await store.getSummary("old"))?.summary).toEqual({ revision: 3, id: "old", state: "running" });
    expect((await store.list({ limit: 5 })).items.map((d) => d.id)).toEqual(["old"]);
    // The next write moves on to the new layout: entries into the node hash, the record as written.
    await store.update(sampleWrite("old", { state: "running", nodes: [["n1", { state: "done" }]] }), {
      expectedRevision: 3,
    });
    expect((await store.get("old"))?.nodes).toEqual({ n1: { state: "done" } });
    await dropPrefix(redis, prefix);
  });
});
