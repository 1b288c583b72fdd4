/**
 * The JobStore conformance suite: one set of vitest tests every implementation must pass
 * (memory in the unit project, Redis in the integration project). It pins the semantics the
 * service layer and the orchestrator rely on: creation and identical no-ops, version/revision
 * counters, both check-and-sets, idempotency, the status guard table, delete and re-create,
 * bounded version history, every ListJobs order, direction and filter with complete pagination
 * under concurrent writes, the label-filter scan bound, and the change stream.
 *
 * @example
 * ```ts
 * describeJobStoreConformance("memory", async () => ({ store: createMemoryJobStore(), cleanup: async () => {} }));
 * ```
 */
import {
  allowedFrom,
  canTransition,
  isEdgeplaneError,
  JOB_STATES,
  JOB_TYPES,
  type JobStateType,
  type JobType,
  newId,
} from "@edgeplane/core";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { LeaderLease } from "../deployments/deployment-store.js";
import type {
  JobCursor,
  JobOrderBy,
  JobRecord,
  JobStore,
  JsonObject,
  ListJobsPage,
  ListJobsQuery,
  PutJobCommand,
} from "../job-store.js";
import { comparePositions, cursorOf } from "../semantics.js";

/** What the suite needs from an implementation: a fresh, empty store and a way to dispose of it. */
export interface JobStoreHarness {
  readonly store: JobStore;
  /** The leader lease over the same data, whose epoch the store's fenced writes check. */
  readonly lease: LeaderLease;
  cleanup(): Promise<void>;
}

/** Creates a fresh, empty store for one test (or one property run). */
export type JobStoreFactory = () => Promise<JobStoreHarness>;

/** Options of {@link describeJobStoreConformance}. */
export interface ConformanceOptions {
  /** fast-check runs per property (default 40); each run creates a fresh store. */
  readonly numRuns?: number;
}

const T0 = 1_700_000_000_000;

/** A test clock: strictly increasing times unless a test asks for equal ones. */
export class TestClock {
  private t = T0;
  /** Advances by `step` ms (default 1000) and returns the new time. */
  tick(step = 1000): number {
    this.t += step;
    return this.t;
  }
  /** The current time. */
  now(): number {
    return this.t;
  }
}

/** A spec as the service layer would hand it over (canonical key order, snake_case). */
export function testSpec(
  namespace: string,
  name: string,
  type: JobType = "pipeline",
  labels: Record<string, string> = {},
  config: JsonObject = {},
): JsonObject {
  return { config, labels, name, namespace, type };
}

/** A putJob command for (namespace, name) with a spec whose `config` is `config`. */
export function putCommand(
  clock: TestClock,
  namespace: string,
  name: string,
  overrides: Partial<PutJobCommand> & { config?: JsonObject } = {},
): PutJobCommand {
  const { config, ...rest } = overrides;
  const type = rest.type ?? "pipeline";
  const labels = rest.labels ?? {};
  const now = rest.now ?? clock.tick();
  return {
    namespace,
    name,
    type,
    labels,
    spec: testSpec(namespace, name, type, labels, config ?? {}),
    newId: newId("job", now),
    now,
    ...rest,
  };
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<{
  code: string;
  message: string;
  metadata: Readonly<Record<string, unknown>>;
}> {
  try {
    await promise;
  } catch (err) {
    if (!isEdgeplaneError(err)) throw err;
    return { code: err.code, message: err.message, metadata: err.metadata };
  }
  throw new Error("expected the call to fail, but it succeeded");
}

/** Every page of a listing, following `next` until it is absent. */
export async function listAll(
  store: JobStore,
  query: Omit<ListJobsQuery, "cursor">,
  between?: (page: ListJobsPage) => Promise<void>,
): Promise<{ items: JobRecord[]; pages: ListJobsPage[] }> {
  const pages: ListJobsPage[] = [];
  let cursor: JobCursor | undefined;
  for (let guard = 0; guard < 100_000; guard++) {
    const page = await store.listJobs(cursor === undefined ? query : { ...query, cursor });
    pages.push(page);
    if (page.next === undefined) return { items: pages.flatMap((p) => p.items), pages };
    cursor = page.next;
    if (between !== undefined) await between(page);
  }
  throw new Error("listing did not end");
}

/** The expected order of a listing, computed from records. */
export function sortedAs(
  jobs: readonly JobRecord[],
  orderBy: JobOrderBy,
  order: "asc" | "desc",
): JobRecord[] {
  const sign = order === "asc" ? 1 : -1;
  return [...jobs].sort((a, b) => sign * comparePositions(cursorOf(a, orderBy), cursorOf(b, orderBy)));
}

const ids = (jobs: readonly JobRecord[]): string[] => jobs.map((j) => j.id);
const query = (overrides: Partial<ListJobsQuery> = {}): ListJobsQuery => ({
  namespace: "default",
  limit: 100,
  orderBy: "created_at",
  order: "asc",
  includeDeleted: false,
  ...overrides,
});

/** Drives a job to `state` through legal moves (the suite's way of reaching every state). */
async function driveTo(
  store: JobStore,
  clock: TestClock,
  job: JobRecord,
  state: JobStateType,
): Promise<JobRecord> {
  if (job.state === state) return job;
  if (state === "deleted") return store.deleteJob(job.id, clock.tick());
  // pending reaches every other state directly; from elsewhere go through pending (or stop first).
  let current = job;
  if (!canTransition(current.state, state)) {
    if (!canTransition(current.state, "pending")) {
      current = await store.updateStatus(current.id, {
        state: "stopped",
        message: "stop",
        now: clock.tick(),
      });
    }
    current = await store.updateStatus(current.id, { state: "pending", message: "again", now: clock.tick() });
  }
  if (current.state === state) return current;
  return store.updateStatus(current.id, { state, message: `now ${state}`, now: clock.tick() });
}

/**
 * Registers the conformance tests for one JobStore implementation. `factory` must return a
 * fresh, empty store each time (a new Redis key prefix, a new memory store).
 */
export function describeJobStoreConformance(
  name: string,
  factory: JobStoreFactory,
  options: ConformanceOptions = {},
): void {
  const numRuns = options.numRuns ?? 40;

  describe(`JobStore conformance: ${name}`, () => {
    let harness: JobStoreHarness;
    let store: JobStore;
    let clock: TestClock;

    beforeEach(async () => {
      harness = await factory();
      store = harness.store;
      clock = new TestClock();
    });
    afterEach(async () => {
      await harness.cleanup();
    });

    /** Runs `body` against a fresh store (for property runs), always cleaning up. */
    async function withFreshStore<T>(body: (s: JobStore) => Promise<T>): Promise<T> {
      const h = await factory();
      try {
        return await body(h.store);
      } finally {
        await h.cleanup();
      }
    }

    describe("putJob", () => {
      it("creates a job at version 1, revision 1, pending", async () => {
        const cmd = putCommand(clock, "default", "logs", { labels: { env: "prod" }, config: { a: 1 } });
        const { job, changed, created } = await store.putJob(cmd);
        expect({ changed, created }).toEqual({ changed: true, created: true });
        expect(job).toEqual({
          id: cmd.newId,
          namespace: "default",
          name: "logs",
          type: "pipeline",
          labels: { env: "prod" },
          spec: cmd.spec,
          version: 1,
          revision: 1,
          stableVersion: 0,
          state: "pending",
          stateMessage: "version 1 submitted",
          stateDetails: {},
          deploymentId: "",
          createdAt: cmd.now,
          updatedAt: cmd.now,
        });
        expect(await store.getJob(job.id)).toEqual(job);
        expect(await store.findJob("default", "logs")).toEqual(job);
        expect(await store.findJob("other", "logs")).toBeUndefined();
        expect(await store.getJob("job-unknown")).toBeUndefined();
      });

      it("keeps labels apart from the spec when they differ", async () => {
        const cmd = putCommand(clock, "default", "a", { labels: { team: "x" } });
        const { job } = await store.putJob({ ...cmd, spec: { ...cmd.spec, labels: { other: "y" } } });
        expect(job.labels).toEqual({ team: "x" });
        expect(job.spec.labels).toEqual({ other: "y" });
        expect((await store.getJob(job.id))?.labels).toEqual({ team: "x" });
      });

      it("returns copies: mutating a result does not change the store", async () => {
        const { job } = await store.putJob(putCommand(clock, "default", "a", { config: { x: [1, 2] } }));
        ((job.spec.config as { x: number[] }).x as number[]).push(3);
        expect((await store.getJob(job.id))?.spec.config).toEqual({ x: [1, 2] });
      });

      it("treats an identical spec as a no-op: nothing written, no event", async () => {
        const first = await store.putJob(putCommand(clock, "default", "a", { config: { b: 1, a: 2 } }));
        const events = await store.readEvents("0", 100);
        const again = putCommand(clock, "default", "a", { config: { a: 2, b: 1 } }); // other key order
        const result = await store.putJob(again);
        expect(result).toEqual({ job: first.job, changed: false, created: false });
        expect(await store.getJob(first.job.id)).toEqual(first.job);
        expect(await store.readEvents("0", 100)).toEqual(events);
      });

      it("gives a changed spec a new version and restarts the lifecycle", async () => {
        const { job: v1 } = await store.putJob(putCommand(clock, "default", "a", { config: { n: 1 } }));
        const running = await store.updateStatus(v1.id, {
          state: "running",
          message: "up",
          details: { nodes: "3" },
          deploymentId: "dep-1",
          stableVersion: 1,
          now: clock.tick(),
        });
        const cmd = putCommand(clock, "default", "a", { config: { n: 2 } });
        const { job: v2, changed, created } = await store.putJob(cmd);
        expect({ changed, created }).toEqual({ changed: true, created: false });
        expect(v2).toMatchObject({
          id: v1.id,
          version: 2,
          revision: running.revision + 1,
          state: "pending",
          stateMessage: "version 2 submitted",
          stateDetails: {},
          deploymentId: "dep-1",
          stableVersion: 1,
          createdAt: v1.createdAt,
          updatedAt: cmd.now,
          spec: cmd.spec,
        });
        expect(v2.revision).toBeGreaterThanOrEqual(v2.version);
      });

      it("counts a label-only or type-only change as a change", async () => {
        const { job } = await store.putJob(putCommand(clock, "default", "a", { labels: { a: "1" } }));
        const base = putCommand(clock, "default", "a", { labels: { a: "1" } });
        const labelsOnly = await store.putJob({ ...base, labels: { a: "2" } });
        expect(labelsOnly.changed).toBe(true);
        expect(labelsOnly.job.labels).toEqual({ a: "2" });
        const typeOnly = await store.putJob({ ...base, labels: { a: "2" }, type: "query" });
        expect(typeOnly.changed).toBe(true);
        expect(typeOnly.job).toMatchObject({ id: job.id, type: "query", version: 3 });
      });

      it("checks expectedVersion", async () => {
        expect(
          await rejection(store.putJob(putCommand(clock, "default", "a", { expectedVersion: 3 }))),
        ).toMatchObject({ code: "aborted", metadata: { current_version: 0, current_revision: 0 } });
        const { job } = await store.putJob(putCommand(clock, "default", "a", { expectedVersion: 0 }));
        await store.putJob(putCommand(clock, "default", "a", { config: { v: 2 }, expectedVersion: 1 }));
        await store.updateStatus(job.id, { state: "running", message: "", now: clock.tick() });
        const stale = await rejection(
          store.putJob(putCommand(clock, "default", "a", { config: { v: 3 }, expectedVersion: 1 })),
        );
        expect(stale).toEqual({
          code: "aborted",
          message: "expected version 1 but the job is at version 2: re-read it and retry",
          metadata: { current_version: 2, current_revision: 3 },
        });
        const exists = await rejection(
          store.putJob(putCommand(clock, "default", "a", { expectedVersion: 0 })),
        );
        expect(exists.code).toBe("aborted");
        expect(exists.message).toContain("version 0");
        expect(exists.metadata).toEqual({ current_version: 2, current_revision: 3 });
        // A stale expectation fails even when the spec is identical (the caller must re-read).
        const same = await rejection(
          store.putJob(putCommand(clock, "default", "a", { config: { v: 2 }, expectedVersion: 1 })),
        );
        expect(same.code).toBe("aborted");
        expect((await store.getJob(job.id))?.version).toBe(2);
      });

      it("checks expectedRevision", async () => {
        const { job } = await store.putJob(putCommand(clock, "default", "a"));
        await store.updateStatus(job.id, { state: "running", message: "", now: clock.tick() });
        const err = await rejection(
          store.putJob(putCommand(clock, "default", "a", { config: { x: 1 }, expectedRevision: 1 })),
        );
        expect(err).toEqual({
          code: "aborted",
          message: "expected revision 1 but the job is at revision 2: re-read it and retry",
          metadata: { current_version: 1, current_revision: 2 },
        });
        const ok = await store.putJob(
          putCommand(clock, "default", "a", { config: { x: 1 }, expectedRevision: 2 }),
        );
        expect(ok.job).toMatchObject({ version: 2, revision: 3 });
        expect(
          await rejection(store.putJob(putCommand(clock, "default", "b", { expectedRevision: 4 }))),
        ).toMatchObject({
          code: "aborted",
          metadata: { current_version: 0, current_revision: 0 },
        });
      });

      it("lets exactly one of 50 concurrent puts with the same expectedVersion win", async () => {
        const { job } = await store.putJob(putCommand(clock, "default", "race"));
        const now = clock.tick();
        const results = await Promise.allSettled(
          Array.from({ length: 50 }, (_, i) =>
            store.putJob(
              putCommand(clock, "default", "race", { config: { writer: i }, expectedVersion: 1, now }),
            ),
          ),
        );
        const won = results.filter((r) => r.status === "fulfilled");
        const lost = results.filter((r) => r.status === "rejected");
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(49);
        for (const r of lost) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: "aborted" });
        const final = await store.getJob(job.id);
        expect(final).toMatchObject({ version: 2, revision: 2 });
        expect(final?.spec).toEqual((won[0] as PromiseFulfilledResult<{ job: JobRecord }>).value.job.spec);
        expect((await store.listVersions(job.id, { limit: 10 })).items.map((v) => v.version)).toEqual([2, 1]);
      });

      it("creates a name once when 50 creates race", async () => {
        const now = clock.tick();
        const results = await Promise.allSettled(
          Array.from({ length: 50 }, () =>
            store.putJob(putCommand(clock, "default", "once", { expectedVersion: 0, now })),
          ),
        );
        expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
        const { items } = await store.listJobs(query());
        expect(items).toHaveLength(1);
      });

      it("refuses a create whose new id is taken", async () => {
        const { job } = await store.putJob(putCommand(clock, "default", "a"));
        await store.deleteJob(job.id, clock.tick());
        expect(
          await rejection(store.putJob({ ...putCommand(clock, "default", "b"), newId: job.id })),
        ).toMatchObject({
          code: "already_exists",
        });
      });

      it("rejects malformed commands with invalid_argument", async () => {
        const base = putCommand(clock, "default", "a");
        for (const bad of [
          { ...base, namespace: "" },
          { ...base, namespace: "a:b" },
          { ...base, namespace: "*" },
          { ...base, name: "a\0b" },
          { ...base, now: 1.5 },
          { ...base, now: -1 },
          { ...base, maxVersions: 0 },
          { ...base, expectedVersion: -1 },
          { ...base, type: "nope" as JobType },
          { ...base, idempotencyKey: "" },
        ]) {
          expect((await rejection(store.putJob(bad))).code).toBe("invalid_argument");
        }
      });
    });

    describe("idempotency keys", () => {
      it("answers a retried command with the first outcome, writing nothing", async () => {
        const cmd = putCommand(clock, "default", "a", { idempotencyKey: "req-1" });
        const first = await store.putJob(cmd);
        const events = await store.readEvents("0", 100);
        const retry = await store.putJob({ ...cmd, newId: newId("job"), now: clock.tick() });
        expect(retry).toEqual(first);
        expect(await store.readEvents("0", 100)).toEqual(events);
      });

      it("keeps the first outcome even for a different command and returns the current record", async () => {
        const { job } = await store.putJob(putCommand(clock, "default", "a"));
        const update = await store.putJob(
          putCommand(clock, "default", "a", { config: { v: 2 }, idempotencyKey: "k" }),
        );
        expect(update).toMatchObject({ changed: true, created: false });
        const moved = await store.updateStatus(job.id, { state: "running", message: "", now: clock.tick() });
        const retry = await store.putJob(
          putCommand(clock, "default", "a", { config: { v: 3 }, idempotencyKey: "k" }),
        );
        expect(retry).toEqual({ job: moved, changed: true, created: false });
        expect((await store.getJob(job.id))?.version).toBe(2);
      });

      it("remembers a no-op and survives a stale check-and-set on retry", async () => {
        const { job } = await store.putJob(putCommand(clock, "default", "a"));
        const noop = await store.putJob(
          putCommand(clock, "default", "a", { idempotencyKey: "n", expectedVersion: 1 }),
        );
        expect(noop.changed).toBe(false);
        const cas = putCommand(clock, "default", "a", {
          config: { v: 2 },
          idempotencyKey: "c",
          expectedVersion: 1,
        });
        const applied = await store.putJob(cas);
        // The retry's expectedVersion is now stale, but it is the same command: same answer.
        expect(await store.putJob(cas)).toEqual(applied);
        expect(
          await store.putJob(putCommand(clock, "default", "a", { idempotencyKey: "n", expectedVersion: 1 })),
        ).toEqual({
          job: applied.job,
          changed: false,
          created: false,
        });
        expect((await store.getJob(job.id))?.version).toBe(2);
      });

      it("does not remember failures", async () => {
        const bad = putCommand(clock, "default", "a", { idempotencyKey: "f", expectedVersion: 5 });
        expect((await rejection(store.putJob(bad))).code).toBe("aborted");
        const ok = await store.putJob({ ...bad, expectedVersion: 0 });
        expect(ok.created).toBe(true);
      });
    });

    describe("versions", () => {
      it("keeps versions newest first, pages them, and reads one", async () => {
        const { job } = await store.putJob(putCommand(clock, "default", "a", { config: { v: 1 } }));
        const times = [job.createdAt];
        for (let v = 2; v <= 5; v++) {
          const cmd = putCommand(clock, "default", "a", { config: { v } });
          times.push(cmd.now);
          await store.putJob(cmd);
        }
        const page1 = await store.listVersions(job.id, { limit: 2 });
        expect(page1.items.map((v) => v.version)).toEqual([5, 4]);
        expect(page1.next).toBe(4);
        const page2 = await store.listVersions(job.id, { limit: 2, beforeVersion: page1.next });
        expect(page2.items.map((v) => v.version)).toEqual([3, 2]);
        const page3 = await store.listVersions(job.id, { limit: 2, beforeVersion: page2.next });
        expect(page3.items.map((v) => v.version)).toEqual([1]);
        expect(page3.next).toBeUndefined();
        expect(await store.getVersion(job.id, 3)).toEqual({
          jobId: job.id,
          version: 3,
          spec: testSpec("default", "a", "pipeline", {}, { v: 3 }),
          createdAt: times[2],
          kind: "submit",
          sourceVersion: 0,
        });
        expect((await store.getVersion(job.id, 5))?.spec).toEqual((await store.getJob(job.id))?.spec);
        expect(await store.getVersion(job.id, 6)).toBeUndefined();
        expect(await store.getVersion("job-unknown", 1)).toBeUndefined();
        expect((await store.listVersions(job.id, { limit: 10, beforeVersion: 1 })).items).toEqual([]);
        expect((await store.listVersions(job.id, { limit: 10, beforeVersion: 99 })).items).toHaveLength(5);
        expect(await rejection(store.listVersions("job-unknown", { limit: 1 }))).toMatchObject({
          code: "not_found",
        });
      });

      it("records the kind and source version of reverts and rollbacks", async () => {
        const { job } = await store.putJob(putCommand(clock, "default", "a", { config: { v: 1 } }));
        await store.putJob(putCommand(clock, "default", "a", { config: { v: 2 } }));
        await store.putJob(
          putCommand(clock, "default", "a", { config: { v: 1 }, kind: "revert", sourceVersion: 1 }),
        );
        await store.putJob(
          putCommand(clock, "default", "a", { config: { v: 2 }, kind: "rollback", sourceVersion: 2 }),
        );
        const kinds = (await store.listVersions(job.id, { limit: 10 })).items.map((v) => [
          v.version,
          v.kind,
          v.sourceVersion,
        ]);
        expect(kinds).toEqual([
          [4, "rollback", 2],
          [3, "revert", 1],
          [2, "submit", 0],
          [1, "submit", 0],
        ]);
      });

      it("drops versions beyond maxVersions, oldest first", async () => {
        const { job } = await store.putJob(
          putCommand(clock, "default", "a", { config: { v: 1 }, maxVersions: 3 }),
        );
        for (let v = 2; v <= 6; v++)
          await store.putJob(putCommand(clock, "default", "a", { config: { v }, maxVersions: 3 }));
        const kept = await store.listVersions(job.id, { limit: 10 });
        expect(kept.items.map((v) => v.version)).toEqual([6, 5, 4]);
        expect(kept.next).toBeUndefined();
        expect(await store.getVersion(job.id, 3)).toBeUndefined();
        expect((await store.getVersion(job.id, 4))?.spec.config).toEqual({ v: 4 });
        await store.putJob(putCommand(clock, "default", "a", { config: { v: 7 }, maxVersions: 1 }));
        expect((await store.listVersions(job.id, { limit: 10 })).items.map((v) => v.version)).toEqual([7]);
        expect(await store.getVersion(job.id, 6)).toBeUndefined();
        await store.putJob(putCommand(clock, "default", "a", { config: { v: 8 } }));
        expect((await store.listVersions(job.id, { limit: 10 })).items.map((v) => v.version)).toEqual([8, 7]);
      });

      it("keeps 50 versions by default", async () => {
        const { job } = await store.putJob(putCommand(clock, "default", "a", { config: { v: 1 } }));
        for (let v = 2; v <= 53; v++)
          await store.putJob(putCommand(clock, "default", "a", { config: { v } }));
        const all = await store.listVersions(job.id, { limit: 100 });
        expect(all.items.map((v) => v.version)).toEqual(Array.from({ length: 50 }, (_, i) => 53 - i));
      });
    });

    describe("updateStatus", () => {
      it("bumps the revision and sets state, message, details, deployment and stable version", async () => {
        const { job } = await store.putJob(putCommand(clock, "default", "a"));
        const now = clock.tick();
        const updated = await store.updateStatus(job.id, {
          state: "running",
          message: "running on 3 nodes",
          details: { healthy: "3" },
          deploymentId: "dep-1",
          stableVersion: 1,
          now,
        });
        expect(updated).toEqual({
          ...job,
          revision: 2,
          state: "running",
          stateMessage: "running on 3 nodes",
          stateDetails: { healthy: "3" },
          deploymentId: "dep-1",
          stableVersion: 1,
          updatedAt: now,
        });
        expect(await store.getJob(job.id)).toEqual(updated);
        const next = await store.updateStatus(job.id, {
          state: "running",
          message: "still",
          details: { other: "x" },
          now: clock.tick(),
        });
        expect(next).toMatchObject({
          revision: 3,
          version: 1,
          stateDetails: { other: "x" },
          deploymentId: "dep-1",
          stableVersion: 1,
        });
        const cleared = await store.updateStatus(job.id, {
          state: "completed",
          message: "done",
          deploymentId: "",
          now: clock.tick(),
        });
        expect(cleared).toMatchObject({ stateDetails: {}, deploymentId: "", stableVersion: 1 });
      });

      it("fails not_found for an unknown id", async () => {
        expect(
          await rejection(
            store.updateStatus("job-nope", { state: "running", message: "", now: clock.tick() }),
          ),
        ).toMatchObject({ code: "not_found", metadata: { job_id: "job-nope" } });
      });

      it("checks expectedRevision", async () => {
        const { job } = await store.putJob(putCommand(clock, "default", "a"));
        const err = await rejection(
          store.updateStatus(
            job.id,
            { state: "running", message: "", now: clock.tick() },
            { expectedRevision: 7 },
          ),
        );
        expect(err).toMatchObject({ code: "aborted", metadata: { current_version: 1, current_revision: 1 } });
        const ok = await store.updateStatus(
          job.id,
          { state: "running", message: "", now: clock.tick() },
          { expectedRevision: 1 },
        );
        expect(ok.revision).toBe(2);
      });

      it("enforces the transition table through allowedFrom, for every pair", async () => {
        const froms = JOB_STATES.filter((s) => s !== "deleted");
        const targets = JOB_STATES.filter((s) => s !== "deleted");
        for (const from of froms) {
          for (const to of targets) {
            const { job } = await store.putJob(putCommand(clock, "default", `t-${from}-${to}`));
            const at = await driveTo(store, clock, job, from);
            expect(at.state).toBe(from);
            const attempt = store.updateStatus(
              at.id,
              { state: to, message: "", now: clock.tick() },
              { allowedFrom: allowedFrom(to) },
            );
            if (canTransition(from, to)) {
              expect((await attempt).state).toBe(to);
            } else {
              const err = await rejection(attempt);
              expect(err.code).toBe("failed_precondition");
              expect(err.message).toContain(`is ${from}`);
              expect(err.message).toContain(`become ${to}`);
              expect(err.metadata).toMatchObject({ current_state: from, target_state: to });
              expect((await store.getJob(at.id))?.revision).toBe(at.revision);
            }
          }
        }
      });

      it("refuses an empty allowedFrom list and accepts any state without a guard", async () => {
        const { job } = await store.putJob(putCommand(clock, "default", "a"));
        expect(
          (
            await rejection(
              store.updateStatus(
                job.id,
                { state: "running", message: "", now: clock.tick() },
                { allowedFrom: [] },
              ),
            )
          ).code,
        ).toBe("failed_precondition");
        const done = await store.updateStatus(job.id, { state: "completed", message: "", now: clock.tick() });
        // No guard: the store does not second-guess the caller (the table is the caller's to pass).
        expect(
          (await store.updateStatus(done.id, { state: "queued", message: "", now: clock.tick() })).state,
        ).toBe("queued");
      });

      it("refuses to change a deleted job, and to delete through updateStatus", async () => {
        const { job } = await store.putJob(putCommand(clock, "default", "a"));
        expect(
          (await rejection(store.updateStatus(job.id, { state: "deleted", message: "", now: clock.tick() })))
            .code,
        ).toBe("invalid_argument");
        await store.deleteJob(job.id, clock.tick());
        expect(
          await rejection(store.updateStatus(job.id, { state: "running", message: "", now: clock.tick() })),
        ).toMatchObject({
          code: "failed_precondition",
          metadata: { current_state: "deleted" },
        });
      });
    });

    describe("deleteJob", () => {
      it("marks the job deleted, frees its name, and keeps it readable by id", async () => {
        const { job } = await store.putJob(putCommand(clock, "default", "a"));
        await store.putJob(putCommand(clock, "default", "a", { config: { v: 2 } }));
        const now = clock.tick();
        const deleted = await store.deleteJob(job.id, now);
        expect(deleted).toMatchObject({
          id: job.id,
          state: "deleted",
          revision: 3,
          version: 2,
          updatedAt: now,
        });
        expect(await store.getJob(job.id)).toEqual(deleted);
        expect(await store.findJob("default", "a")).toBeUndefined();
        expect((await store.listJobs(query())).items).toEqual([]);
        expect(ids((await store.listJobs(query({ includeDeleted: true }))).items)).toEqual([job.id]);
        expect(ids((await store.listJobs(query({ states: ["deleted"] }))).items)).toEqual([job.id]);
        expect((await store.listVersions(job.id, { limit: 10 })).items.map((v) => v.version)).toEqual([2, 1]);
      });

      it("re-creates a deleted name as a new job with a new id", async () => {
        const { job: old } = await store.putJob(putCommand(clock, "default", "a"));
        await store.deleteJob(old.id, clock.tick());
        const cmd = putCommand(clock, "default", "a");
        const { job, created } = await store.putJob(cmd);
        expect(created).toBe(true);
        expect(job).toMatchObject({ id: cmd.newId, version: 1, revision: 1, state: "pending" });
        expect(job.id).not.toBe(old.id);
        expect((await store.findJob("default", "a"))?.id).toBe(job.id);
        expect((await store.getJob(old.id))?.state).toBe("deleted");
        const all = await store.listJobs(query({ includeDeleted: true, orderBy: "name" }));
        expect(ids(all.items).sort()).toEqual([old.id, job.id].sort());
      });

      it("fails for unknown and already deleted jobs, and honours its guard", async () => {
        expect((await rejection(store.deleteJob("job-nope", clock.tick()))).code).toBe("not_found");
        const { job } = await store.putJob(putCommand(clock, "default", "a"));
        expect((await rejection(store.deleteJob(job.id, clock.tick(), { expectedRevision: 9 }))).code).toBe(
          "aborted",
        );
        expect(
          (await rejection(store.deleteJob(job.id, clock.tick(), { allowedFrom: ["stopped"] }))).code,
        ).toBe("failed_precondition");
        await store.deleteJob(job.id, clock.tick(), {
          expectedRevision: 1,
          allowedFrom: allowedFrom("deleted"),
        });
        expect((await rejection(store.deleteJob(job.id, clock.tick()))).code).toBe("failed_precondition");
      });
    });

    describe("fenced writes (an orchestrator's, carrying its leader epoch)", () => {
      async function lead(holder: string): Promise<number> {
        const got = await harness.lease.acquire(holder, 60_000);
        if (!got.held) throw new Error(`${holder} did not get the lease`);
        return got.epoch;
      }

      it("apply while the epoch holds the lease, and are refused (changing nothing) once it does not", async () => {
        const created = await store.putJob(putCommand(clock, "default", "fenced"));
        const epoch = await lead("cp-a");
        const running = await store.updateStatus(
          created.job.id,
          { state: "running", message: "deploying", now: clock.tick() },
          { expectedRevision: created.job.revision, fence: { epoch } },
        );
        expect(running.state).toBe("running");
        const rollback = await store.putJob({
          ...putCommand(clock, "default", "fenced", { config: { v: 2 } }),
          kind: "rollback",
          sourceVersion: 1,
          fence: { epoch },
        });
        expect(rollback.job.version).toBe(2);

        // cp-a is deposed: its lease is released and cp-b takes the lease with a newer epoch.
        await harness.lease.release("cp-a", epoch);
        const newer = await lead("cp-b");
        expect(newer).toBeGreaterThan(epoch);
        const before = await store.getJob(created.job.id);
        const events = await store.readEvents("0", 1000);

        const late = [
          store.updateStatus(
            created.job.id,
            { state: "failed", message: "late", now: clock.tick() },
            { fence: { epoch } },
          ),
          store.putJob({ ...putCommand(clock, "default", "fenced", { config: { v: 3 } }), fence: { epoch } }),
          store.deleteJob(created.job.id, clock.tick(), { fence: { epoch } }),
        ];
        for (const write of late) {
          const err = await rejection(write);
          expect(err.code).toBe("failed_precondition");
          expect(err.metadata.fenced).toBe(true);
          expect(err.message).toContain(`epoch ${epoch}`);
          expect(err.metadata.current_epoch).toBe(String(newer));
        }
        expect(await store.getJob(created.job.id)).toEqual(before);
        expect(await store.readEvents("0", 1000)).toEqual(events);

        // The new leader's writes, and unfenced writes (the API's), go ahead.
        const stopped = await store.updateStatus(
          created.job.id,
          { state: "stopped", message: "stopped", now: clock.tick() },
          { fence: { epoch: newer } },
        );
        expect(stopped.revision).toBe((before as JobRecord).revision + 1);
        await store.deleteJob(created.job.id, clock.tick());
      });

      it("are refused while nobody holds the lease", async () => {
        const created = await store.putJob(putCommand(clock, "default", "free"));
        const epoch = await lead("cp-a");
        await harness.lease.release("cp-a", epoch);
        const err = await rejection(
          store.updateStatus(
            created.job.id,
            { state: "running", message: "late", now: clock.tick() },
            { fence: { epoch } },
          ),
        );
        expect(err.metadata.fenced).toBe(true);
        expect(err.message).toContain("the lease is free");
        expect((await store.getJob(created.job.id))?.revision).toBe(created.job.revision);
      });

      it("refuse a malformed epoch before any I/O", async () => {
        const err = await rejection(
          store.putJob({ ...putCommand(clock, "default", "bad-epoch"), fence: { epoch: 0 } }),
        );
        expect(err.code).toBe("invalid_argument");
        expect(err.message).toContain("fence.epoch");
        expect(await store.findJob("default", "bad-epoch")).toBeUndefined();
      });
    });

    describe("change stream", () => {
      it("appends one entry per write, in order, with the job's counters", async () => {
        const { job } = await store.putJob(putCommand(clock, "ns1", "a"));
        await store.putJob(putCommand(clock, "ns1", "a")); // no-op: no entry
        await store.putJob(putCommand(clock, "ns1", "a", { config: { v: 2 } }));
        const t3 = clock.tick();
        await store.updateStatus(job.id, { state: "running", message: "", now: t3 });
        await rejection(
          store.updateStatus(
            job.id,
            { state: "running", message: "", now: clock.tick() },
            { expectedRevision: 1 },
          ),
        );
        const t4 = clock.tick();
        await store.deleteJob(job.id, t4);
        const events = await store.readEvents("0", 100);
        expect(events.map(({ id: _, ...e }) => e)).toEqual([
          {
            jobId: job.id,
            namespace: "ns1",
            kind: "created",
            version: 1,
            revision: 1,
            state: "pending",
            time: job.createdAt,
          },
          {
            jobId: job.id,
            namespace: "ns1",
            kind: "updated",
            version: 2,
            revision: 2,
            state: "pending",
            time: expect.any(Number),
          },
          {
            jobId: job.id,
            namespace: "ns1",
            kind: "status",
            version: 2,
            revision: 3,
            state: "running",
            time: t3,
          },
          {
            jobId: job.id,
            namespace: "ns1",
            kind: "deleted",
            version: 2,
            revision: 4,
            state: "deleted",
            time: t4,
          },
        ]);
      });

      it("reads strictly after a position, at most count entries", async () => {
        for (let i = 0; i < 5; i++) await store.putJob(putCommand(clock, "default", `j${i}`));
        const all = await store.readEvents("0", 100);
        expect(all).toHaveLength(5);
        expect(new Set(all.map((e) => e.id)).size).toBe(5);
        const [first, second] = [all[0], all[1]];
        expect(await store.readEvents(first?.id ?? "", 2)).toEqual(all.slice(1, 3));
        expect(await store.readEvents(second?.id ?? "", 100)).toEqual(all.slice(2));
        expect(await store.readEvents(all[4]?.id ?? "", 100)).toEqual([]);
        // Following positions reads every entry exactly once.
        const followed = [];
        let after = "0";
        for (;;) {
          const batch = await store.readEvents(after, 2);
          if (batch.length === 0) break;
          followed.push(...batch);
          after = batch[batch.length - 1]?.id ?? after;
        }
        expect(followed).toEqual(all);
        expect((await rejection(store.readEvents("not an id", 1))).code).toBe("invalid_argument");
      });
    });

    describe("listJobs", () => {
      /** 12 jobs over 2 namespaces, all types and several states, created at distinct times. */
      async function seed(): Promise<JobRecord[]> {
        const jobs: JobRecord[] = [];
        const names = [
          "delta",
          "alpha",
          "echo",
          "bravo",
          "foxtrot",
          "charlie",
          "hotel",
          "golf",
          "india",
          "kilo",
          "juliet",
          "lima",
        ];
        for (const [i, n] of names.entries()) {
          const ns = i % 3 === 0 ? "other" : "default";
          const type = JOB_TYPES[i % JOB_TYPES.length] as JobType;
          const { job } = await store.putJob(
            putCommand(clock, ns, n, { type, labels: { team: i % 2 ? "a" : "b" } }),
          );
          jobs.push(job);
        }
        // Shuffle updated_at against created_at, and spread the states.
        const states: JobStateType[] = ["running", "completed", "failed", "queued", "stopped", "pending"];
        for (const [i, j] of [...jobs.entries()].reverse()) {
          if (i % 4 === 3) continue;
          jobs[i] = await driveTo(store, clock, j, states[i % states.length] as JobStateType);
        }
        jobs[4] = await store.deleteJob((jobs[4] as JobRecord).id, clock.tick());
        return Promise.all(jobs.map(async (j) => (await store.getJob(j.id)) as JobRecord));
      }

      it("lists in every order and direction, paging completely", async () => {
        const jobs = await seed();
        const live = jobs.filter((j) => j.state !== "deleted" && j.namespace === "default");
        for (const orderBy of ["created_at", "updated_at", "name"] as const) {
          for (const order of ["asc", "desc"] as const) {
            for (const limit of [1, 3, 4, 100]) {
              const { items, pages } = await listAll(store, query({ orderBy, order, limit }));
              expect(ids(items), `${orderBy} ${order} ${limit}`).toEqual(ids(sortedAs(live, orderBy, order)));
              for (const p of pages.slice(0, -1)) expect(p.items).toHaveLength(limit);
              expect(pages[pages.length - 1]?.next).toBeUndefined();
            }
          }
        }
      });

      it("ends without a cursor when the last page is exactly full", async () => {
        for (let i = 0; i < 4; i++) await store.putJob(putCommand(clock, "default", `j${i}`));
        const first = await store.listJobs(query({ limit: 2 }));
        expect(first.next).toBeDefined();
        const second = await store.listJobs(query({ limit: 2, cursor: first.next }));
        expect(second.items).toHaveLength(2);
        expect(second.next).toBeUndefined();
        expect(await store.listJobs(query({ namespace: "empty" }))).toEqual({ items: [] });
      });

      it("filters by states and types from the indexes, and lists every namespace with *", async () => {
        const jobs = await seed();
        const cases: Array<Partial<ListJobsQuery>> = [
          { states: ["running"] },
          { states: ["running", "failed", "pending"] },
          { types: ["query"] },
          { types: ["query", "config"], states: ["pending", "running", "stopped"] },
          { namespace: "*" },
          { namespace: "*", includeDeleted: true },
          { namespace: "*", states: ["deleted"] },
          {
            namespace: "*",
            states: ["deleted", "running"],
            types: ["pipeline", "query", "update", "config"],
          },
          { namespace: "other", includeDeleted: true, types: ["pipeline"] },
        ];
        for (const c of cases) {
          const q = query({ ...c, limit: 2, orderBy: "name" });
          const expected = jobs.filter(
            (j) =>
              (q.namespace === "*" || j.namespace === q.namespace) &&
              (q.states?.length ? q.states.includes(j.state) : q.includeDeleted || j.state !== "deleted") &&
              (q.types?.length ? q.types.includes(j.type) : true),
          );
          const { items } = await listAll(store, q);
          expect(ids(items), JSON.stringify(c)).toEqual(ids(sortedAs(expected, "name", "asc")));
        }
      });

      it("orders equal times by id, and pages through them", async () => {
        const now = clock.tick();
        const made: JobRecord[] = [];
        for (let i = 0; i < 9; i++)
          made.push((await store.putJob(putCommand(clock, "default", `same-${i}`, { now }))).job);
        for (const order of ["asc", "desc"] as const) {
          for (const orderBy of ["created_at", "updated_at"] as const) {
            const { items } = await listAll(store, query({ orderBy, order, limit: 2 }));
            expect(ids(items)).toEqual(ids(sortedAs(made, orderBy, order)));
          }
        }
        expect([...ids(made)].sort()).toEqual(ids(sortedAs(made, "created_at", "asc")));
      });

      it("orders names by code point (UTF-8 byte order), with ids breaking ties", async () => {
        const names = ["b", "a", "ab", "a-b", "Z", "é", "z", "😀", "ｚ", "a0"];
        for (const n of names) await store.putJob(putCommand(clock, "default", n));
        const { items } = await listAll(store, query({ orderBy: "name", limit: 3 }));
        const sortedBytes = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
        expect(items.map((j) => j.name)).toEqual(sortedBytes);
      });

      it("never repeats or skips a job that exists throughout, while others change between pages", async () => {
        for (const orderBy of ["created_at", "name"] as const) {
          for (const order of ["asc", "desc"] as const) {
            const ns = `${orderBy}-${order}`;
            const steady: JobRecord[] = [];
            for (let i = 0; i < 20; i++) {
              steady.push((await store.putJob(putCommand(clock, ns, `s${String(i).padStart(2, "0")}`))).job);
            }
            const doomed = (await store.putJob(putCommand(clock, ns, "s05x"))).job;
            let round = 0;
            const { items } = await listAll(
              store,
              query({ namespace: ns, orderBy, order, limit: 3 }),
              async () => {
                round++;
                // Creates before and after the cursor, status changes and spec updates of steady
                // jobs, and a delete: none may disturb the steady jobs' single appearance.
                await store.putJob(putCommand(clock, ns, `n${round}`));
                await store.putJob(putCommand(clock, ns, `a${round}`));
                const s = steady[(round * 7) % steady.length] as JobRecord;
                await store.updateStatus(s.id, {
                  state: "running",
                  message: `round ${round}`,
                  now: clock.tick(),
                });
                await store.putJob(putCommand(clock, ns, s.name, { config: { round } }));
                if (round === 2) await store.deleteJob(doomed.id, clock.tick());
              },
            );
            const seen = ids(items);
            expect(new Set(seen).size, `${orderBy} ${order}: duplicates`).toBe(seen.length);
            for (const s of steady) expect(seen, `${orderBy} ${order}: ${s.name}`).toContain(s.id);
            // Whatever was returned is in order.
            const positions = items.map((j) => cursorOf(j, orderBy));
            for (let i = 1; i < positions.length; i++) {
              const c = comparePositions(positions[i - 1] as JobCursor, positions[i] as JobCursor);
              expect(order === "asc" ? c < 0 : c > 0).toBe(true);
            }
          }
        }
      });

      it("applies the label filter in order, examining at most maxScan jobs per call", async () => {
        const made: JobRecord[] = [];
        for (let i = 0; i < 30; i++) {
          const labels: Record<string, string> = { idx: String(i), team: i % 10 === 0 ? "core" : "edge" };
          made.push(
            (await store.putJob(putCommand(clock, "default", `j${String(i).padStart(2, "0")}`, { labels })))
              .job,
          );
        }
        const filter = (l: Readonly<Record<string, string>>): boolean => l.team === "core";
        // 3 matches at positions 0, 10, 20; at most 7 examined per call.
        const q = query({ limit: 2, labelFilter: filter, maxScan: 7 });
        const p1 = await store.listJobs(q);
        expect(ids(p1.items)).toEqual([made[0]?.id]);
        expect(p1.next).toEqual(cursorOf(made[6] as JobRecord, "created_at"));
        const p2 = await store.listJobs({ ...q, cursor: p1.next });
        expect(ids(p2.items)).toEqual([made[10]?.id]);
        expect(p2.next).toEqual(cursorOf(made[13] as JobRecord, "created_at"));
        // A call that finds nothing still returns a cursor while jobs remain.
        const p4 = await store.listJobs({ ...q, cursor: cursorOf(made[20] as JobRecord, "created_at") });
        expect(p4).toEqual({ items: [], next: cursorOf(made[27] as JobRecord, "created_at") });
        const { items, pages } = await listAll(store, q);
        expect(ids(items)).toEqual([made[0]?.id, made[10]?.id, made[20]?.id]);
        expect(pages.length).toBe(5); // 30 jobs / 7 per call, rounded up
        // A full page stops early, with a cursor at the last match.
        const full = await store.listJobs(query({ limit: 2, labelFilter: filter }));
        expect(ids(full.items)).toEqual([made[0]?.id, made[10]?.id]);
        expect(full.next).toEqual(cursorOf(made[10] as JobRecord, "created_at"));
        // The default bound examines everything here.
        expect(ids((await store.listJobs(query({ limit: 10, labelFilter: filter }))).items)).toHaveLength(3);
      });

      it("rejects malformed queries", async () => {
        const bad: Array<Partial<ListJobsQuery>> = [
          { limit: 0 },
          { limit: 1.5 },
          { orderBy: "name", cursor: { key: 5, id: "x" } },
          { orderBy: "created_at", cursor: { key: "a", id: "x" } },
          { cursor: { key: 5, id: "" } },
          { states: ["nope" as JobStateType] },
          { types: ["nope" as JobType] },
          { maxScan: 0 },
          { namespace: "a:b" },
          { namespace: "" },
        ];
        for (const b of bad)
          expect((await rejection(store.listJobs(query(b)))).code, JSON.stringify(b)).toBe(
            "invalid_argument",
          );
      });
    });

    describe("properties", () => {
      const op = fc.oneof(
        fc.record({
          kind: fc.constant("put" as const),
          name: fc.integer({ min: 0, max: 5 }),
          v: fc.integer({ min: 0, max: 2 }),
        }),
        fc.record({
          kind: fc.constant("status" as const),
          name: fc.integer({ min: 0, max: 5 }),
          state: fc.constantFrom(...JOB_STATES.filter((s) => s !== "deleted")),
          guarded: fc.boolean(),
        }),
        fc.record({ kind: fc.constant("delete" as const), name: fc.integer({ min: 0, max: 5 }) }),
      );

      it("keeps revision >= version and one live job per name under random writes", async () => {
        await fc.assert(
          fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 30 }), async (ops) => {
            await withFreshStore(async (s) => {
              const c = new TestClock();
              for (const o of ops) {
                const name = `n${o.name}`;
                const live = await s.findJob("default", name);
                if (o.kind === "put") await s.putJob(putCommand(c, "default", name, { config: { v: o.v } }));
                else if (live && o.kind === "status") {
                  await s
                    .updateStatus(
                      live.id,
                      { state: o.state, message: "", now: c.tick() },
                      o.guarded ? { allowedFrom: allowedFrom(o.state) } : undefined,
                    )
                    .catch((err: unknown) => expect(err).toMatchObject({ code: "failed_precondition" }));
                } else if (live && o.kind === "delete") await s.deleteJob(live.id, c.tick());
              }
              const { items } = await listAll(s, query({ namespace: "*", includeDeleted: true, limit: 4 }));
              for (const j of items) expect(j.revision).toBeGreaterThanOrEqual(j.version);
              const liveNames = items.filter((j) => j.state !== "deleted").map((j) => j.name);
              expect(new Set(liveNames).size).toBe(liveNames.length);
              for (const n of liveNames) expect((await s.findJob("default", n))?.name).toBe(n);
            });
          }),
          { numRuns },
        );
      });

      it("pages completely and in order under random interleaved writes", async () => {
        const scenario = fc.record({
          initial: fc.array(
            fc.record({
              ns: fc.constantFrom("a", "b"),
              type: fc.constantFrom(...JOB_TYPES),
              dt: fc.constantFrom(0, 1, 5),
            }),
            { minLength: 1, maxLength: 25 },
          ),
          orderBy: fc.constantFrom("created_at" as const, "name" as const),
          order: fc.constantFrom("asc" as const, "desc" as const),
          limit: fc.integer({ min: 1, max: 6 }),
          namespace: fc.constantFrom("a", "*"),
          types: fc.subarray([...JOB_TYPES]),
          writes: fc.array(
            fc.oneof(
              fc.record({
                kind: fc.constant("create" as const),
                ns: fc.constantFrom("a", "b"),
                name: fc.nat(1000),
              }),
              fc.record({
                kind: fc.constant("status" as const),
                pick: fc.nat(),
                state: fc.constantFrom("running" as const, "failed" as const, "stopped" as const),
              }),
              fc.record({ kind: fc.constant("update" as const), pick: fc.nat() }),
              fc.record({ kind: fc.constant("delete" as const), pick: fc.nat() }),
            ),
            { maxLength: 40 },
          ),
        });
        await fc.assert(
          fc.asyncProperty(scenario, async (sc) => {
            await withFreshStore(async (s) => {
              const c = new TestClock();
              const initial: JobRecord[] = [];
              for (const [i, j] of sc.initial.entries()) {
                const now = c.tick(j.dt);
                initial.push((await s.putJob(putCommand(c, j.ns, `job-${i}`, { type: j.type, now }))).job);
              }
              let w = 0;
              // Deleted jobs stay listed (includeDeleted) and types never change, so every initial
              // job that matches the query matches it throughout.
              const q = query({
                namespace: sc.namespace,
                types: sc.types,
                orderBy: sc.orderBy,
                order: sc.order,
                limit: sc.limit,
                includeDeleted: true,
              });
              const { items } = await listAll(s, q, async () => {
                for (let k = 0; k < 2 && w < sc.writes.length; k++, w++) {
                  const write = sc.writes[w];
                  if (write === undefined) break;
                  if (write.kind === "create") {
                    await s.putJob(putCommand(c, write.ns, `new-${write.name}`));
                    continue;
                  }
                  const target = initial[write.pick % initial.length] as JobRecord;
                  const current = (await s.getJob(target.id)) as JobRecord;
                  if (current.state === "deleted") continue;
                  if (write.kind === "status")
                    await s.updateStatus(target.id, { state: write.state, message: "", now: c.tick() });
                  if (write.kind === "update") {
                    await s.putJob(
                      putCommand(c, target.namespace, target.name, { type: target.type, config: { w } }),
                    );
                  }
                  if (write.kind === "delete") await s.deleteJob(target.id, c.tick());
                }
              });
              const seen = ids(items);
              expect(new Set(seen).size).toBe(seen.length);
              const matching = initial.filter(
                (j) =>
                  (sc.namespace === "*" || j.namespace === sc.namespace) &&
                  (sc.types.length === 0 || sc.types.includes(j.type)),
              );
              for (const j of matching) expect(seen).toContain(j.id);
              for (let i = 1; i < items.length; i++) {
                const cmp = comparePositions(
                  cursorOf(items[i - 1] as JobRecord, sc.orderBy),
                  cursorOf(items[i] as JobRecord, sc.orderBy),
                );
                expect(sc.order === "asc" ? cmp < 0 : cmp > 0).toBe(true);
              }
            });
          }),
          { numRuns },
        );
      });

      it("returns exactly the jobs a label filter accepts, whatever the limit and scan bound", async () => {
        const scenario = fc.record({
          teams: fc.array(fc.constantFrom("x", "y", "z"), { minLength: 1, maxLength: 40 }),
          want: fc.constantFrom("x", "y"),
          limit: fc.integer({ min: 1, max: 5 }),
          maxScan: fc.integer({ min: 1, max: 12 }),
          order: fc.constantFrom("asc" as const, "desc" as const),
        });
        await fc.assert(
          fc.asyncProperty(scenario, async (sc) => {
            await withFreshStore(async (s) => {
              const c = new TestClock();
              const made: JobRecord[] = [];
              for (const [i, team] of sc.teams.entries()) {
                made.push((await s.putJob(putCommand(c, "default", `j${i}`, { labels: { team } }))).job);
              }
              const q = query({
                limit: sc.limit,
                maxScan: sc.maxScan,
                order: sc.order,
                labelFilter: (l) => l.team === sc.want,
              });
              const { items, pages } = await listAll(s, q);
              const expected = sortedAs(
                made.filter((j) => j.labels.team === sc.want),
                "created_at",
                sc.order,
              );
              expect(ids(items)).toEqual(ids(expected));
              for (const p of pages) expect(p.items.length).toBeLessThanOrEqual(sc.limit);
              // Every call examines at most maxScan jobs and the listing examines them all.
              expect(pages.length).toBeGreaterThanOrEqual(
                Math.max(Math.ceil(made.length / sc.maxScan), Math.ceil(expected.length / sc.limit)),
              );
            });
          }),
          { numRuns },
        );
      });
    });
  });
}
