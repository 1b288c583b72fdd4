/**
 * The conformance suite of {@link ExecutionStore} and {@link LogStore}: every implementation
 * (memory in unit tests, Redis in `test/integration/executions-store.test.ts`) must pass it
 * unchanged. Test-only code: not exported from the package barrel.
 */
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ExecutionStateType, type ReportedExecutionState, reportApplies } from "../execution-state.js";
import type {
  ExecutionIdentity,
  ExecutionRecord,
  ExecutionReport,
  ExecutionStore,
  LogBounds,
  LogLineInput,
  LogStore,
} from "../execution-store.js";

/** One set of stores under test. */
export interface ExecutionStoreFixture {
  readonly executions: ExecutionStore;
  readonly logs: LogStore;
  /** New store instances over the same data: a control-plane restart. */
  reopen(): Promise<{ executions: ExecutionStore; logs: LogStore }>;
  /** Releases everything (including reopened stores). */
  close(): Promise<void>;
}

/** Options of one fixture. */
export interface ExecutionStoreFixtureOptions {
  readonly logBounds?: LogBounds;
}

const T0 = Date.UTC(2026, 0, 1);

/** A valid identity with overrides. */
export function sampleIdentity(id: string, overrides: Partial<ExecutionIdentity> = {}): ExecutionIdentity {
  return {
    id,
    jobId: "job-1",
    jobVersion: 1,
    nodeId: "n1",
    deploymentId: "",
    namespace: "default",
    jobType: "query",
    restartPolicy: "on-failure",
    desiredState: "running",
    ...overrides,
  };
}

/** A valid report with overrides. */
export function sampleReport(id: string, overrides: Partial<ExecutionReport> = {}): ExecutionReport {
  return {
    id,
    nodeId: "n1",
    state: "running",
    attempt: 1,
    reportedAt: T0 + 1000,
    now: T0 + 1000,
    startTime: T0 + 500,
    finishTime: 0,
    exitCode: undefined,
    exception: "",
    progress: 0,
    health: undefined,
    counters: undefined,
    ...overrides,
  };
}

/** A log line with overrides. */
export function sampleLine(agentSeq: number, overrides: Partial<LogLineInput> = {}): LogLineInput {
  return {
    agentSeq,
    time: T0 + agentSeq,
    stream: "stdout",
    level: "INFO",
    text: `line ${agentSeq}`,
    ...overrides,
  };
}

/** Registers the suite for one implementation. */
export function describeExecutionStoreConformance(
  name: string,
  makeFixture: (options: ExecutionStoreFixtureOptions) => Promise<ExecutionStoreFixture>,
  options: { numRuns?: number } = {},
): void {
  describe(`ExecutionStore and LogStore conformance: ${name}`, () => {
    let fx: ExecutionStoreFixture;
    let store: ExecutionStore;

    beforeEach(async () => {
      fx = await makeFixture({});
      store = fx.executions;
    });
    afterEach(async () => {
      await fx.close();
    });

    /** Creates `id` from a first report (running, attempt 1). */
    async function created(
      id: string,
      identity: Partial<ExecutionIdentity> = {},
      report: Partial<ExecutionReport> = {},
    ) {
      const out = await store.observe(
        sampleReport(id, { nodeId: identity.nodeId ?? "n1", ...report }),
        sampleIdentity(id, identity),
      );
      expect(out.status).toBe("applied");
      return (out as { record: ExecutionRecord }).record;
    }

    describe("records", () => {
      it("starts empty", async () => {
        expect(await store.get("exec-1")).toBeUndefined();
        expect(await store.list({ jobId: "job-1", includeArchived: true, limit: 10 })).toEqual({ items: [] });
      });

      it("creates from a first report only with an identity, and round-trips every field", async () => {
        expect(await store.observe(sampleReport("e1"))).toEqual({ status: "missing" });
        const result = '{"rows":[{"n":12345678901234567890,"s":"ü ✓"}],"empty":[],"obj":{}}';
        const out = await store.observe(
          sampleReport("e1", {
            state: "finished",
            exitCode: -3,
            exception: "exited",
            progress: 0.25,
            finishTime: T0 + 900,
            health: { healthy: true, errorRate: 0.125, since: T0 + 600 },
            counters: { messagesIn: 10, messagesOut: 7, messagesFiltered: 2, messagesErrored: 1 },
            result: { json: result, truncated: true, bytes: 2_000_000 },
          }),
          sampleIdentity("e1", { deploymentId: "dep-1", namespace: "ns", restartPolicy: "never" }),
        );
        expect(out.status).toBe("applied");
        expect((out as { previous?: string }).previous).toBeUndefined();
        const rec = await store.get("e1");
        expect(rec).toEqual({
          id: "e1",
          jobId: "job-1",
          jobVersion: 1,
          nodeId: "n1",
          deploymentId: "dep-1",
          namespace: "ns",
          jobType: "query",
          restartPolicy: "never",
          desiredState: "running",
          state: "finished",
          createdAt: T0 + 1000,
          updatedAt: T0 + 1000,
          startTime: T0 + 500,
          finishTime: T0 + 900,
          exitCode: -3,
          result,
          resultTruncated: true,
          resultBytes: 2_000_000,
          exception: "exited",
          progress: 0.25,
          health: { healthy: true, errorRate: 0.125, since: T0 + 600 },
          counters: { messagesIn: 10, messagesOut: 7, messagesFiltered: 2, messagesErrored: 1 },
          attempt: 1,
          reportedAt: T0 + 1000,
          endedAt: T0 + 1000,
          archived: false,
          archivedAt: 0,
          cancelReason: "",
          canceledAt: 0,
        } satisfies ExecutionRecord);
        expect(out).toEqual({ status: "applied", record: rec, previous: undefined });
      });

      it("refuses malformed reports before writing", async () => {
        await expect(
          store.observe(
            sampleReport("e1", { state: "lost" as ReportedExecutionState }),
            sampleIdentity("e1"),
          ),
        ).rejects.toMatchObject({ code: "invalid_argument" });
        await expect(
          store.observe(sampleReport("e1", { progress: 2 }), sampleIdentity("e1")),
        ).rejects.toMatchObject({ code: "invalid_argument" });
        await expect(store.observe(sampleReport("e1"), sampleIdentity("e2"))).rejects.toMatchObject({
          code: "invalid_argument",
        });
        await expect(
          store.observe(
            sampleReport("e1", { result: { json: "x".repeat(1024 * 1024 + 1), truncated: false, bytes: 1 } }),
            sampleIdentity("e1"),
          ),
        ).rejects.toMatchObject({ code: "resource_exhausted" });
        expect(await store.get("e1")).toBeUndefined();
      });

      it("ensure creates placeholders once, and never touches an existing execution", async () => {
        await created("e2", {}, { state: "running" });
        expect((await store.ensure([sampleIdentity("e1"), sampleIdentity("e2")], T0)).sort()).toEqual(["e1"]);
        expect(await store.ensure([sampleIdentity("e1")], T0 + 5)).toEqual([]);
        const p = await store.get("e1");
        expect(p).toMatchObject({ state: "waiting", attempt: 0, reportedAt: 0, createdAt: T0, endedAt: 0 });
        expect((await store.get("e2"))?.state).toBe("running");
        // The agent's first report replaces the placeholder.
        const out = await store.observe(sampleReport("e1", { attempt: 1 }));
        expect(out).toMatchObject({
          status: "applied",
          previous: "waiting",
          record: { state: "running", createdAt: T0 },
        });
      });

      it("refuses a report from another node and leaves the record alone", async () => {
        await created("e1");
        expect(
          await store.observe(sampleReport("e1", { nodeId: "n2", state: "error", reportedAt: T0 + 5000 })),
        ).toEqual({
          status: "wrong_node",
          owner: "n1",
        });
        expect((await store.get("e1"))?.state).toBe("running");
      });

      it("a new store over the same data sees everything (restart)", async () => {
        await created("e1");
        const reopened = await fx.reopen();
        expect((await reopened.executions.get("e1"))?.state).toBe("running");
        expect(
          (await reopened.executions.list({ jobId: "job-1", includeArchived: false, limit: 5 })).items,
        ).toHaveLength(1);
      });
    });

    describe("the monotonic guard", () => {
      it("ignores an older or repeated report of the same attempt", async () => {
        await created("e1", {}, { reportedAt: T0 + 2000, progress: 0.5 });
        expect(
          (await store.observe(sampleReport("e1", { reportedAt: T0 + 1000, progress: 0.1 }))).status,
        ).toBe("stale");
        expect(
          (await store.observe(sampleReport("e1", { reportedAt: T0 + 2000, progress: 0.1 }))).status,
        ).toBe("stale");
        expect((await store.get("e1"))?.progress).toBe(0.5);
        const newer = await store.observe(sampleReport("e1", { reportedAt: T0 + 3000, progress: 0.75 }));
        expect(newer).toMatchObject({ status: "applied", previous: "running", record: { progress: 0.75 } });
      });

      it("never lets a stale heartbeat's non-terminal state overwrite a terminal one", async () => {
        await created("e1", {}, { reportedAt: T0 + 1000 });
        const done = await store.observe(
          sampleReport("e1", {
            state: "finished",
            exitCode: 0,
            reportedAt: T0 + 3000,
            result: { json: "[1]", truncated: false, bytes: 3 },
          }),
        );
        expect(done.status).toBe("applied");
        // A heartbeat sent before the event, delivered after it.
        expect(
          (await store.observe(sampleReport("e1", { state: "running", reportedAt: T0 + 2000 }))).status,
        ).toBe("stale");
        // Even one with a later time: within an attempt, terminal is final.
        expect(
          (await store.observe(sampleReport("e1", { state: "running", reportedAt: T0 + 9000 }))).status,
        ).toBe("stale");
        expect(
          (await store.observe(sampleReport("e1", { state: "error", reportedAt: T0 + 9000 }))).status,
        ).toBe("stale");
        // The same terminal state again, newer, without a result: applies but keeps the result.
        const again = await store.observe(
          sampleReport("e1", { state: "finished", exitCode: 0, reportedAt: T0 + 9500 }),
        );
        expect(again).toMatchObject({
          status: "applied",
          record: { state: "finished", result: "[1]", resultBytes: 3 },
        });
      });

      it("a terminal event applies even when a newer heartbeat of the attempt came first", async () => {
        await created("e1", {}, { reportedAt: T0 + 5000 });
        const out = await store.observe(
          sampleReport("e1", { state: "error", exitCode: 2, reportedAt: T0 + 4000 }),
        );
        expect(out).toMatchObject({ status: "applied", record: { state: "error", exitCode: 2 } });
      });

      it("a new attempt replaces a terminal state; an older attempt never applies", async () => {
        await created("e1");
        await store.observe(sampleReport("e1", { state: "error", exitCode: 1, reportedAt: T0 + 2000 }));
        expect((await store.get("e1"))?.endedAt).toBe(T0 + 1000);
        const retry = await store.observe(
          sampleReport("e1", { attempt: 2, state: "running", reportedAt: T0 + 1500, now: T0 + 3000 }),
        );
        expect(retry).toMatchObject({
          status: "applied",
          previous: "error",
          record: { state: "running", attempt: 2, endedAt: 0 },
        });
        expect(
          (
            await store.observe(
              sampleReport("e1", { attempt: 1, state: "finished", reportedAt: T0 + 99_000 }),
            )
          ).status,
        ).toBe("stale");
        // No longer ended: not archived.
        expect(await store.archive(T0 + 10_000, T0 + 10_000, 10)).toEqual([]);
      });

      it("agrees with reportApplies on any sequence of reports", async () => {
        const states: ReportedExecutionState[] = [
          "waiting",
          "running",
          "finished",
          "error",
          "timed_out",
          "canceled",
        ];
        const report = fc.record({
          state: fc.constantFrom(...states),
          attempt: fc.integer({ min: 1, max: 3 }),
          reportedAt: fc.integer({ min: 1, max: 12 }),
        });
        let run = 0;
        await fc.assert(
          fc.asyncProperty(fc.array(report, { minLength: 1, maxLength: 12 }), async (reports) => {
            const id = `prop-${run++}`;
            let model: { state: ExecutionStateType; attempt: number; reportedAt: number } | undefined;
            for (const r of reports) {
              const out = await store.observe(
                sampleReport(id, { state: r.state, attempt: r.attempt, reportedAt: T0 + r.reportedAt }),
                sampleIdentity(id),
              );
              const key = { state: r.state, attempt: r.attempt, reportedAt: T0 + r.reportedAt };
              const applies = model === undefined || reportApplies(model, key);
              expect(out.status).toBe(applies ? "applied" : "stale");
              if (applies) model = key;
              const rec = await store.get(id);
              expect({ state: rec?.state, attempt: rec?.attempt, reportedAt: rec?.reportedAt }).toEqual(
                model,
              );
            }
          }),
          { numRuns: options.numRuns ?? 100 },
        );
      });
    });

    describe("lost nodes", () => {
      it("moves the node's executions that are not ended to lost, and a newer report from the node wins", async () => {
        await created("e1", {}, { reportedAt: T0 + 2000 });
        await created("e2", {}, { state: "finished", exitCode: 0 });
        await store.ensure([sampleIdentity("e3")], T0);
        await created("e4", { nodeId: "n2" });
        const lost = await store.markLost("n1", T0 + 60_000, "node n1 was lost");
        expect(lost.map((r) => r.id).sort()).toEqual(["e1", "e3"]);
        expect(
          lost.every(
            (r) => r.state === "lost" && r.exception === "node n1 was lost" && r.endedAt === T0 + 60_000,
          ),
        ).toBe(true);
        expect((await store.get("e2"))?.state).toBe("finished");
        expect((await store.get("e4"))?.state).toBe("running");
        expect(await store.markLost("n1", T0 + 61_000, "again")).toEqual([]);
        // A stale report (not newer than the last one before the loss) does not revive it.
        expect((await store.observe(sampleReport("e1", { reportedAt: T0 + 2000 }))).status).toBe("stale");
        const back = await store.observe(sampleReport("e1", { reportedAt: T0 + 70_000, now: T0 + 70_000 }));
        expect(back).toMatchObject({
          status: "applied",
          previous: "lost",
          record: { state: "running", endedAt: 0 },
        });
      });
    });

    describe("placeholders withdrawn", () => {
      it("deletes only the node's never-reported placeholders that are not kept", async () => {
        await store.ensure(
          [sampleIdentity("p1"), sampleIdentity("p2"), sampleIdentity("p3", { nodeId: "n2" })],
          T0,
        );
        await created("e1");
        expect(await store.withdraw("n1", ["p2"])).toEqual([{ id: "p1", jobId: "job-1" }]);
        expect(await store.get("p1")).toBeUndefined();
        expect((await store.get("p2"))?.state).toBe("waiting");
        expect((await store.get("p3"))?.state).toBe("waiting");
        expect((await store.get("e1"))?.state).toBe("running");
        const ids = (await store.list({ jobId: "job-1", includeArchived: true, limit: 10 })).items
          .map((r) => r.id)
          .sort();
        expect(ids).toEqual(["e1", "p2", "p3"]);
      });
    });

    describe("cancel (desired state)", () => {
      it("sets desired stopped once; refuses a terminal execution naming its state", async () => {
        await expect(store.requestStop("nope", T0, "")).rejects.toMatchObject({ code: "not_found" });
        await created("e1");
        const first = await store.requestStop("e1", T0 + 5, "not needed");
        expect(first).toMatchObject({
          changed: true,
          record: {
            desiredState: "stopped",
            cancelReason: "not needed",
            canceledAt: T0 + 5,
            state: "running",
          },
        });
        expect((await store.requestStop("e1", T0 + 6, "again")).changed).toBe(false);
        // The observed side is untouched by the desired write, and vice versa.
        await store.observe(sampleReport("e1", { state: "canceled", reportedAt: T0 + 9000 }));
        expect(await store.get("e1")).toMatchObject({ state: "canceled", desiredState: "stopped" });
        await created("e2", {}, { state: "finished", exitCode: 0 });
        const err = await store.requestStop("e2", T0, "").catch((e: unknown) => e);
        expect(err).toMatchObject({ code: "failed_precondition", metadata: { current_state: "finished" } });
        expect(String((err as Error).message)).toMatch(/already finished/);
      });

      it("allows canceling a lost execution", async () => {
        await created("e1");
        await store.markLost("n1", T0 + 10, "lost");
        expect((await store.requestStop("e1", T0 + 11, "")).changed).toBe(true);
      });
    });

    describe("list", () => {
      async function seed(): Promise<void> {
        // Created at T0 + i (i = 0..9) on nodes n0/n1, states alternating; one of another job.
        for (let i = 0; i < 10; i++) {
          const id = `e${String(9 - i)}`; // ids not in creation order: order is (createdAt, id)
          const nodeId = `n${i % 2}`;
          await store.observe(
            sampleReport(id, {
              nodeId,
              now: T0 + i,
              state: i % 3 === 0 ? "finished" : "running",
              exitCode: i % 3 === 0 ? 0 : undefined,
            }),
            sampleIdentity(id, { nodeId }),
          );
        }
        await store.observe(sampleReport("other", { now: T0 }), sampleIdentity("other", { jobId: "job-2" }));
      }

      it("pages in creation order with filters, stable and complete", async () => {
        await seed();
        const all: string[] = [];
        let cursor: Awaited<ReturnType<ExecutionStore["list"]>>["next"];
        do {
          const page = await store.list({ jobId: "job-1", includeArchived: false, limit: 3, cursor });
          all.push(...page.items.map((r) => r.id));
          cursor = page.next;
        } while (cursor);
        expect(all).toEqual(["e9", "e8", "e7", "e6", "e5", "e4", "e3", "e2", "e1", "e0"]);
        const finished = await store.list({
          jobId: "job-1",
          includeArchived: false,
          limit: 10,
          states: ["finished"],
        });
        expect(finished.items.map((r) => r.id)).toEqual(["e9", "e6", "e3", "e0"]);
        expect(finished.next).toBeUndefined();
        const n1 = await store.list({
          jobId: "job-1",
          includeArchived: false,
          limit: 10,
          nodeId: "n1",
          states: ["running", "finished"],
        });
        expect(n1.items.map((r) => r.id)).toEqual(["e8", "e6", "e4", "e2", "e0"]);
        const exactly = await store.list({ jobId: "job-1", includeArchived: false, limit: 10 });
        expect(exactly.items).toHaveLength(10);
        expect(exactly.next).toBeUndefined();
        const other = await store.list({ jobId: "job-2", includeArchived: false, limit: 10 });
        expect(other.items.map((r) => r.id)).toEqual(["other"]);
      });

      it("examines at most maxScan per call and returns a cursor to continue", async () => {
        await seed();
        const page = await store.list({
          jobId: "job-1",
          includeArchived: false,
          limit: 5,
          states: ["finished"],
          maxScan: 4,
        });
        expect(page.items.map((r) => r.id)).toEqual(["e9", "e6"]);
        expect(page.next).toEqual({ createdAt: T0 + 3, id: "e6" });
        const rest = await store.list({
          jobId: "job-1",
          includeArchived: false,
          limit: 5,
          states: ["finished"],
          maxScan: 100,
          cursor: page.next,
        });
        expect(rest.items.map((r) => r.id)).toEqual(["e3", "e0"]);
      });

      it("refuses a limit outside 1..1000", async () => {
        await expect(store.list({ jobId: "job-1", includeArchived: false, limit: 0 })).rejects.toMatchObject({
          code: "invalid_argument",
        });
        await expect(
          store.list({ jobId: "job-1", includeArchived: false, limit: 1001 }),
        ).rejects.toMatchObject({ code: "invalid_argument" });
      });
    });

    describe("archive and purge", () => {
      it("archives executions ended before the cutoff; they stay readable and list only with includeArchived", async () => {
        await created("e1", {}, { state: "finished", exitCode: 0, now: T0 + 100 });
        await created("e2", {}, { state: "error", exitCode: 1, now: T0 + 200 });
        await created("e3", {}, { state: "running", now: T0 + 300 });
        await created("e4", {}, { now: T0 + 400 });
        await store.markLost("n1", T0 + 500, "lost"); // e3, e4 lost at T0 + 500
        expect(await store.archive(T0 + 150, T0 + 1000, 10)).toEqual(["e1"]);
        expect((await store.archive(T0 + 10_000, T0 + 2000, 2)).sort()).toEqual(["e2", "e3"]);
        expect(await store.archive(T0 + 10_000, T0 + 3000, 10)).toEqual(["e4"]);
        expect(await store.archive(T0 + 10_000, T0 + 3000, 10)).toEqual([]);
        expect(await store.get("e1")).toMatchObject({
          archived: true,
          archivedAt: T0 + 1000,
          state: "finished",
        });
        expect((await store.list({ jobId: "job-1", includeArchived: false, limit: 10 })).items).toEqual([]);
        const withArchived = await store.list({ jobId: "job-1", includeArchived: true, limit: 10 });
        expect(withArchived.items.map((r) => r.id)).toEqual(["e1", "e2", "e3", "e4"]);
        // Archived executions are frozen.
        expect(
          (await store.observe(sampleReport("e3", { attempt: 5, reportedAt: T0 + 99_999 }))).status,
        ).toBe("archived");
        await expect(store.requestStop("e3", T0, "")).rejects.toMatchObject({ code: "failed_precondition" });
        expect(await store.markLost("n1", T0 + 9999, "again")).toEqual([]);
        // Purge deletes those archived long enough ago.
        expect(await store.purge(T0 + 1500, 10)).toEqual(["e1"]);
        expect(await store.get("e1")).toBeUndefined();
        expect(
          (await store.list({ jobId: "job-1", includeArchived: true, limit: 10 })).items.map((r) => r.id),
        ).toEqual(["e2", "e3", "e4"]);
      });

      it("merges live and archived executions in creation order", async () => {
        // e0..e5 created at T0 + i; the odd ones end (and are archived), the even ones keep running.
        for (let i = 0; i < 6; i++) await created(`e${i}`, {}, { now: T0 + i });
        for (const i of [1, 3, 5])
          await store.observe(
            sampleReport(`e${i}`, { state: "finished", exitCode: 0, reportedAt: T0 + 5000, now: T0 + 10 }),
          );
        expect((await store.archive(T0 + 100, T0 + 100, 10)).sort()).toEqual(["e1", "e3", "e5"]);
        const live = await store.list({ jobId: "job-1", includeArchived: false, limit: 10 });
        expect(live.items.map((r) => r.id)).toEqual(["e0", "e2", "e4"]);
        const pages: string[] = [];
        let cursor: Awaited<ReturnType<ExecutionStore["list"]>>["next"];
        do {
          const page = await store.list({ jobId: "job-1", includeArchived: true, limit: 2, cursor });
          pages.push(...page.items.map((r) => r.id));
          cursor = page.next;
        } while (cursor);
        expect(pages).toEqual(["e0", "e1", "e2", "e3", "e4", "e5"]);
      });
    });
  });

  describe(`LogStore conformance: ${name}`, () => {
    let fx: ExecutionStoreFixture;
    let logs: LogStore;

    beforeEach(async () => {
      fx = await makeFixture({ logBounds: { maxLines: 5, maxBytes: 100_000 } });
      logs = fx.logs;
    });
    afterEach(async () => {
      await fx.close();
    });

    const texts = (r: { lines: Array<{ text: string }> }) => r.lines.map((l) => l.text);

    it("appends, reads all, a tail, and after a position", async () => {
      expect(await logs.read("e1")).toEqual({ lines: [], dropped: 0, lastSeq: 0 });
      const out = await logs.append(
        "e1",
        [sampleLine(1), sampleLine(2, { level: "ERROR", stream: "stderr" }), sampleLine(3)],
        0,
      );
      expect(out).toEqual({ appended: 3, lastSeq: 3, dropped: 0 });
      const all = await logs.read("e1");
      expect(all.lines).toEqual([
        { seq: 1, agentSeq: 1, time: T0 + 1, stream: "stdout", level: "INFO", text: "line 1" },
        { seq: 2, agentSeq: 2, time: T0 + 2, stream: "stderr", level: "ERROR", text: "line 2" },
        { seq: 3, agentSeq: 3, time: T0 + 3, stream: "stdout", level: "INFO", text: "line 3" },
      ]);
      expect(texts(await logs.read("e1", { tail: 2 }))).toEqual(["line 2", "line 3"]);
      expect(texts(await logs.read("e1", { after: 1 }))).toEqual(["line 2", "line 3"]);
      expect(texts(await logs.read("e1", { after: 3 }))).toEqual([]);
      expect(texts(await logs.read("e1", { after: 0, limit: 1 }))).toEqual(["line 1"]);
      expect(await logs.read("e2")).toEqual({ lines: [], dropped: 0, lastSeq: 0 });
    });

    it("keeps at most maxLines, dropping the oldest first and counting them", async () => {
      await logs.append(
        "e1",
        [1, 2, 3, 4, 5, 6, 7, 8].map((i) => sampleLine(i)),
        0,
      );
      const r = await logs.read("e1");
      expect(texts(r)).toEqual(["line 4", "line 5", "line 6", "line 7", "line 8"]);
      expect(r.dropped).toBe(3);
      expect(r.lastSeq).toBe(8);
      expect(r.lines[0]?.seq).toBe(4);
      // A follower behind the kept window resumes at the oldest kept line.
      expect(texts(await logs.read("e1", { after: 1 }))).toEqual([
        "line 4",
        "line 5",
        "line 6",
        "line 7",
        "line 8",
      ]);
      expect(texts(await logs.read("e1", { after: 6 }))).toEqual(["line 7", "line 8"]);
    });

    it("keeps at most maxBytes, and counts what the agent dropped once", async () => {
      await fx.close();
      fx = await makeFixture({ logBounds: { maxLines: 1000, maxBytes: 300 } });
      logs = fx.logs;
      const long = (i: number) => sampleLine(i, { text: `${i}:${"x".repeat(60)}` });
      const out = await logs.append("e1", [1, 2, 3, 4, 5, 6].map(long), 7);
      expect(out.appended).toBe(6);
      const r = await logs.read("e1");
      // Each stored line is about 110 bytes: two fit in 300.
      expect(r.lines.map((l) => l.agentSeq)).toEqual([5, 6]);
      expect(r.dropped).toBe(4 + 7);
      // The same batch again (another replica, a resend) appends nothing and counts nothing.
      expect(await logs.append("e1", [1, 2, 3, 4, 5, 6].map(long), 7)).toEqual({
        appended: 0,
        lastSeq: 6,
        dropped: 11,
      });
      // A line longer than the byte bound on its own is dropped too (nothing is kept half).
      await logs.append("e1", [sampleLine(7, { text: "y".repeat(400) })], 0);
      expect((await logs.read("e1")).lines).toEqual([]);
      expect((await logs.read("e1")).dropped).toBe(14);
    });

    it("skips lines already kept, and appends after an agent restart (sequence starts again, later time)", async () => {
      await logs.append("e1", [sampleLine(1), sampleLine(2)], 0);
      expect((await logs.append("e1", [sampleLine(2), sampleLine(3)], 0)).appended).toBe(1);
      const restarted = await logs.append(
        "e1",
        [sampleLine(1, { time: T0 + 100, text: "after restart" })],
        0,
      );
      expect(restarted).toEqual({ appended: 1, lastSeq: 4, dropped: 0 });
      expect(texts(await logs.read("e1", { tail: 1 }))).toEqual(["after restart"]);
    });

    it("cuts overlong lines and deletes logs", async () => {
      await logs.append("e1", [sampleLine(1, { text: "z".repeat(20_000) })], 0);
      expect((await logs.read("e1")).lines[0]?.text).toHaveLength(16 * 1024);
      await logs.delete(["e1", "e2"]);
      expect(await logs.read("e1")).toEqual({ lines: [], dropped: 0, lastSeq: 0 });
    });

    it("orders by agent time then sequence (lines without a time rely on the sequence)", async () => {
      const untimed = (i: number) => sampleLine(i, { time: 0 });
      expect((await logs.append("e1", [untimed(1), untimed(2)], 0)).appended).toBe(2);
      expect((await logs.append("e1", [untimed(2), untimed(3)], 0)).appended).toBe(1);
      const r = await logs.read("e1");
      expect(r.lines.map((l) => l.agentSeq)).toEqual([1, 2, 3]);
    });
  });
}
