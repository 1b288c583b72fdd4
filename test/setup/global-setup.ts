/**
 * vitest globalSetup of the `integration` and `faults` projects: one shared Redis and one shared
 * NATS for all test files of the run, started by testkit on free loopback ports (never the
 * machine's 6379/4222), unless `REDIS_URL` / `NATS_URL` name servers to use instead.
 *
 * Tests read the URLs with `inject("redisUrl")` / `inject("natsUrl")` (typed by
 * `provided.d.ts`) and isolate themselves with a random key prefix and subject root. Tests that
 * kill or restart servers start their own with `startRedis()` / `startNats()` instead.
 */
import { externalOrStartNats, externalOrStartRedis } from "@edgeplane/testkit";
import type { TestProject } from "vitest/node";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // allSettled, not all: if one fails, the other may still be starting and must be stopped too.
  const [redis, nats] = await Promise.allSettled([externalOrStartRedis(), externalOrStartNats()]);
  const started = [redis, nats].flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const stopAll = async (): Promise<void> => {
    await Promise.allSettled(started.map((server) => server.stop({ graceMs: 2000 })));
  };
  if (redis.status === "rejected" || nats.status === "rejected") {
    await stopAll();
    throw redis.status === "rejected" ? redis.reason : (nats as PromiseRejectedResult).reason;
  }
  project.provide("redisUrl", redis.value.url);
  project.provide("natsUrl", nats.value.url);
  return stopAll;
}
