/** Redis in integration tests: every test run writes under a prefix of its own and drops it after. */
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";

/** A fresh key prefix such as `t1a2b3c4d:`. */
export const testPrefix = (): string => `t${randomUUID().slice(0, 8)}:`;

/** Deletes every key under `prefix` (SCAN, so a shared Redis is never blocked). */
export async function dropPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
    if (keys.length > 0) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== "0");
}
