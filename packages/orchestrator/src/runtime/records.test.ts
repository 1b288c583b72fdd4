import { createMemoryDeploymentStore, type DeploymentStore, type JsonObject } from "@edgeplane/store";
import { beforeEach, describe, expect, it } from "vitest";
import { plan } from "../rollout/plan.js";
import { healthy, ids, makeDeployment, makeSpec } from "../rollout/test-fixtures.js";
import type { DeploymentRecord } from "../rollout/types.js";
import { createdRecord, createWriteOf, recordOf, sameLayout, updateWriteOf } from "./records.js";

const targets = ids(6);
const ROLLING = makeSpec({
  strategy: "rolling",
  max_parallel: 2,
  health_check: { deadline: "5m", min_healthy_time: "0s" },
});

/** Plans one sync of `d` at `now` with the given nodes healthy on its version. */
function step(d: DeploymentRecord, now: number, healthyNodes: readonly string[] = []): DeploymentRecord {
  const observations = Object.fromEntries(healthyNodes.map((id) => [id, healthy(d.jobVersion, 0)]));
  return plan({ deployment: d, observations }, now).deployment;
}

describe("deployment records in the store", () => {
  let store: DeploymentStore;
  beforeEach(() => {
    store = createMemoryDeploymentStore();
  });

  it("creates with every node entry and the targets, and reads back the same record", async () => {
    const draft = makeDeployment(ROLLING, targets);
    const write = createWriteOf(draft, 0);
    expect(write.targets).toEqual(draft.targets);
    expect(write.nodes?.map(([id]) => id)).toEqual(draft.targets);
    expect(write.record).not.toHaveProperty("nodes");
    expect(write.record).not.toHaveProperty("targets");
    const created = await store.create(write);
    const mine = createdRecord(draft, created);
    const stored = await store.get(draft.id);
    if (stored === undefined) throw new Error("not stored");
    expect(recordOf(stored)).toEqual(mine);
    expect(mine.revision).toBe(1);
  });

  it("an update sends only the node entries the sync changed", async () => {
    const d0 = makeDeployment(ROLLING, targets);
    const d1 = createdRecord(d0, await store.create(createWriteOf(d0, 0)));
    // First sync: two nodes assigned.
    const d2 = step(d1, 1000);
    const w2 = updateWriteOf(d1, d2, 1000);
    expect(w2.nodes?.map(([id]) => id)).toEqual(d2.targets.slice(0, 2));
    expect(w2.targets).toBeUndefined();
    const r2 = await store.update(w2, { expectedRevision: d1.revision });
    // Second sync: both healthy → done, the next two assigned: four entries.
    const d3 = step({ ...d2, revision: r2 }, 2000, d2.targets.slice(0, 2));
    const w3 = updateWriteOf({ ...d2, revision: r2 }, d3, 2000);
    expect(w3.nodes?.map(([id]) => id)).toEqual(d3.targets.slice(0, 4));
    const r3 = await store.update(w3, { expectedRevision: r2 });
    const stored = await store.get(d0.id);
    if (stored === undefined) throw new Error("not stored");
    expect(recordOf(stored)).toEqual({ ...d3, revision: r3 });
    // A sync that changes nothing in the table sends no entry.
    expect(updateWriteOf(d3, { ...d3, message: "x" }, 3000).nodes).toEqual([]);
  });

  it("keeps a record written in the earlier layout (table inside the record) in that layout", async () => {
    const d0 = makeDeployment(ROLLING, targets);
    const table = Object.fromEntries(d0.targets.map((id, i) => [id, d0.nodes[i]]));
    const legacy = { ...d0, nodes: table } as unknown as JsonObject;
    await store.create({
      id: d0.id,
      jobId: d0.jobId,
      state: d0.state,
      active: true,
      createdAt: 0,
      now: 0,
      record: legacy,
      summary: {},
    });
    const stored = await store.get(d0.id);
    if (stored === undefined) throw new Error("not stored");
    const d1 = recordOf(stored);
    expect(d1).toEqual({ ...d0, revision: 1 });
    // Its writes carry the whole table in the record, as the control plane that started it wrote.
    const d2 = step(d1, 1000);
    const w2 = updateWriteOf(d1, d2, 1000);
    expect(w2.nodes).toBeUndefined();
    expect(Object.keys((w2.record as { nodes: object }).nodes)).toEqual(d2.targets);
    expect(w2.summary).not.toHaveProperty("nodes");
    const r2 = await store.update(w2, { expectedRevision: 1 });
    const written = sameLayout(d2, { ...d2, revision: r2 });
    const again = await store.get(d0.id);
    if (again === undefined) throw new Error("not stored");
    expect(recordOf(again)).toEqual(written);
    // ...and so do the writes that follow (the layout sticks to records derived from it).
    const d3 = step(written, 2000, d2.targets.slice(0, 2));
    expect(updateWriteOf(written, d3, 2000).nodes).toBeUndefined();
  });

  it("a stored table missing a target's entry is an internal error naming the deployment", async () => {
    const d0 = makeDeployment(ROLLING, targets);
    const write = createWriteOf(d0, 0);
    await store.create({ ...write, nodes: write.nodes?.slice(1) });
    const stored = await store.get(d0.id);
    if (stored === undefined) throw new Error("not stored");
    expect(() => recordOf(stored)).toThrow(/stored deployment d1 cannot be read: no entry for target n0/);
  });
});
