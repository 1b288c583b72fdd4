/**
 * The production check of the Redis the store writes to. Redis is edgeplane's source of truth,
 * so it must persist every write (AOF) and must refuse writes when full rather than evict keys
 * (an evicted job record or index entry would silently break the store's invariants).
 */
import type { Redis } from "ioredis";

/** What {@link checkRedisDurability} found. */
export interface RedisDurability {
  /** `appendonly yes`. */
  readonly appendonly: boolean;
  /** `appendfsync`: "everysec" (recommended), "always" or "no"; "" when it could not be read. */
  readonly appendfsync: string;
  /** `maxmemory-policy`; must be "noeviction". */
  readonly maxmemoryPolicy: string;
  /** True when the settings keep every acknowledged write (up to the fsync policy). */
  readonly ok: boolean;
  /** One sentence per problem, saying what to set. Empty when `ok`. */
  readonly problems: string[];
}

/**
 * Reads `appendonly`, `appendfsync` and `maxmemory-policy` with `CONFIG GET`, falling back to
 * `INFO persistence` / `INFO memory` where CONFIG is disabled (managed Redis services rename
 * it). The control plane refuses to start in production when `ok` is false and warns in dev.
 */
export async function checkRedisDurability(redis: Redis): Promise<RedisDurability> {
  let appendonly: boolean | undefined;
  let appendfsync = "";
  let maxmemoryPolicy: string | undefined;
  const problems: string[] = [];
  try {
    const [aof, fsync, policy] = await Promise.all([
      redis.config("GET", "appendonly"),
      redis.config("GET", "appendfsync"),
      redis.config("GET", "maxmemory-policy"),
    ]);
    appendonly = configValue(aof) === "yes";
    appendfsync = configValue(fsync) ?? "";
    maxmemoryPolicy = configValue(policy);
  } catch {
    // CONFIG is disabled or renamed: INFO says the same where it matters.
    const [persistence, memory] = await Promise.all([redis.info("persistence"), redis.info("memory")]);
    appendonly = infoValue(persistence, "aof_enabled") === "1";
    maxmemoryPolicy = infoValue(memory, "maxmemory_policy");
  }
  if (!appendonly) {
    problems.push("appendonly is off: acknowledged writes are lost on a restart; set `appendonly yes`");
  }
  if (appendfsync === "no") {
    problems.push(
      "appendfsync is `no`: the OS decides when writes reach the disk; use `appendfsync everysec`",
    );
  }
  if (maxmemoryPolicy !== "noeviction") {
    problems.push(
      `maxmemory-policy is ${maxmemoryPolicy ?? "unknown"}: Redis may evict job data when full; set \`maxmemory-policy noeviction\``,
    );
  }
  return {
    appendonly: appendonly === true,
    appendfsync,
    maxmemoryPolicy: maxmemoryPolicy ?? "",
    ok: problems.length === 0,
    problems,
  };
}

function configValue(reply: unknown): string | undefined {
  return Array.isArray(reply) && typeof reply[1] === "string" ? reply[1] : undefined;
}

function infoValue(info: string, field: string): string | undefined {
  const match = new RegExp(`^${field}:(.*)$`, "m").exec(info);
  return match?.[1]?.trim();
}
