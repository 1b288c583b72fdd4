/**
 * Secrets every control-plane replica must share (the page-token HMAC key): created once with
 * SET NX and read back, so concurrent first starts agree and restarts keep tokens valid.
 */
import { randomBytes } from "node:crypto";
import { EdgeplaneError } from "@edgeplane/core";
import type { Redis } from "ioredis";
import { jobStoreKeys } from "./keys.js";

/** The shared secret `name` under `prefix`, created (32 random bytes) if it does not exist yet. */
export async function sharedSecret(redis: Redis, name: string, prefix?: string): Promise<string> {
  const key = jobStoreKeys(prefix).secret(name);
  await redis.set(key, randomBytes(32).toString("base64url"), "NX");
  const secret = await redis.get(key);
  if (!secret) throw new EdgeplaneError("unavailable", `could not read the shared secret ${name} from Redis`);
  return secret;
}
