/**
 * `@edgeplane/testkit`: real `redis-server` and `nats-server` processes for integration and
 * fault tests (or the servers named by `REDIS_URL`/`NATS_URL`), a fake clock, and waiting
 * helpers. Dev only: never imported by production code.
 */
export { INSTALL_HINT, resolveBinary } from "./binaries.js";
export type { Clock } from "./clock.js";
export { systemClock } from "./clock.js";
export type { ExternalOptions } from "./external.js";
export {
  externalOrStartNats,
  externalOrStartRedis,
  NATS_URL_ENV,
  natsUrlFromEnv,
  REDIS_URL_ENV,
  redisUrlFromEnv,
} from "./external.js";
export { FAKE_CLOCK_EPOCH_MS, FakeClock } from "./fake-clock.js";
export type {
  ClusterReadyOptions,
  NatsCluster,
  NatsClusterOptions,
  NatsServer,
  NatsServerOptions,
} from "./nats-server.js";
export { startNats, startNatsCluster } from "./nats-server.js";
export { freePort, freePorts, RESERVED_PORTS } from "./ports.js";
export { processGroupGone } from "./processes.js";
export type { RedisServer, RedisServerOptions } from "./redis-server.js";
export { redisArgs, startRedis } from "./redis-server.js";
export type { ExternalServer, ServerHandle, ServerKind, StopOptions } from "./server-handle.js";
export { createExternalServer, parseServerUrl } from "./server-handle.js";
export type { Falsy, WaitForOptions } from "./wait-for.js";
export { delay, waitFor, withTimeout } from "./wait-for.js";
