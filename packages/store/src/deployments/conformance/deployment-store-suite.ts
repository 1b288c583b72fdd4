/**
 * The conformance suite of {@link DeploymentStore}, {@link NodeVersionStore} and
 * {@link LeaderLease}: every implementation (memory in unit tests, Redis in
 * `test/integration/rollout-store.test.ts`) must pass it unchanged. Test-only code.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { JsonObject } from "../../job-store.js";
import type { DeploymentStore, DeploymentWrite, LeaderLease, NodeVersionStore } from "../deployment-store.js";

/** One set of stores under test. */
export interface DeploymentStoreFixture {
  readonly store: DeploymentStore;
  readonly versions: NodeVersionStore;
  readonly lease: LeaderLease;
  /** Makes the current lease expire now (as if its TTL passed). */
  expireLease(): Promise<void>;
  close(): Promise<void>;
}

const T0 = Date.UTC(2026, 0, 1);

/** A deployment write with overrides. */
export function sampleWrite(id: string, overrides: Partial<DeploymentWrite> = {}): DeploymentWrite {
  return {
    id,
    jobId: "job-1",
    state: "pending",
    active: true,
    createdAt: T0,
    now: T0,
    record: { id, jobId: "job-1", state: "pending", nodes: { n1: { state: "pending", wave: 1 } } },
    summary: { id, jobId: "job-1", state: "pending" },
    ...overrides,
  };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return (err as { code?: string }).code ?? "?";
  }
}

/** `code field` of a rejection (`ok` when it resolves), such as `invalid_argument nodes[0]`. */
async function refusalOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    const e = err as { code?: string; details?: ReadonlyArray<{ field?: string }> };
    return `${e.code ?? "?"} ${e.details?.[0]?.field ?? ""}`.trim();
  }
}

/** A write of a deployment whose record keeps its node table apart (no `nodes` member). */
function tableWrite(id: string, overrides: Partial<DeploymentWrite> = {}): DeploymentWrite {
  return sampleWrite(id, { record: { id, jobId: "job-1", state: "pending", wave: 1 }, ...overrides });
}

/** `count` node entries `n00000`, `n00001`, … with `state`. */
function entries(count: number, state: string, from = 0): Array<[string, JsonObject]> {
  return Array.from({ length: count }, (_, i) => [
    `n${String(from + i).padStart(5, "0")}`,
    { state, wave: 1 + ((from + i) % 7) },
  ]);
}

/** Registers the suite for one implementation. */
export function describeDeploymentStoreConformance(
  name: string,
  makeFixture: () => Promise<DeploymentStoreFixture>,
): void {
  describe(`DeploymentStore, NodeVersionStore and LeaderLease conformance: ${name}`, () => {
    let fx: DeploymentStoreFixture;
    beforeEach(async () => {
      fx = await makeFixture();
    });
    afterEach(async () => {
      await fx.close();
    });

    it("creates once: a second create with the same id answers the stored deployment", async () => {
      const first = await fx.store.create(sampleWrite("d1"));
      expect(first.created).toBe(true);
      expect(first.deployment.revision).toBe(1);
      expect(first.deployment.record.revision).toBe(1);
      const again = await fx.store.create(sampleWrite("d1", { state: "running" }));
      expect(again.created).toBe(false);
      expect(again.deployment.state).toBe("pending");
      expect(again.deployment.record).toEqual({ ...sampleWrite("d1").record, revision: 1 });
      const got = await fx.store.get("d1");
      // A record that carries its own per-node table (as deployments written before the node
      // table was kept apart do) round-trips; the store's node table is then empty.
      expect(got?.record.nodes).toEqual({ n1: { state: "pending", wave: 1 } });
      expect(got?.nodes).toEqual({});
      expect(got?.targets).toBeUndefined();
      const sum = await fx.store.getSummary("d1");
      expect(sum?.summary).toEqual({ id: "d1", jobId: "job-1", state: "pending", revision: 1 });
      expect(await fx.store.get("nope")).toBeUndefined();
      expect(await fx.store.getSummary("nope")).toBeUndefined();
    });

    it("updates under the revision and state guards", async () => {
      await fx.store.create(sampleWrite("d1"));
      const w = sampleWrite("d1", { state: "running", now: T0 + 5, summary: { state: "running" } });
      expect(await fx.store.update(w, { expectedRevision: 1, allowedFrom: ["pending", "paused"] })).toBe(2);
      const got = await fx.store.get("d1");
      expect(got).toMatchObject({ state: "running", revision: 2, updatedAt: T0 + 5 });
      expect(got?.record.revision).toBe(2);
      // stale revision
      const stale = fx.store.update(w, { expectedRevision: 1 });
      await expect(stale).rejects.toMatchObject({ code: "aborted", metadata: { current_revision: 2 } });
      // state guard
      const refused = fx.store.update(sampleWrite("d1", { state: "paused" }), {
        expectedRevision: 2,
        allowedFrom: ["pending"],
      });
      await expect(refused).rejects.toMatchObject({
        code: "failed_precondition",
        metadata: { current_state: "running" },
      });
      expect(await codeOf(fx.store.update(sampleWrite("zz"), { expectedRevision: 1 }))).toBe("not_found");
      expect(await codeOf(fx.store.update(w, { expectedRevision: 0 }))).toBe("invalid_argument");
    });

    it("keeps the node table and the frozen targets written at create", async () => {
      const first = await fx.store.create(
        tableWrite("d1", {
          nodes: [
            ["n1", { state: "pending", wave: 1 }],
            ["n2", { state: "pending", wave: 2 }],
            ["n1", { state: "assigned", wave: 1 }],
            ["n3", {}],
          ],
          targets: ["n3", "n1", "n2"],
        }),
      );
      const want = {
        n1: { state: "assigned", wave: 1 },
        n2: { state: "pending", wave: 2 },
        n3: {},
      };
      expect(first.deployment.nodes).toEqual(want);
      expect(first.deployment.targets).toEqual(["n3", "n1", "n2"]);
      const got = await fx.store.get("d1");
      expect(got?.nodes).toEqual(want);
      expect(got?.targets).toEqual(["n3", "n1", "n2"]);
      expect(got?.record).toEqual({ id: "d1", jobId: "job-1", state: "pending", wave: 1, revision: 1 });
      // A repeated create answers what is stored, node table and targets included.
      const again = await fx.store.create(tableWrite("d1", { nodes: [["n9", {}]], targets: ["n9"] }));
      expect(again.created).toBe(false);
      expect(again.deployment.nodes).toEqual(want);
      expect(again.deployment.targets).toEqual(["n3", "n1", "n2"]);
    });

    it("upserts only the node entries an update lists", async () => {
      await fx.store.create(tableWrite("d1", { nodes: entries(4, "pending"), targets: ["n00000"] }));
      const rev = await fx.store.update(
        tableWrite("d1", {
          state: "running",
          nodes: [
            ["n00001", { state: "done" }],
            ["n00004", { state: "assigned" }],
          ],
        }),
        { expectedRevision: 1 },
      );
      expect(rev).toBe(2);
      const got = await fx.store.get("d1");
      expect(got?.nodes).toEqual({
        n00000: { state: "pending", wave: 1 },
        n00001: { state: "done" },
        n00002: { state: "pending", wave: 3 },
        n00003: { state: "pending", wave: 4 },
        n00004: { state: "assigned" },
      });
      expect(got?.targets).toEqual(["n00000"]);
      // No entries: the table stays as it is.
      await fx.store.update(tableWrite("d1", { state: "running" }), { expectedRevision: 2 });
      expect(Object.keys((await fx.store.get("d1"))?.nodes ?? {})).toHaveLength(5);
    });

    it("writes no node entry when it refuses an update (revision, state guard, fence)", async () => {
      const a = await fx.lease.acquire("cp-a", 10_000);
      const epoch = a.held ? a.epoch : 0;
      await fx.store.create(tableWrite("d1", { nodes: entries(2, "pending") }), { epoch });
      const changed = tableWrite("d1", {
        state: "running",
        nodes: [
          ["n00000", { state: "done" }],
          ["n-new", { state: "pending" }],
        ],
      });
      expect(await codeOf(fx.store.update(changed, { expectedRevision: 2 }))).toBe("aborted");
      expect(await codeOf(fx.store.update(changed, { expectedRevision: 1, allowedFrom: ["paused"] }))).toBe(
        "failed_precondition",
      );
      const fenced = fx.store.update(changed, { expectedRevision: 1, fence: { epoch: epoch + 1 } });
      await expect(fenced).rejects.toMatchObject({ code: "failed_precondition", metadata: { fenced: true } });
      expect(
        await codeOf(fx.store.update(tableWrite("zz", { nodes: [["n1", {}]] }), { expectedRevision: 1 })),
      ).toBe("not_found");
      const got = await fx.store.get("d1");
      expect(got?.revision).toBe(1);
      expect(got?.nodes).toEqual(Object.fromEntries(entries(2, "pending")));
      expect(await fx.store.get("zz")).toBeUndefined();
    });

    it("refuses targets on update and malformed node entries or targets, writing nothing", async () => {
      await fx.store.create(tableWrite("d1", { nodes: [["n1", { state: "pending" }]], targets: ["n1"] }));
      const update = (w: Partial<DeploymentWrite>) =>
        refusalOf(fx.store.update(tableWrite("d1", w), { expectedRevision: 1 }));
      expect(await update({ targets: ["n1", "n2"] })).toBe("invalid_argument targets");
      expect(await update({ targets: [] })).toBe("invalid_argument targets");
      const bad: Array<[unknown, string]> = [
        [[["", {}]], "nodes[0]"],
        [[["a b", {}]], "nodes[0]"],
        [[["a|b", {}]], "nodes[0]"],
        [[["n1", "pending"]], "nodes[0]"],
        [[["n1", null]], "nodes[0]"],
        [[["n1", [1, 2]]], "nodes[0]"],
        [[["n1"]], "nodes[0]"],
        [[["n1", {}], "n2"], "nodes[1]"],
        [{ n1: {} }, "nodes"],
        ["n1", "nodes"],
      ];
      for (const [nodes, field] of bad) {
        const w = { nodes } as unknown as Partial<DeploymentWrite>;
        expect(await update(w), JSON.stringify(nodes)).toBe(`invalid_argument ${field}`);
        expect(await refusalOf(fx.store.create(tableWrite("d2", w))), JSON.stringify(nodes)).toBe(
          `invalid_argument ${field}`,
        );
      }
      const badTargets: Array<[unknown, string]> = [
        [["n1", "a b"], "targets[1]"],
        [[""], "targets[0]"],
        [[7], "targets[0]"],
        ["n1", "targets"],
      ];
      for (const [targets, field] of badTargets) {
        const w = { targets } as unknown as Partial<DeploymentWrite>;
        expect(await refusalOf(fx.store.create(tableWrite("d2", w))), JSON.stringify(targets)).toBe(
          `invalid_argument ${field}`,
        );
      }
      const tooMany = Array.from({ length: 100_001 }, (_, i) => `n${i}`);
      expect(await refusalOf(fx.store.create(tableWrite("d2", { targets: tooMany })))).toBe(
        "invalid_argument targets",
      );
      expect(
        await refusalOf(
          fx.store.create(tableWrite("d2", { nodes: tooMany.map((id) => [id, {}] as [string, JsonObject]) })),
        ),
      ).toBe("invalid_argument nodes");
      expect(await fx.store.get("d2")).toBeUndefined();
      const got = await fx.store.get("d1");
      expect(got).toMatchObject({ revision: 1, nodes: { n1: { state: "pending" } }, targets: ["n1"] });
    });

    it("answers summary reads with the record when written without a summary", async () => {
      await fx.store.create(tableWrite("d1", { summary: undefined, nodes: [["n1", { state: "pending" }]] }));
      const record = { id: "d1", jobId: "job-1", state: "pending", wave: 1, revision: 1 };
      expect((await fx.store.getSummary("d1"))?.summary).toEqual(record);
      await fx.store.create(sampleWrite("d2", { createdAt: T0 - 1 }));
      const page = await fx.store.list({ jobId: "job-1", limit: 10 });
      expect(page.items.map((d) => [d.id, d.revision, d.summary])).toEqual([
        ["d1", 1, record],
        ["d2", 1, { id: "d2", jobId: "job-1", state: "pending", revision: 1 }],
      ]);
      expect((await fx.store.get("d1"))?.record).toEqual(record);
    });

    it("drops the stored summary when an update gives none (no stale summary)", async () => {
      await fx.store.create(tableWrite("d1"));
      expect((await fx.store.getSummary("d1"))?.summary).toEqual({
        id: "d1",
        jobId: "job-1",
        state: "pending",
        revision: 1,
      });
      const record = { id: "d1", jobId: "job-1", state: "running", wave: 2 };
      await fx.store.update(tableWrite("d1", { state: "running", record, summary: undefined }), {
        expectedRevision: 1,
      });
      expect(await fx.store.getSummary("d1")).toMatchObject({
        state: "running",
        revision: 2,
        summary: { ...record, revision: 2 },
      });
      expect((await fx.store.list({ limit: 10 })).items[0]?.summary).toEqual({ ...record, revision: 2 });
      // And a later summary is shown again.
      await fx.store.update(tableWrite("d1", { state: "running", record, summary: { state: "running" } }), {
        expectedRevision: 2,
      });
      expect((await fx.store.getSummary("d1"))?.summary).toEqual({ state: "running", revision: 3 });
    });

    it("round-trips a 10,000-node table and an update of 2,000 entries", async () => {
      const all = entries(10_000, "pending");
      const targets = all.map(([id]) => id).reverse();
      await fx.store.create(tableWrite("d1", { nodes: all, targets }));
      let got = await fx.store.get("d1");
      expect(Object.keys(got?.nodes ?? {})).toHaveLength(10_000);
      expect(got?.nodes).toEqual(Object.fromEntries(all));
      expect(got?.targets).toEqual(targets);
      const changed = entries(2_000, "done", 3_000);
      expect(
        await fx.store.update(tableWrite("d1", { state: "running", nodes: changed }), {
          expectedRevision: 1,
        }),
      ).toBe(2);
      got = await fx.store.get("d1");
      expect(got?.nodes).toEqual({ ...Object.fromEntries(all), ...Object.fromEntries(changed) });
      expect(got?.nodes.n02999).toEqual({ state: "pending", wave: 1 + (2999 % 7) });
      expect(got?.nodes.n03000).toEqual({ state: "done", wave: 1 + (3000 % 7) });
      expect(got?.nodes.n04999).toEqual({ state: "done", wave: 1 + (4999 % 7) });
      expect(got?.nodes.n05000).toEqual({ state: "pending", wave: 1 + (5000 % 7) });
      expect(got?.targets).toEqual(targets);
    });

    it("lists a job's deployments newest first, in pages, and every deployment", async () => {
      for (let i = 0; i < 5; i++)
        await fx.store.create(
          sampleWrite(`d${i}`, { createdAt: T0 + (i % 3), jobId: i < 4 ? "job-a" : "job-b" }),
        );
      const p1 = await fx.store.list({ jobId: "job-a", limit: 3 });
      expect(p1.items.map((d) => d.id)).toEqual(["d2", "d1", "d3"]);
      expect(p1.next).toBeDefined();
      const p2 = await fx.store.list({ jobId: "job-a", limit: 3, cursor: p1.next });
      expect(p2.items.map((d) => d.id)).toEqual(["d0"]);
      expect(p2.next).toBeUndefined();
      const all = await fx.store.list({ limit: 10 });
      expect(all.items.map((d) => d.id).sort()).toEqual(["d0", "d1", "d2", "d3", "d4"]);
    });

    it("keeps the active set from the last write", async () => {
      await fx.store.create(sampleWrite("d1"));
      await fx.store.create(sampleWrite("d2", { active: false, state: "succeeded" }));
      expect(await fx.store.listActive()).toEqual(["d1"]);
      await fx.store.update(sampleWrite("d1", { active: false, state: "succeeded" }), {
        expectedRevision: 1,
      });
      expect(await fx.store.listActive()).toEqual([]);
    });

    it("records controls until the orchestrator clears the one it applied", async () => {
      await fx.store.create(sampleWrite("d1"));
      await fx.store.requestControl("d1", "pause", T0);
      expect((await fx.store.get("d1"))?.control).toBe("pause");
      expect((await fx.store.getSummary("d1"))?.control).toBe("pause");
      await fx.store.requestControl("d1", "cancel", T0);
      await fx.store.clearControl("d1", "pause");
      expect((await fx.store.get("d1"))?.control).toBe("cancel");
      await fx.store.clearControl("d1", "cancel");
      expect((await fx.store.get("d1"))?.control).toBeUndefined();
      expect(await codeOf(fx.store.requestControl("nope", "pause", T0))).toBe("not_found");
    });

    it("keeps the reason given with a control until the control is cleared", async () => {
      await fx.store.create(sampleWrite("d1"));
      await fx.store.requestControl("d1", "pause", T0, "checking the canary's logs");
      expect(await fx.store.getSummary("d1")).toMatchObject({
        control: "pause",
        controlReason: "checking the canary's logs",
      });
      expect((await fx.store.get("d1"))?.controlReason).toBe("checking the canary's logs");
      // A later control without a reason does not inherit the earlier one's.
      await fx.store.requestControl("d1", "cancel", T0);
      expect((await fx.store.getSummary("d1"))?.controlReason).toBeUndefined();
      await fx.store.requestControl("d1", "rollback", T0, "bad canary");
      await fx.store.clearControl("d1", "rollback");
      const cleared = await fx.store.getSummary("d1");
      expect(cleared?.control).toBeUndefined();
      expect(cleared?.controlReason).toBeUndefined();
      expect(await codeOf(fx.store.requestControl("d1", "pause", T0, "x".repeat(1025)))).toBe(
        "invalid_argument",
      );
      expect((await fx.store.getSummary("d1"))?.control).toBeUndefined();
    });

    it("appends created, updated and control changes to the change stream", async () => {
      const start = await fx.store.lastChange();
      await fx.store.create(sampleWrite("d1"));
      await fx.store.update(sampleWrite("d1", { state: "running" }), { expectedRevision: 1 });
      await fx.store.requestControl("d1", "pause", T0);
      const changes = await fx.store.readChanges(start, 10);
      expect(changes.map((c) => [c.deploymentId, c.kind, c.revision, c.state])).toEqual([
        ["d1", "created", 1, "pending"],
        ["d1", "updated", 2, "running"],
        ["d1", "control", 2, "running"],
      ]);
      const first = changes[0];
      expect(await fx.store.readChanges(first?.id ?? "0", 10)).toHaveLength(2);
      expect(await fx.store.lastChange()).toBe(changes[2]?.id);
    });

    it("assigns versions per node, remembering the previous one, and withdraws them", async () => {
      expect(
        (
          await fx.versions.assign({ jobId: "j", version: 1, deploymentId: "d1", nodeIds: ["a", "b", "c"] })
        ).sort(),
      ).toEqual(["a", "b", "c"]);
      expect(
        await fx.versions.assign({ jobId: "j", version: 1, deploymentId: "d1", nodeIds: ["a"] }),
      ).toEqual([]);
      expect(
        await fx.versions.assign({ jobId: "j", version: 2, deploymentId: "d2", nodeIds: ["a", "b"] }),
      ).toEqual(["a", "b"]);
      let m = await fx.versions.load("j");
      expect(m.get("a")).toEqual({
        version: 2,
        deploymentId: "d2",
        previousVersion: 1,
        previousDeploymentId: "d1",
      });
      expect(m.get("c")).toEqual({
        version: 1,
        deploymentId: "d1",
        previousVersion: 0,
        previousDeploymentId: "",
      });
      // Only where the version is still 2; c has 1.
      expect((await fx.versions.unassign({ jobId: "j", version: 2, nodeIds: ["a", "c"] })).sort()).toEqual([
        "a",
      ]);
      expect(await fx.versions.unassign({ jobId: "j", version: 1, nodeIds: ["c"] })).toEqual(["c"]);
      m = await fx.versions.load("j");
      expect(m.get("a")).toEqual({
        version: 1,
        deploymentId: "d1",
        previousVersion: 0,
        previousDeploymentId: "",
      });
      expect(m.has("c")).toBe(false);
      expect(m.get("b")?.version).toBe(2);
      await fx.versions.drop("j");
      expect((await fx.versions.load("j")).size).toBe(0);
    });

    it("assigns versions in the same write as an update, and not at all when it refuses it", async () => {
      const a = await fx.lease.acquire("cp-a", 10_000);
      const epoch = a.held ? a.epoch : 0;
      await fx.store.create(tableWrite("d1", { nodes: entries(3, "pending") }), { epoch });
      await fx.versions.assign({ jobId: "job-1", version: 1, deploymentId: "d0", nodeIds: ["n00002"] });
      const step = tableWrite("d1", { state: "running", nodes: [["n00000", { state: "assigned" }]] });
      // Refused (revision, state guard, fence, bad input): no record change, no version either.
      const assign = { version: 2, nodeIds: ["n00000", "n00001"] };
      expect(await codeOf(fx.store.updateAssigning(step, { expectedRevision: 2 }, assign))).toBe("aborted");
      expect(
        await codeOf(
          fx.store.updateAssigning(step, { expectedRevision: 1, allowedFrom: ["paused"] }, assign),
        ),
      ).toBe("failed_precondition");
      expect(
        await codeOf(
          fx.store.updateAssigning(step, { expectedRevision: 1, fence: { epoch: epoch + 1 } }, assign),
        ),
      ).toBe("failed_precondition");
      expect(
        await refusalOf(
          fx.store.updateAssigning(step, { expectedRevision: 1 }, { version: 0, nodeIds: ["x"] }),
        ),
      ).toBe("invalid_argument assign.version");
      expect(
        await refusalOf(
          fx.store.updateAssigning(step, { expectedRevision: 1 }, { version: 2, nodeIds: ["ok", "bad id"] }),
        ),
      ).toBe("invalid_argument assign.node_ids[1]");
      expect((await fx.store.get("d1"))?.revision).toBe(1);
      expect((await fx.versions.load("job-1")).has("n00000")).toBe(false);

      // Accepted: the revision and the nodes whose version changed (a repeat changes none).
      const out = await fx.store.updateAssigning(
        step,
        { expectedRevision: 1, fence: { epoch } },
        { version: 2, nodeIds: ["n00000", "n00002"] },
      );
      expect({ ...out, assigned: [...out.assigned].sort() }).toEqual({
        revision: 2,
        assigned: ["n00000", "n00002"],
      });
      const m = await fx.versions.load("job-1");
      expect(m.get("n00000")).toEqual({
        version: 2,
        deploymentId: "d1",
        previousVersion: 0,
        previousDeploymentId: "",
      });
      expect(m.get("n00002")).toEqual({
        version: 2,
        deploymentId: "d1",
        previousVersion: 1,
        previousDeploymentId: "d0",
      });
      const got = await fx.store.get("d1");
      expect(got?.revision).toBe(2);
      expect(got?.state).toBe("running");
      expect(got?.nodes.n00000).toEqual({ state: "assigned" });
      expect(
        await fx.store.updateAssigning(
          tableWrite("d1", { state: "running" }),
          { expectedRevision: 2 },
          { version: 2, nodeIds: ["n00000"] },
        ),
      ).toEqual({ revision: 3, assigned: [] });
      // No node to assign: a plain update.
      expect(
        await fx.store.updateAssigning(
          tableWrite("d1", { state: "running" }),
          { expectedRevision: 3 },
          {
            version: 2,
            nodeIds: [],
          },
        ),
      ).toEqual({ revision: 4, assigned: [] });
    });

    it("hands the lease to one holder at a time, with a new epoch per acquisition", async () => {
      const a = await fx.lease.acquire("cp-a", 10_000);
      expect(a).toMatchObject({ held: true, fresh: true });
      const epochA = a.held ? a.epoch : 0;
      expect(await fx.lease.acquire("cp-a", 10_000)).toEqual({ held: true, epoch: epochA, fresh: false });
      const b = await fx.lease.acquire("cp-b", 10_000);
      expect(b).toMatchObject({ held: false, holder: { holder: "cp-a", epoch: epochA } });
      expect((await fx.lease.current())?.holder).toBe("cp-a");
      await fx.lease.release("cp-b", epochA);
      expect((await fx.lease.current())?.holder).toBe("cp-a");
      await fx.lease.release("cp-a", epochA);
      expect(await fx.lease.current()).toBeUndefined();
      const b2 = await fx.lease.acquire("cp-b", 10_000);
      expect(b2).toMatchObject({ held: true, fresh: true, epoch: epochA + 1 });
    });

    it("refuses the writes of a deposed leader (fencing)", async () => {
      const a = await fx.lease.acquire("cp-a", 10_000);
      const epochA = a.held ? a.epoch : 0;
      await fx.store.create(sampleWrite("d1"), { epoch: epochA });
      expect(
        await fx.store.update(sampleWrite("d1"), { expectedRevision: 1, fence: { epoch: epochA } }),
      ).toBe(2);
      await fx.versions.assign({
        jobId: "j",
        version: 1,
        deploymentId: "d1",
        nodeIds: ["a"],
        fence: { epoch: epochA },
      });

      await fx.expireLease();
      // Expired and nobody took it: still refused (the holder must renew first).
      const expired = fx.store.update(sampleWrite("d1"), { expectedRevision: 2, fence: { epoch: epochA } });
      await expect(expired).rejects.toMatchObject({
        code: "failed_precondition",
        metadata: { fenced: true },
      });

      const b = await fx.lease.acquire("cp-b", 10_000);
      expect(b).toMatchObject({ held: true, fresh: true, epoch: epochA + 1 });
      const late = [
        fx.store.update(sampleWrite("d1", { state: "failed" }), {
          expectedRevision: 2,
          fence: { epoch: epochA },
        }),
        fx.store.create(sampleWrite("d9"), { epoch: epochA }),
        fx.versions.assign({
          jobId: "j",
          version: 2,
          deploymentId: "d2",
          nodeIds: ["a"],
          fence: { epoch: epochA },
        }),
        fx.versions.unassign({ jobId: "j", version: 1, nodeIds: ["a"], fence: { epoch: epochA } }),
        fx.versions.drop("j", { epoch: epochA }),
      ];
      for (const p of late)
        await expect(p).rejects.toMatchObject({ code: "failed_precondition", metadata: { fenced: true } });
      expect((await fx.store.get("d1"))?.revision).toBe(2);
      expect(await fx.store.get("d9")).toBeUndefined();
      expect((await fx.versions.load("j")).get("a")?.version).toBe(1);
      // The new leader writes.
      const epochB = b.held ? b.epoch : 0;
      expect(
        await fx.store.update(sampleWrite("d1"), { expectedRevision: 2, fence: { epoch: epochB } }),
      ).toBe(3);
      // The old holder cannot renew: someone else holds the lease.
      expect(await fx.lease.acquire("cp-a", 10_000)).toMatchObject({ held: false });
    });
  });
}
