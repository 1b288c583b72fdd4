// Write coalescing (packages/store/src/redis/coalesce.ts) against a real redis-server: commands
// sent in one event-loop turn leave in one socket write, every reply still reaches its command,
// and the hook follows the client onto the new socket after Redis is killed and restarted.
import { coalesceWrites } from "@edgeplane/store";
import { type RedisServer, startRedis, waitFor } from "@edgeplane/testkit";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/** Counts the writes that reach the socket's handle (one per write or writev). */
function countWrites(client: Redis): { readonly n: number } {
  const counter = { n: 0 };
  const stream = (client as unknown as { stream: { _writeGeneric: (...a: unknown[]) => unknown } }).stream;
  const inner = stream._writeGeneric;
  stream._writeGeneric = function (this: unknown, ...args: unknown[]) {
    counter.n++;
    return inner.apply(this, args);
  };
  return counter;
}

describe("Redis write coalescing", () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server.stop({ graceMs: 1000 });
  });

  it("sends the commands of one turn in one write, and answers each", async () => {
    const plain = new Redis(server.url, { maxRetriesPerRequest: null });
    const coalesced = coalesceWrites(new Redis(server.url, { maxRetriesPerRequest: null }));
    try {
      await Promise.all([plain.ping(), coalesced.ping()]);
      const burst = async (client: Redis, p: string) => {
        const writes = countWrites(client);
        // Independent callers in one turn: different keys, different commands.
        const replies = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            i % 2 === 0 ? client.set(`${p}k${i}`, `v${i}`) : client.incrby(`${p}counter`, i),
          ),
        );
        return { writes: writes.n, replies };
      };
      const a = await burst(plain, "a:");
      const b = await burst(coalesced, "b:");
      expect(a.writes).toBe(50);
      expect(b.writes).toBe(1);
      // Every command got its own reply, in order.
      expect(b.replies.filter((r) => r === "OK")).toHaveLength(25);
      expect(await coalesced.get("b:k48")).toBe("v48");
      expect(Number(await coalesced.get("b:counter"))).toBe(625); // 1 + 3 + … + 49
      // Commands from separate turns still go out (nothing waits for a later command).
      expect(await coalesced.set("late", "1")).toBe("OK");
      // Calling it again changes nothing.
      expect(coalesceWrites(coalesced)).toBe(coalesced);
    } finally {
      plain.disconnect();
      coalesced.disconnect();
    }
  });

  it("keeps coalescing on the new socket after Redis is killed and restarted", async () => {
    const client = coalesceWrites(
      new Redis(server.url, { maxRetriesPerRequest: null, retryStrategy: () => 50 }),
    );
    client.on("error", () => {}); // the reset is the point of this test
    try {
      await client.set("before", "1");
      const first = (client as unknown as { stream: object }).stream;
      await server.kill();
      await server.restart();
      await waitFor(async () => (await client.ping().catch(() => "")) === "PONG", {
        timeoutMs: 10_000,
        message: "the client to reconnect",
      });
      expect((client as unknown as { stream: object }).stream).not.toBe(first);
      const writes = countWrites(client);
      const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => client.set(`after${i}`, "x")));
      expect(replies).toEqual(Array.from({ length: 20 }, () => "OK"));
      expect(writes.n).toBe(1);
    } finally {
      client.disconnect();
    }
  });
});
