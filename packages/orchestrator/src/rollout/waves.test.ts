import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nodeOf } from "./context.js";
import { createDeployment } from "./create.js";
import { ids, makeSpec } from "./test-fixtures.js";
import { canaryCount, planWaves, rolloutOrder, rolloutWaveSize } from "./waves.js";

const hc = { health_check: { deadline: "5m" } };

describe("wave size", () => {
  it.each([
    ["max_parallel 3 of 10", { max_parallel: 3 }, 10, 3],
    ["max_parallel_percent 25 of 10 → ⌈2.5⌉", { max_parallel_percent: 25 }, 10, 3],
    ["both: 3 vs ⌈50% of 10⌉ = 5 → 3", { max_parallel: 3, max_parallel_percent: 50 }, 10, 3],
    ["both: 5 vs ⌈20% of 10⌉ = 2 → 2", { max_parallel: 5, max_parallel_percent: 20 }, 10, 2],
    ["percent 1 of 10 → at least 1", { max_parallel_percent: 1 }, 10, 1],
    ["max_parallel 0 = all", { max_parallel: 0 }, 10, 10],
    ["max_parallel above the targets", { max_parallel: 50 }, 10, 10],
    ["no targets", { max_parallel: 3 }, 0, 0],
  ])("%s", (_name, d, targets, want) => {
    expect(rolloutWaveSize(makeSpec({ strategy: "rolling", ...hc, ...d }).deployment, targets)).toBe(want);
  });

  it("immediate updates every target at once", () => {
    expect(rolloutWaveSize(makeSpec({ strategy: "immediate", max_parallel: 3 }).deployment, 10)).toBe(10);
  });
});

describe("canary count", () => {
  it.each([
    ["canary_count 3", { canary_count: 3 }, 25, 3],
    ["canary_percent 10 of 25 → ⌈2.5⌉", { canary_percent: 10 }, 25, 3],
    ["both set: count wins", { canary_count: 1, canary_percent: 50 }, 25, 1],
    ["percent 1 of 10 → at least 1", { canary_percent: 1 }, 10, 1],
    ["count above the targets", { canary_count: 9 }, 4, 4],
  ])("%s", (_name, d, targets, want) => {
    expect(canaryCount(makeSpec({ strategy: "canary", ...hc, ...d }).deployment, targets)).toBe(want);
  });

  it("is 0 for other strategies", () => {
    expect(canaryCount(makeSpec({ strategy: "rolling", ...hc }).deployment, 10)).toBe(0);
  });
});

describe("rollout order", () => {
  it("is a deterministic permutation, independent of input order, without duplicates", () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 8 }), { maxLength: 40 }), (nodes) => {
        const job = { namespace: "default", name: "web" };
        const a = rolloutOrder(nodes, job);
        const b = rolloutOrder([...nodes].reverse().concat(nodes), job);
        expect(a).toEqual(b);
        expect([...a].sort()).toEqual([...nodes].sort());
      }),
    );
  });

  it("spreads canaries: not simply the first names, and different per job", () => {
    const nodes = [...ids(50)];
    const web = rolloutOrder(nodes, { namespace: "default", name: "web" }).slice(0, 5);
    const api = rolloutOrder(nodes, { namespace: "default", name: "api" }).slice(0, 5);
    expect(web).not.toEqual(nodes.slice(0, 5));
    expect(web).not.toEqual(api);
  });
});

describe("planWaves (dry run)", () => {
  it("10 targets, max_parallel 3 → waves of 3, 3, 3, 1", () => {
    const p = planWaves(ids(10), makeSpec({ strategy: "rolling", max_parallel: 3, ...hc }));
    expect(p.canaries).toEqual([]);
    expect(p.waves.map((w) => w.length)).toEqual([3, 3, 3, 1]);
    expect(p.waves.flat()).toEqual(p.order);
  });

  it("25 targets, canary_percent 10, max_parallel 4 → 3 canaries then 6 waves (last of 2)", () => {
    const spec = makeSpec({ strategy: "canary", canary_percent: 10, max_parallel: 4, ...hc });
    const p = planWaves(ids(25), spec);
    expect(p.canaries).toHaveLength(3);
    expect(p.waves.map((w) => w.length)).toEqual([4, 4, 4, 4, 4, 2]);
    expect([...p.canaries, ...p.waves.flat()]).toEqual(p.order);
  });

  it("agrees with the waves createDeployment records", () => {
    const spec = makeSpec({ strategy: "canary", canary_count: 2, max_parallel: 3, ...hc });
    const p = planWaves(ids(11), spec);
    const d = createDeployment({ id: "d", jobId: "j", jobVersion: 2, spec, targets: ids(11), now: 0 });
    expect(d.targets).toEqual(p.order);
    expect(d.canaries).toEqual(p.canaries);
    for (const id of p.canaries) expect(nodeOf(d, id)?.wave).toBe(1);
    p.waves.forEach((wave, i) => {
      for (const id of wave) expect(nodeOf(d, id)?.wave).toBe(i + 2);
    });
    expect(d.counters.waves).toBe(1 + p.waves.length);
  });

  it("immediate is one wave", () => {
    expect(planWaves(ids(7), makeSpec({})).waves).toHaveLength(1);
  });
});
