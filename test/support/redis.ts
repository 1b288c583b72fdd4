/** Redis in integration tests: every test run writes under a prefix of its own and drops it after. */
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";

/** A fresh key prefix such as `t1a2b3c4d:`. */
export const testPrefix = (): string => `t${randomUUID().slice(0, 8)}:`;

/** Deletes every key under `prefix`. */
export async function dropPrefix(redis: Redis, prefix: string): Promise<void> {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
}
