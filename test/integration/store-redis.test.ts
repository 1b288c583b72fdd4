/**
 * The Redis JobStore against the shared Redis of the run: the conformance suite (the memory
 * store runs the same one in the unit project), then what is specific to Redis: the key layout,
 * index bookkeeping, the records the bench loader writes, script-cache loss, error mapping,
 * the durability check, and a property that memory and Redis answer every command sequence
 * identically.
 */
import { randomBytes } from "node:crypto";
import { JOB_STATES, JOB_TYPES, type JobStateType } from "@edgeplane/core";
import {
  checkRedisDurability,
  createMemoryJobStore,
  createRedisJobStore,
  createRedisLeaderLease,
  type JobRecord,
  type JobStore,
  type ListJobsQuery,
  type RedisJobStore,
} from "@edgeplane/store";
import {
  describeJobStoreConformance,
  listAll,
  putCommand,
  rejection,
  TestClock,
} from "@edgeplane/store/conformance";
import {
  encodeRecord,
  labelsSlot,
  nameMember,
  scriptSource,
  specDigest,
  timeMember,
} from "@edgeplane/store/internal";
import { startRedis, waitFor } from "@edgeplane/testkit";
import fc from "fast-check";
import { Redis } from "ioredis";
import { afterAll, afterEach, describe, expect, inject, it } from "vitest";
import { dropPrefix } from "../support/redis.js";

const redisUrl = inject("redisUrl");
const client = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
afterAll(() => client.quit());

/** A random key prefix per store, so tests never see each other's keys. */
const randomPrefix = (): string => `t:${randomBytes(6).toString("hex")}:`;

/** Deletes every key under `prefix`. */

async function keysOf(prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== "0");
  return found.sort();
}

describeJobStoreConformance(
  "redis",
  async () => {
    const prefix = randomPrefix();
    const store = createRedisJobStore({ redis: client, prefix });
    return {
      store,
      lease: createRedisLeaderLease({ redis: client, prefix }),
      cleanup: async () => {
        await store.close();
        await dropPrefix(client, prefix);
      },
    };
  },
  { numRuns: 25 },
);

describe("Redis job store", () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => {});
  });
  function newStore(options: { eventsMaxLen?: number } = {}): RedisJobStore {
    const prefix = randomPrefix();
    const store = createRedisJobStore({ redis: client, prefix, ...options });
    cleanups.push(() => dropPrefix(client, prefix));
    return store;
  }

  it("writes only the documented keys, all under its prefix", async () => {
    const store = newStore();
    const clock = new TestClock();
    const { job } = await store.putJob(
      putCommand(clock, "ns1", "a", { type: "query", idempotencyKey: "req" }),
    );
    await store.putJob(putCommand(clock, "ns1", "a", { type: "query", config: { v: 2 } }));
    await store.updateStatus(job.id, { state: "running", message: "", now: clock.tick() });
    const p = store.keys.prefix;
    expect(await keysOf(p)).toEqual(
      [
        `${p}idem:req`,
        `${p}jobs:events`,
        `${p}jobs:idx:ns1:running:query:created`,
        `${p}jobs:idx:ns1:running:query:name`,
        `${p}jobs:idx:ns1:running:query:updated`,
        `${p}jobs:ns`,
        `${p}jobs:rec`,
        `${p}jobs:ver`,
      ].sort(),
    );
    expect(await client.ttl(`${p}idem:req`)).toBeGreaterThan(86_000);
    expect(await client.hkeys(store.keys.versions)).toEqual([`${job.id}:1`]);
  });

  it("reads, changes and lists records whose spec was stored as plain JSON (before compression)", async () => {
    const store = newStore();
    const clock = new TestClock();
    const cmd = putCommand(clock, "ns", "legacy", { config: { v: 1, text: "plain" } });
    const { job } = await store.putJob(cmd);
    const packed = (await client.hget(store.keys.records, job.id)) as string;
    expect(packed.slice(packed.indexOf("\n") + 1).startsWith("~1")).toBe(true);
    // Rewrite it as an older control plane stored it: the same meta, the spec as JSON.
    const legacy = `${packed.slice(0, packed.indexOf("\n"))}\n${JSON.stringify(cmd.spec)}`;
    await client.hset(store.keys.records, job.id, legacy);
    const fresh = createRedisJobStore({ redis: client, prefix: store.keys.prefix });
    expect((await fresh.getJob(job.id))?.spec).toEqual(cmd.spec);
    expect((await fresh.putJob({ ...cmd, now: clock.tick() })).changed).toBe(false);
    const running = await fresh.updateStatus(job.id, { state: "running", message: "", now: clock.tick() });
    expect(running.spec).toEqual(cmd.spec);
    const page = await fresh.listJobs({
      namespace: "ns",
      limit: 10,
      orderBy: "created_at",
      order: "desc",
      includeDeleted: false,
    });
    expect(page.items.map((j) => j.spec)).toEqual([cmd.spec]);
    // A new version keeps the plain old spec as version 1 and stores the new one compressed.
    const v2 = putCommand(clock, "ns", "legacy", { config: { v: 2 } });
    expect((await fresh.putJob(v2)).job.version).toBe(2);
    expect((await fresh.getVersion(job.id, 1))?.spec).toEqual(cmd.spec);
    expect((await fresh.listVersions(job.id, { limit: 10 })).items.map((v) => v.spec)).toEqual([
      v2.spec,
      cmd.spec,
    ]);
  });

  it("keeps exactly three index entries per job, in the job's own partition", async () => {
    const store = newStore();
    const clock = new TestClock();
    const jobs: JobRecord[] = [];
    for (let i = 0; i < 12; i++) {
      jobs.push(
        (await store.putJob(putCommand(clock, `ns${i % 2}`, `j${i}`, { type: JOB_TYPES[i % 4] }))).job,
      );
    }
    const states = JOB_STATES.filter((s) => s !== "deleted");
    for (const [i, j] of jobs.entries()) {
      if (i % 3 === 0) await store.deleteJob(j.id, clock.tick());
      else
        await store.updateStatus(j.id, {
          state: states[i % states.length] as JobStateType,
          message: "",
          now: clock.tick(),
        });
      if (i % 4 === 1)
        await store.putJob(putCommand(clock, j.namespace, j.name, { type: "config", config: { i } }));
    }
    // Re-submitting a deleted name (i = 9) created a 13th job.
    expect(await client.hlen(store.keys.records)).toBe(13);
    let entries = 0;
    for (const key of await keysOf(`${store.keys.prefix}jobs:idx:`)) entries += await client.zcard(key);
    expect(entries).toBe(3 * 13);
    for (const j of jobs) {
      const now = (await store.getJob(j.id)) as JobRecord;
      for (const kind of ["created", "updated", "name"] as const) {
        const member =
          kind === "name"
            ? nameMember(now.name, now.id)
            : timeMember(kind === "created" ? now.createdAt : now.updatedAt, now.id);
        expect(await client.zscore(store.keys.index(now.namespace, now.state, now.type, kind), member)).toBe(
          "0",
        );
      }
    }
  });

  it("stores records byte for byte as encodeRecord (what the list benchmark loads) does", async () => {
    const store = newStore();
    const clock = new TestClock();
    const cmd = putCommand(clock, "default", "enc", {
      labels: { a: "b/c" },
      config: { url: "http://x/y", del: "\u007f" },
    });
    const { job } = await store.putJob(cmd);
    const now = clock.tick();
    const updated = await store.updateStatus(job.id, {
      state: "running",
      message: "up/down é",
      details: { k: "v" },
      deploymentId: "dep/1",
      now,
    });
    const expected = encodeRecord(
      {
        namespace: "default",
        name: "enc",
        type: "pipeline",
        version: 1,
        revision: 2,
        stableVersion: 0,
        state: "running",
        message: "up/down é",
        details: { k: "v" },
        deploymentId: "dep/1",
        createdAt: cmd.now,
        updatedAt: now,
        labels: labelsSlot(cmd.labels, cmd.spec),
        digest: specDigest(cmd.type, cmd.labels, cmd.spec),
        versionCreatedAt: cmd.now,
        versionKind: "submit",
        sourceVersion: 0,
        oldestVersion: 1,
      },
      JSON.stringify(cmd.spec),
    );
    expect(await client.hget(store.keys.records, job.id)).toBe(expected);
    expect(updated.stateMessage).toBe("up/down é");
  });

  it("recovers when Redis forgets its scripts (SCRIPT FLUSH, a restart)", async () => {
    // Its own server: flushing the shared one's script cache would disturb other test files.
    const server = await startRedis();
    cleanups.push(() => server.stop({ graceMs: 1000 }));
    const own = new Redis(server.url);
    cleanups.push(async () => own.disconnect());
    const store = createRedisJobStore({ redis: own });
    const clock = new TestClock();
    await store.putJob(putCommand(clock, "default", "a"));
    await own.script("FLUSH");
    const { job } = await store.putJob(putCommand(clock, "default", "b"));
    expect(job.name).toBe("b");
    const page = await store.listJobs({
      namespace: "default",
      limit: 10,
      orderBy: "name",
      order: "asc",
      includeDeleted: false,
    });
    expect(page.items.map((j) => j.name)).toEqual(["a", "b"]);
  });

  it("merges pages the same way when Lua's < is not byte order (a non-C locale)", async () => {
    const store = newStore();
    const clock = new TestClock();
    const names = ["b", "a", "ab", "A", "é", "😀", "z-1", "z_1", "Z"];
    for (const [i, n] of names.entries()) {
      await store.putJob(
        putCommand(clock, `ns${i % 2}`, n, { type: JOB_TYPES[i % 4], now: clock.tick(i % 3) }),
      );
    }
    const native = scriptSource("listJobs");
    const fallback = native.replace('if ("B" < "a")', 'if false and ("B" < "a")');
    expect(fallback).not.toBe(native);
    const p = store.keys.prefix;
    for (const kind of ["created", "updated", "name"]) {
      for (const dir of ["asc", "desc"]) {
        const args = [p, "*", "pending,running", JOB_TYPES.join(","), kind, dir, "", 50];
        const keys = [store.keys.records, store.keys.namespaces];
        expect(await client.eval(fallback, 2, ...keys, ...args)).toEqual(
          await client.eval(native, 2, ...keys, ...args),
        );
      }
    }
  });

  it("caps the change stream near eventsMaxLen", async () => {
    const store = newStore({ eventsMaxLen: 10 });
    const clock = new TestClock();
    for (let i = 0; i < 300; i++) await store.putJob(putCommand(clock, "default", `j${i}`));
    const length = await client.xlen(store.keys.events);
    // MAXLEN ~ trims whole stream nodes (100 entries each by default), never below the cap.
    expect(length).toBeGreaterThanOrEqual(10);
    expect(length).toBeLessThan(300);
  });

  it("refuses a client with keyPrefix, and maps connection failures to unavailable", async () => {
    const prefixed = new Redis(redisUrl, { keyPrefix: "x:", lazyConnect: true });
    cleanups.push(async () => prefixed.disconnect());
    expect(() => createRedisJobStore({ redis: prefixed })).toThrow(/keyPrefix/);
    const dead = new Redis({
      port: 1,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    cleanups.push(async () => dead.disconnect());
    const store = createRedisJobStore({ redis: dead });
    expect((await rejection(store.getJob("x"))).code).toBe("unavailable");
  });

  it("connects from a URL and closes what it opened", async () => {
    const prefix = randomPrefix();
    cleanups.push(() => dropPrefix(client, prefix));
    const store = createRedisJobStore({ redis: redisUrl, prefix });
    await store.putJob(putCommand(new TestClock(), "default", "a"));
    await store.close();
    await waitFor(() => store.redis.status === "end", { message: "the store's own connection to end" });
  });

  it("reports the durability settings", async () => {
    const shared = await checkRedisDurability(client);
    expect(shared).toEqual({
      appendonly: true,
      appendfsync: "everysec",
      maxmemoryPolicy: "noeviction",
      ok: true,
      problems: [],
    });
    const server = await startRedis({ args: ["--appendonly", "no", "--maxmemory-policy", "allkeys-lru"] });
    cleanups.push(() => server.stop({ graceMs: 1000 }));
    const loose = new Redis(server.url);
    cleanups.push(async () => loose.disconnect());
    const report = await checkRedisDurability(loose);
    expect(report).toMatchObject({ appendonly: false, maxmemoryPolicy: "allkeys-lru", ok: false });
    expect(report.problems).toHaveLength(2);
    expect(report.problems.join(" ")).toMatch(/appendonly yes.*noeviction/);
  });
});

describe("memory and Redis stores agree", () => {
  type Op =
    | {
        kind: "put";
        ns: number;
        name: number;
        v: number;
        type: number;
        cas?: "version" | "revision";
        casOff: number;
        key?: number;
        dt: number;
      }
    | { kind: "status"; target: number; state: JobStateType; guard: boolean; rev: boolean; dt: number }
    | { kind: "delete"; target: number; dt: number }
    | {
        kind: "list";
        orderBy: ListJobsQuery["orderBy"];
        order: "asc" | "desc";
        limit: number;
        deleted: boolean;
        states: JobStateType[];
        ns: boolean;
      };

  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record(
      {
        kind: fc.constant("put" as const),
        ns: fc.nat(1),
        name: fc.nat(4),
        v: fc.nat(2),
        type: fc.nat(3),
        cas: fc.constantFrom("version" as const, "revision" as const),
        casOff: fc.integer({ min: -1, max: 1 }),
        key: fc.nat(3),
        dt: fc.constantFrom(0, 1, 1000),
      },
      { requiredKeys: ["kind", "ns", "name", "v", "type", "casOff", "dt"] },
    ),
    fc.record({
      kind: fc.constant("status" as const),
      target: fc.nat(20),
      state: fc.constantFrom(...JOB_STATES.filter((s) => s !== "deleted")),
      guard: fc.boolean(),
      rev: fc.boolean(),
      dt: fc.constantFrom(0, 1, 1000),
    }),
    fc.record({ kind: fc.constant("delete" as const), target: fc.nat(20), dt: fc.constantFrom(0, 1000) }),
    fc.record({
      kind: fc.constant("list" as const),
      orderBy: fc.constantFrom("created_at" as const, "updated_at" as const, "name" as const),
      order: fc.constantFrom("asc" as const, "desc" as const),
      limit: fc.integer({ min: 1, max: 4 }),
      deleted: fc.boolean(),
      states: fc.subarray([...JOB_STATES]),
      ns: fc.boolean(),
    }),
  );

  /** Applies one op and returns what a caller observes (stream ids differ by design and are dropped). */
  async function apply(
    store: JobStore,
    op: Op,
    ctx: { now: number; seq: number; ids: string[] },
  ): Promise<unknown> {
    try {
      if (op.kind === "put") {
        ctx.now += op.dt;
        const ns = `ns${op.ns}`;
        const name = `job${op.name}`;
        const current = await store.findJob(ns, name);
        const type = JOB_TYPES[op.type] ?? "pipeline";
        const cas =
          op.cas === "version"
            ? { expectedVersion: Math.max(0, (current?.version ?? 0) + op.casOff) }
            : op.cas === "revision"
              ? { expectedRevision: Math.max(0, (current?.revision ?? 0) + op.casOff) }
              : {};
        const result = await store.putJob({
          namespace: ns,
          name,
          type,
          labels: { v: String(op.v) },
          spec: { name, namespace: ns, type, labels: { v: String(op.v) }, config: { v: op.v } },
          newId: `job-${String(ctx.seq++).padStart(6, "0")}`,
          now: ctx.now,
          ...cas,
          ...(op.key === undefined ? {} : { idempotencyKey: `key-${op.key}` }),
          maxVersions: 3,
        });
        if (!ctx.ids.includes(result.job.id)) ctx.ids.push(result.job.id);
        return result;
      }
      if (op.kind === "status" || op.kind === "delete") {
        ctx.now += op.dt;
        const id = ctx.ids[op.target % Math.max(1, ctx.ids.length)] ?? "job-none";
        if (op.kind === "delete") return await store.deleteJob(id, ctx.now);
        const current = await store.getJob(id);
        const guard = {
          ...(op.guard ? { allowedFrom: JOB_STATES.filter((s) => s !== op.state && s !== "deleted") } : {}),
          ...(op.rev ? { expectedRevision: (current?.revision ?? 0) + (op.target % 2) } : {}),
        };
        return await store.updateStatus(
          id,
          { state: op.state, message: `to ${op.state}`, details: { n: String(op.target) }, now: ctx.now },
          guard,
        );
      }
      return await listAll(store, {
        namespace: op.ns ? "ns0" : "*",
        limit: op.limit,
        orderBy: op.orderBy,
        order: op.order,
        includeDeleted: op.deleted,
        states: op.states,
      });
    } catch (err) {
      const e = err as { code?: string; message?: string; metadata?: unknown };
      return { error: e.code, message: e.message, metadata: e.metadata };
    }
  }

  it("answers every command sequence identically", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
        const prefix = randomPrefix();
        const redisStore = createRedisJobStore({ redis: client, prefix });
        const memoryStore = createMemoryJobStore();
        try {
          const a = { now: 1_700_000_000_000, seq: 0, ids: [] as string[] };
          const b = { now: 1_700_000_000_000, seq: 0, ids: [] as string[] };
          for (const op of ops) {
            const [fromMemory, fromRedis] = [await apply(memoryStore, op, a), await apply(redisStore, op, b)];
            expect(fromRedis, JSON.stringify(op)).toEqual(fromMemory);
          }
          for (const id of a.ids) {
            expect(await redisStore.listVersions(id, { limit: 10 })).toEqual(
              await memoryStore.listVersions(id, { limit: 10 }),
            );
          }
          const strip = (events: Array<{ id: string }>) => events.map(({ id: _, ...rest }) => rest);
          expect(strip(await redisStore.readEvents("0", 1000))).toEqual(
            strip(await memoryStore.readEvents("0", 1000)),
          );
        } finally {
          await dropPrefix(client, prefix);
        }
      }),
      { numRuns: 60 },
    );
  });
});
