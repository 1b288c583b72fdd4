/**
 * "Use the servers I give you, or start your own": `REDIS_URL` / `NATS_URL` win over spawning,
 * so the suite can run against a compose stack or a CI service container.
 */
import { type NatsServer, type NatsServerOptions, startNats } from "./nats-server.js";
import { type RedisServer, type RedisServerOptions, startRedis } from "./redis-server.js";
import { createExternalServer, type ExternalServer } from "./server-handle.js";

/** The variable naming an external Redis. */
export const REDIS_URL_ENV = "REDIS_URL";
/** The variable naming an external NATS (a URL or a comma-separated list). */
export const NATS_URL_ENV = "NATS_URL";

/** `REDIS_URL` if set and not blank, else `undefined`. */
export function redisUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return nonBlank(env[REDIS_URL_ENV]);
}

/** `NATS_URL` if set and not blank, else `undefined`. */
export function natsUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return nonBlank(env[NATS_URL_ENV]);
}

/** Options of {@link externalOrStartRedis} and {@link externalOrStartNats}. */
export interface ExternalOptions {
  /** Where to read `REDIS_URL`/`NATS_URL` (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * An {@link ExternalServer} for `REDIS_URL` if it is set, otherwise a Redis started with
 * {@link startRedis}. Check `server.external` before killing or restarting it:
 *
 * @example
 * ```ts
 * const server = await externalOrStartRedis();
 * it("survives kill -9", async (ctx) => {
 *   if (server.external) ctx.skip("REDIS_URL is set: cannot kill an external server");
 *   await server.kill();
 * });
 * ```
 */
export async function externalOrStartRedis(
  options: RedisServerOptions & ExternalOptions = {},
): Promise<RedisServer | ExternalServer> {
  const url = redisUrlFromEnv(options.env);
  if (url !== undefined) return createExternalServer("redis", url, REDIS_URL_ENV);
  return startRedis(options);
}

/** An {@link ExternalServer} for `NATS_URL` if it is set, otherwise {@link startNats}. */
export async function externalOrStartNats(
  options: NatsServerOptions & ExternalOptions = {},
): Promise<NatsServer | ExternalServer> {
  const url = natsUrlFromEnv(options.env);
  if (url !== undefined) return createExternalServer("nats", url, NATS_URL_ENV);
  return startNats(options);
}

function nonBlank(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed === undefined || trimmed === "" ? undefined : trimmed;
}
