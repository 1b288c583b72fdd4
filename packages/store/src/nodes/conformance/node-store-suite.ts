/**
 * The conformance suite of {@link NodeStore} and {@link DesiredStateStore}: every implementation
 * (memory in unit tests, Redis in `test/integration/nodes-store.test.ts`) must pass it unchanged.
 * Test-only code: not exported from the package barrel.
 */
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { JsonObject } from "../../job-store.js";
import type { AssignmentRecord, DesiredStateStore, NodeRecord, NodeStore } from "../node-store.js";

/** One set of stores under test. */
export interface NodeStoreFixture {
  readonly nodes: NodeStore;
  readonly desired: DesiredStateStore;
  /** New store instances over the same data: a control-plane restart. */
  reopen(): Promise<{ nodes: NodeStore; desired: DesiredStateStore }>;
  /** Stores raw text as node `id`'s record, bypassing every check (a corrupt entry). */
  corruptNode(id: string, text: string): Promise<void>;
  /** Releases everything (including reopened stores). */
  close(): Promise<void>;
}

/** What a fixture factory is given. */
export interface NodeStoreFixtureOptions {
  readonly onCorrupt: (id: string, error: Error) => void;
}

const T0 = Date.UTC(2026, 0, 1);

/** A valid node record with overrides. */
export function sampleNode(id: string, overrides: Partial<NodeRecord> = {}): NodeRecord {
  return {
    id,
    agentLabels: { "edgeplane.io/arch": "arm64", region: "eu-west" },
    operatorLabels: {},
    state: "ready",
    message: "",
    drained: false,
    lastHeartbeat: T0,
    agentVersion: "0.1.0",
    executors: ["pipeline", "exec"],
    instanceId: "inst-1",
    registeredAt: T0 - 1000,
    appliedRevision: 0,
    updatedAt: T0,
    ...overrides,
  };
}

/** A valid assignment with overrides. */
/**
 * Arbitrary assignments for property tests of the desired-state encoders (strings of any UTF-16
 * units up to `maxLength`, one of `configs` as the config).
 */
export function assignmentArbitrary(
  configs: readonly JsonObject[],
  maxLength: number,
): fc.Arbitrary<AssignmentRecord> {
  const str = fc.string({ unit: "binary", maxLength });
  const nat = fc.integer({ min: 0, max: 2 ** 31 - 1 });
  return fc.record({
    executionId: str,
    jobId: str,
    jobVersion: nat,
    namespace: str,
    jobName: str,
    type: str,
    config: fc.constantFrom(...configs),
    desiredState: fc.constantFrom("running" as const, "stopped" as const),
    timeouts: fc.record({ executionTimeout: nat, queueTimeout: nat, totalTimeout: nat }),
    restartPolicy: str,
    maxErrorRate: fc.double({ min: 0, max: 1, noNaN: true }),
    deploymentId: str,
  });
}

export function sampleAssignment(
  executionId: string,
  overrides: Partial<AssignmentRecord> = {},
): AssignmentRecord {
  return {
    executionId,
    jobId: "job-1",
    jobVersion: 1,
    namespace: "default",
    jobName: "logs",
    type: "pipeline",
    config: {
      input: { file: { paths: ["/var/log/*.log"] } },
      pipeline: { processors: [] },
      output: { stdout: {} },
    },
    desiredState: "running",
    timeouts: { executionTimeout: 0, queueTimeout: 0, totalTimeout: 0 },
    restartPolicy: "on-failure",
    maxErrorRate: 0.1,
    deploymentId: "",
    ...overrides,
  };
}

/** Registers the suite for one implementation. */
export function describeNodeStoreConformance(
  name: string,
  makeFixture: (options: NodeStoreFixtureOptions) => Promise<NodeStoreFixture>,
): void {
  describe(`NodeStore and DesiredStateStore conformance: ${name}`, () => {
    let fx: NodeStoreFixture;
    let corrupt: Array<{ id: string; error: Error }>;

    beforeEach(async () => {
      corrupt = [];
      fx = await makeFixture({ onCorrupt: (id, error) => corrupt.push({ id, error }) });
    });
    afterEach(async () => {
      await fx.close();
    });

    describe("NodeStore", () => {
      it("starts empty", async () => {
        expect(await fx.nodes.loadAll()).toEqual([]);
        expect(await fx.nodes.get("n1")).toBeUndefined();
      });

      it("round-trips every field, including odd labels", async () => {
        const a = sampleNode("n1", {
          // JSON.parse makes "__proto__" an own key, as a decoded message or request body would.
          agentLabels: JSON.parse(
            '{"edgeplane.io/os":"linux","__proto__":"x","constructor":"","a.b/c_d":"v-1.2"}',
          ),
          operatorLabels: { tier: "gateway" },
          state: "draining",
          drained: true,
          message: "drained by operator: kernel upgrade ✓",
          executors: [],
          appliedRevision: 4_294_967_295,
        });
        const b = sampleNode("edge_02-B", { state: "lost", message: "no heartbeat for 5m" });
        await fx.nodes.saveMany([a, b]);
        const loaded = await fx.nodes.loadAll();
        expect(loaded.sort((x, y) => x.id.localeCompare(y.id))).toEqual(
          [b, a].sort((x, y) => x.id.localeCompare(y.id)),
        );
        const got = await fx.nodes.get("n1");
        expect(got).toEqual(a);
        expect(Object.hasOwn(got?.agentLabels ?? {}, "__proto__")).toBe(true);
      });

      it("replaces records and survives a restart", async () => {
        await fx.nodes.saveMany([sampleNode("n1"), sampleNode("n2")]);
        await fx.nodes.saveMany([sampleNode("n1", { state: "disconnected", lastHeartbeat: T0 + 60_000 })]);
        const reopened = await fx.reopen();
        const all = await reopened.nodes.loadAll();
        expect(all).toHaveLength(2);
        expect(all.find((n) => n.id === "n1")).toMatchObject({
          state: "disconnected",
          lastHeartbeat: T0 + 60_000,
        });
      });

      it("writes a large batch in one call", async () => {
        const batch = Array.from({ length: 1234 }, (_, i) => sampleNode(`n${i}`, { appliedRevision: i }));
        await fx.nodes.saveMany(batch);
        const all = await fx.nodes.loadAll();
        expect(all).toHaveLength(1234);
        expect(all.find((n) => n.id === "n1233")?.appliedRevision).toBe(1233);
      });

      it("refuses a batch with a bad record and writes none of it", async () => {
        const bad = { ...sampleNode("n2"), state: "sleeping" } as unknown as NodeRecord;
        await expect(fx.nodes.saveMany([sampleNode("n1"), bad])).rejects.toMatchObject({
          code: "invalid_argument",
          message: expect.stringContaining("records[1].state"),
        });
        for (const broken of [
          { ...sampleNode("x"), id: "" },
          { ...sampleNode("x"), lastHeartbeat: -1 },
          { ...sampleNode("x"), agentLabels: { a: 1 } },
          { ...sampleNode("x"), appliedRevision: 1.5 },
          { ...sampleNode("x"), drained: "no" },
        ]) {
          await expect(fx.nodes.saveMany([broken as unknown as NodeRecord])).rejects.toMatchObject({
            code: "invalid_argument",
          });
        }
        expect(await fx.nodes.loadAll()).toEqual([]);
      });

      it("hands out copies", async () => {
        await fx.nodes.saveMany([sampleNode("n1")]);
        const got = (await fx.nodes.get("n1")) as { agentLabels: Record<string, string> };
        got.agentLabels.region = "changed";
        expect((await fx.nodes.get("n1"))?.agentLabels.region).toBe("eu-west");
      });

      it("skips and reports a corrupt entry instead of failing the load", async () => {
        await fx.nodes.saveMany([sampleNode("n1")]);
        await fx.corruptNode("n2", "{not json");
        await fx.corruptNode("n3", JSON.stringify({ v: 1, id: "other" }));
        const all = await fx.nodes.loadAll();
        expect(all.map((n) => n.id)).toEqual(["n1"]);
        expect(corrupt.map((c) => c.id).sort()).toEqual(["n2", "n3"]);
        await expect(fx.nodes.get("n2")).rejects.toMatchObject({ code: "internal" });
      });
    });

    describe("DesiredStateStore", () => {
      it("starts with no state and revision 0 semantics", async () => {
        expect(await fx.desired.get("n1")).toBeUndefined();
        expect(await fx.desired.loadAll()).toEqual([]);
        expect(await fx.desired.revisions()).toEqual(new Map());
      });

      it("bumps the revision on every write and round-trips the set", async () => {
        const a = sampleAssignment("exec-a", { config: { nested: { list: [1, "two", null, { x: true }] } } });
        const first = await fx.desired.put({ nodeId: "n1", assignments: [a], now: T0, expectedRevision: 0 });
        expect(first).toEqual({ nodeId: "n1", revision: 1, assignments: [a], updatedAt: T0 });
        const second = await fx.desired.put({
          nodeId: "n1",
          assignments: [],
          now: T0 + 1,
          expectedRevision: 1,
        });
        expect(second.revision).toBe(2);
        expect(second.assignments).toEqual([]);
        expect(await fx.desired.get("n1")).toEqual(second);
        expect(await fx.desired.revisions()).toEqual(new Map([["n1", 2]]));
        await fx.desired.put({ nodeId: "n2", assignments: [a, sampleAssignment("exec-b")], now: T0 });
        const all = await fx.desired.loadAll();
        expect(all.map((d) => [d.nodeId, d.revision, d.assignments.length]).sort()).toEqual([
          ["n1", 2, 0],
          ["n2", 1, 2],
        ]);
      });

      it("refuses a stale expected revision with the current one in metadata", async () => {
        await fx.desired.put({ nodeId: "n1", assignments: [], now: T0 });
        await expect(
          fx.desired.put({ nodeId: "n1", assignments: [], now: T0, expectedRevision: 0 }),
        ).rejects.toMatchObject({ code: "aborted", metadata: { current_revision: 1 } });
        expect((await fx.desired.get("n1"))?.revision).toBe(1);
      });

      it("lets exactly one of concurrent writers with the same expected revision win", async () => {
        const results = await Promise.allSettled(
          Array.from({ length: 10 }, (_, i) =>
            fx.desired.put({
              nodeId: "n1",
              assignments: [sampleAssignment(`e${i}`)],
              now: T0,
              expectedRevision: 0,
            }),
          ),
        );
        expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
        expect(results.filter((r) => r.status === "rejected")).toHaveLength(9);
        expect((await fx.desired.get("n1"))?.revision).toBe(1);
      });

      it("jumps to minRevision (an agent ahead of the store) and never goes down", async () => {
        await fx.desired.put({ nodeId: "n1", assignments: [], now: T0 });
        const jumped = await fx.desired.put({ nodeId: "n1", assignments: [], now: T0, minRevision: 40 });
        expect(jumped.revision).toBe(40);
        const next = await fx.desired.put({ nodeId: "n1", assignments: [], now: T0, minRevision: 3 });
        expect(next.revision).toBe(41);
      });

      it("keeps revisions across a restart", async () => {
        await fx.desired.put({ nodeId: "n1", assignments: [sampleAssignment("e1")], now: T0 });
        await fx.desired.put({ nodeId: "n1", assignments: [sampleAssignment("e2")], now: T0 });
        const reopened = await fx.reopen();
        expect((await reopened.desired.get("n1"))?.revision).toBe(2);
        expect((await reopened.desired.put({ nodeId: "n1", assignments: [], now: T0 })).revision).toBe(3);
      });

      it("stops at the largest uint32 revision", async () => {
        await fx.desired.put({ nodeId: "n1", assignments: [], now: T0, minRevision: 4_294_967_295 });
        await expect(fx.desired.put({ nodeId: "n1", assignments: [], now: T0 })).rejects.toMatchObject({
          code: "out_of_range",
        });
        expect((await fx.desired.get("n1"))?.revision).toBe(4_294_967_295);
      });

      it("putMany writes many nodes in one call, each like put, results in order", async () => {
        expect(await fx.desired.putMany([])).toEqual([]);
        await fx.desired.put({ nodeId: "n2", assignments: [], now: T0 });
        const a = sampleAssignment("exec-a");
        const results = await fx.desired.putMany([
          { nodeId: "n1", assignments: [a], now: T0, expectedRevision: 0 },
          { nodeId: "n2", assignments: [a], now: T0 + 1, expectedRevision: 1 },
          { nodeId: "n3", assignments: [], now: T0 + 2, minRevision: 7 },
        ]);
        expect(results).toEqual([
          { ok: true, record: { nodeId: "n1", revision: 1, assignments: [a], updatedAt: T0 } },
          { ok: true, record: { nodeId: "n2", revision: 2, assignments: [a], updatedAt: T0 + 1 } },
          { ok: true, record: { nodeId: "n3", revision: 7, assignments: [], updatedAt: T0 + 2 } },
        ]);
        for (const r of results) if (r.ok) expect(await fx.desired.get(r.record.nodeId)).toEqual(r.record);
        expect(await fx.desired.revisions()).toEqual(
          new Map([
            ["n1", 1],
            ["n2", 2],
            ["n3", 7],
          ]),
        );
      });

      it("putMany: a refused write does not stop the others, and says why", async () => {
        await fx.desired.put({ nodeId: "n1", assignments: [], now: T0 });
        await fx.desired.put({ nodeId: "full", assignments: [], now: T0, minRevision: 4_294_967_295 });
        const a = sampleAssignment("exec-a");
        const results = await fx.desired.putMany([
          { nodeId: "n1", assignments: [a], now: T0, expectedRevision: 0 },
          { nodeId: "", assignments: [], now: T0 },
          { nodeId: "n2", assignments: [a], now: T0, expectedRevision: 0 },
          { nodeId: "full", assignments: [], now: T0 },
          { nodeId: "n3", assignments: [a, a], now: T0 },
          { nodeId: "n4", assignments: [], now: T0 },
        ]);
        expect(results.map((r) => (r.ok ? r.record.revision : r.error.code))).toEqual([
          "aborted",
          "invalid_argument",
          1,
          "out_of_range",
          "invalid_argument",
          1,
        ]);
        const conflict = results[0];
        expect(conflict?.ok === false && conflict.error.metadata).toMatchObject({ current_revision: 1 });
        expect((await fx.desired.get("n1"))?.assignments).toEqual([]);
        expect(await fx.desired.get("n3")).toBeUndefined();
        expect((await fx.desired.get("n2"))?.assignments).toEqual([a]);
      });

      it("putMany applies writes of one node in order (a later one sees an earlier one)", async () => {
        const results = await fx.desired.putMany([
          { nodeId: "n1", assignments: [sampleAssignment("e1")], now: T0, expectedRevision: 0 },
          { nodeId: "n1", assignments: [sampleAssignment("e2")], now: T0, expectedRevision: 1 },
          { nodeId: "n1", assignments: [sampleAssignment("e3")], now: T0, expectedRevision: 1 },
        ]);
        expect(results.map((r) => (r.ok ? r.record.revision : r.error.code))).toEqual([1, 2, "aborted"]);
        const stored = await fx.desired.get("n1");
        expect(stored?.revision).toBe(2);
        expect(stored?.assignments.map((x) => x.executionId)).toEqual(["e2"]);
      });

      it("putMany takes a large batch", async () => {
        const cmds = Array.from({ length: 2100 }, (_, i) => ({
          nodeId: `n${i}`,
          assignments: [sampleAssignment(`exec-${i}`)],
          now: T0,
          expectedRevision: 0,
        }));
        const results = await fx.desired.putMany(cmds);
        expect(results.every((r, i) => r.ok && r.record.nodeId === `n${i}` && r.record.revision === 1)).toBe(
          true,
        );
        const revisions = await fx.desired.revisions();
        expect(revisions.size).toBe(2100);
        expect((await fx.desired.get("n2099"))?.assignments[0]?.executionId).toBe("exec-2099");
      });

      it("refuses malformed writes and writes nothing", async () => {
        const bad: unknown[] = [
          { nodeId: "", assignments: [], now: T0 },
          { nodeId: "n1", assignments: [{ ...sampleAssignment("e1"), desiredState: "paused" }], now: T0 },
          { nodeId: "n1", assignments: [sampleAssignment("e1"), sampleAssignment("e1")], now: T0 },
          { nodeId: "n1", assignments: [{ ...sampleAssignment("e1"), maxErrorRate: 2 }], now: T0 },
          { nodeId: "n1", assignments: [], now: T0, expectedRevision: -1 },
        ];
        for (const cmd of bad) {
          await expect(fx.desired.put(cmd as Parameters<DesiredStateStore["put"]>[0])).rejects.toMatchObject({
            code: "invalid_argument",
          });
        }
        expect(await fx.desired.get("n1")).toBeUndefined();
      });
    });
  });
}
