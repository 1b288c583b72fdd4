/**
 * Types of the values `global-setup.ts` hands to tests with `project.provide()`;
 * read them with `inject("redisUrl")` / `inject("natsUrl")` from `vitest`.
 */
export {};

declare module "vitest" {
  export interface ProvidedContext {
    /** `redis://127.0.0.1:<port>` of the run's shared Redis, or `REDIS_URL`. */
    redisUrl: string;
    /** `nats://127.0.0.1:<port>` of the run's shared NATS, or `NATS_URL`. */
    natsUrl: string;
  }
}
