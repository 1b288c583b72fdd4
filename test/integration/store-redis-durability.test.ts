/**
 * Durability of the Redis JobStore across `kill -9`, against its own redis-server (testkit:
 * `appendonly yes`, `appendfsync everysec`, `noeviction`).
 *
 * What is guaranteed (and what these tests check):
 * - Redis appends every write to the AOF with write(2) before it sends the reply, so an
 *   acknowledged write is in the kernel's page cache: killing the redis-server process (kill -9,
 *   OOM killer, crash) loses nothing acknowledged. Checked with no wait between the last
 *   acknowledgement and the kill.
 * - `everysec` fsyncs once a second, so a power loss or kernel crash can lose up to about one
 *   second of acknowledged writes (up to two when the disk is so slow that Redis postpones the
 *   write; `INFO persistence` counts those in `aof_delayed_fsync`, asserted 0 here).
 *   `appendfsync always` closes that window at the cost of an fsync per write. Not testable
 *   without cutting power, so it is documented, not tested.
 * - A putJob carrying an idempotency key applies exactly once even when Redis dies around it:
 *   ioredis queues it while disconnected and resends unanswered commands after reconnecting,
 *   and a resend of a command that did run finds its idempotency key (written in the same
 *   script, so persisted together with the job) and answers the first outcome.
 */
import type { JobEvent, JobRecord, RedisJobStore } from "@edgeplane/store";
import { createRedisJobStore } from "@edgeplane/store";
import { listAll, putCommand, TestClock } from "@edgeplane/store/conformance";
import { type RedisServer, startRedis, waitFor } from "@edgeplane/testkit";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => {});
});

/** A store on its own redis-server, with a client that reconnects fast and never gives up. */
async function setup(): Promise<{ server: RedisServer; store: RedisJobStore; client: Redis }> {
  const server = await startRedis();
  cleanups.push(() => server.stop({ graceMs: 1000 }));
  const client = new Redis(server.url, { retryStrategy: () => 50, maxRetriesPerRequest: null });
  client.on("error", () => {}); // connection resets are the point of these tests
  cleanups.push(async () => client.disconnect());
  const store = createRedisJobStore({ redis: client, prefix: "ep:" });
  return { server, store, client };
}

async function delayedFsyncs(client: Redis): Promise<number> {
  const info = await client.info("persistence");
  return Number(/aof_delayed_fsync:(\d+)/.exec(info)?.[1] ?? "NaN");
}

const updatedEvents = (events: JobEvent[], jobId: string): JobEvent[] =>
  events.filter((e) => e.jobId === jobId && e.kind === "updated");

describe("Redis job store durability", () => {
  it("keeps every acknowledged write across kill -9, with no wait before the kill", async () => {
    const { server, store, client } = await setup();
    const clock = new TestClock();
    const acknowledged: JobRecord[] = [];
    for (let i = 0; i < 100; i++) {
      const { job } = await store.putJob(putCommand(clock, `ns${i % 3}`, `job-${i}`, { config: { i } }));
      acknowledged.push(
        i % 2
          ? await store.updateStatus(job.id, { state: "running", message: `#${i}`, now: clock.tick() })
          : job,
      );
    }
    const last = await store.putJob(putCommand(clock, "ns0", "job-0", { config: { last: true } }));
    acknowledged[0] = last.job;
    expect(await delayedFsyncs(client)).toBe(0);
    await server.kill("SIGKILL"); // right after the last acknowledgement: no fsync has to have happened
    await server.restart();

    for (const job of acknowledged) expect(await store.getJob(job.id)).toEqual(job);
    const { items } = await listAll(store, {
      namespace: "*",
      limit: 7,
      orderBy: "name",
      order: "asc",
      includeDeleted: false,
    });
    expect(items.map((j) => j.id).sort()).toEqual(acknowledged.map((j) => j.id).sort());
    expect(await store.readEvents("0", 1000)).toHaveLength(100 + 50 + 1);
    expect((await store.listVersions(last.job.id, { limit: 5 })).items.map((v) => v.version)).toEqual([2, 1]);
  });

  it("applies a put issued while Redis is down exactly once, after it comes back", async () => {
    const { server, store, client } = await setup();
    const clock = new TestClock();
    const { job } = await store.putJob(putCommand(clock, "default", "outage"));
    await server.kill("SIGKILL");
    await waitFor(() => client.status === "reconnecting" || client.status === "connecting", {
      message: "the client to notice the outage",
    });
    const cmd = putCommand(clock, "default", "outage", { config: { v: 2 }, idempotencyKey: "deploy-42" });
    const during = store.putJob(cmd); // queued by ioredis while disconnected
    await server.restart();
    const result = await waitFor(during, { timeoutMs: 20_000, message: "the queued put to complete" });
    expect(result).toMatchObject({
      changed: true,
      created: false,
      job: { id: job.id, version: 2, revision: 2 },
    });
    // The caller's own retry (it may not have seen the answer) is answered from the key.
    expect(await store.putJob(cmd)).toEqual(result);
    expect((await store.getJob(job.id))?.version).toBe(2);
    expect(updatedEvents(await store.readEvents("0", 100), job.id)).toHaveLength(1);
  });

  it("applies a put once when Redis is killed while it is in flight", async () => {
    const { server, store } = await setup();
    const clock = new TestClock();
    const { job } = await store.putJob(putCommand(clock, "default", "inflight"));
    const rounds = 6;
    for (let round = 1; round <= rounds; round++) {
      const cmd = putCommand(clock, "default", "inflight", {
        config: { round },
        idempotencyKey: `round-${round}`,
      });
      const inFlight = store.putJob(cmd);
      // Odd rounds kill before the script can run, even rounds give it a turn of the event loop
      // to reach Redis (it may run, persist, and lose only its reply): both must apply once.
      if (round % 2 === 0) await new Promise((resolve) => setImmediate(resolve));
      await server.kill("SIGKILL");
      await server.restart();
      const result = await waitFor(inFlight, {
        timeoutMs: 20_000,
        message: `round ${round}'s put to complete`,
      });
      expect(result.job.version).toBe(round + 1);
      expect(await store.putJob(cmd)).toEqual(result);
    }
    const final = await store.getJob(job.id);
    expect(final).toMatchObject({ version: rounds + 1, revision: rounds + 1 });
    expect(updatedEvents(await store.readEvents("0", 100), job.id)).toHaveLength(rounds);
  });

  it("answers a command resent after a lost reply from its idempotency key", async () => {
    const { server, store, client } = await setup();
    const clock = new TestClock();
    const { job } = await store.putJob(putCommand(clock, "default", "lost-reply"));
    const observer = new Redis(server.url);
    cleanups.push(async () => observer.disconnect());
    // EVALSHA, or EVAL: ioredis sends a script's source once on each new connection.
    const scriptCalls = async (): Promise<number> => {
      const stats = await observer.info("commandstats");
      const calls = (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
      return calls("evalsha") + calls("eval");
    };
    const before = await scriptCalls();

    const cmd = putCommand(clock, "default", "lost-reply", { config: { v: 2 }, idempotencyKey: "lost" });
    const pending = store.putJob(cmd); // written to the socket synchronously
    // Block this thread while Redis runs the script and replies, then drop the connection with
    // the reply unread: ioredis reconnects and resends the command, as after a network blip.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    (client as unknown as { stream: { destroy(): void } }).stream.destroy();
    const result = await waitFor(pending, { timeoutMs: 10_000, message: "the resent put to complete" });

    expect(await scriptCalls()).toBe(before + 2); // it ran twice ...
    expect(result).toMatchObject({ changed: true, job: { id: job.id, version: 2, revision: 2 } });
    expect((await store.getJob(job.id))?.version).toBe(2); // ... and applied once
    expect(updatedEvents(await store.readEvents("0", 100), job.id)).toHaveLength(1);
  });
});
