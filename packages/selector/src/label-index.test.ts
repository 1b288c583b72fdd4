import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LabelIndex } from "./label-index.js";
import {
  compileNodeSelector,
  type NodeLike,
  type NodeSelector,
  type NodeSelectorSpec,
} from "./node-selector.js";
import { parseSelector } from "./parse.js";
import type { Labels } from "./requirement.js";

const sel = (...match_expressions: string[]): NodeSelector => compileNodeSelector({ match_expressions });

/** What the index must return: the nodes the compiled matcher accepts, as sorted ids. */
function expected(nodes: Iterable<NodeLike>, selector: NodeSelector): string[] {
  return [...nodes]
    .filter((n) => selector.matches(n))
    .map((n) => n.id)
    .sort();
}

function indexOf(nodes: Iterable<NodeLike>): LabelIndex {
  const index = new LabelIndex();
  for (const n of nodes) index.upsert(n);
  return index;
}

const fleet: NodeLike[] = [
  { id: "a", labels: { region: "eu-west", tier: "edge", cpu_cores: "8", arch: "arm64" } },
  { id: "b", labels: { region: "eu-west", tier: "gateway", cpu_cores: "2", maintenance: "" } },
  { id: "c", labels: { region: "us-east", tier: "edge", cpu_cores: "4", arch: "amd64" } },
  { id: "d", labels: { region: "us-east", "example.com/tier": "edge" } },
  { id: "e", labels: {} },
];

describe("LabelIndex", () => {
  it("tracks the node set", () => {
    const index = indexOf(fleet);
    expect(index.size).toBe(5);
    expect(index.has("a")).toBe(true);
    expect(index.has("z")).toBe(false);
    expect([...index.ids()].sort()).toEqual(["a", "b", "c", "d", "e"]);
    expect(index.remove("a")).toBe(true);
    expect(index.remove("a")).toBe(false);
    expect(index.size).toBe(4);
    index.clear();
    expect(index.size).toBe(0);
    expect(index.select(sel("region"))).toEqual([]);
  });

  it.each([
    ["region=eu-west"],
    ["region in (eu-west,us-east),tier=edge"],
    ["tier!=edge"], // negative only: scans, and matches nodes without tier
    ["tier notin (edge,gateway)"],
    ["!maintenance"],
    ["maintenance"],
    ["cpu_cores>2"],
    ["cpu_cores<8,region=eu-west"],
    ["arch,!maintenance"],
    ["example.com/tier=edge"],
    ["tier=edge,example.com/tier=edge"],
    ["unknown=x"],
    ["region=nowhere"],
    ["!unknown"],
    ["unknown!=x"],
    ["cpu_cores>100"],
    ["region=eu-west,region=us-east"],
  ])("selects %j exactly like the matcher", (expr) => {
    const selector = sel(expr);
    expect(indexOf(fleet).select(selector).sort()).toEqual(expected(fleet, selector));
  });

  it("selects everything for an empty selector, and by id for match_ids", () => {
    const index = indexOf(fleet);
    expect(index.select(compileNodeSelector({})).sort()).toEqual(["a", "b", "c", "d", "e"]);
    expect(index.select(compileNodeSelector({ match_ids: ["c", "zz", "c", "e"] })).sort()).toEqual([
      "c",
      "e",
    ]);
    expect(index.select(compileNodeSelector({ match_ids: ["zz"] }))).toEqual([]);
    expect(
      index.select(compileNodeSelector({ match_ids: ["a", "c"], match_labels: { tier: "edge" } })).sort(),
    ).toEqual(["a", "c"]);
    expect(
      index.select(compileNodeSelector({ match_ids: ["a", "b"], match_expressions: ["!maintenance"] })),
    ).toEqual(["a"]);
  });

  it("accepts a parsed Selector too", () => {
    expect(indexOf(fleet).select(parseSelector("tier=edge")).sort()).toEqual(["a", "c"]);
  });

  it("applies limit, filter and sort", () => {
    const index = indexOf(fleet);
    const all = compileNodeSelector({});
    expect(index.select(all, { limit: 2 })).toHaveLength(2);
    expect(index.select(all, { limit: 0 })).toEqual([]);
    expect(index.select(all, { sort: true })).toEqual(["a", "b", "c", "d", "e"]);
    expect(index.select(all, { filter: (id) => id !== "b", sort: true })).toEqual(["a", "c", "d", "e"]);
    expect(index.select(all, { filter: (id) => id > "b", limit: 2, sort: true })).toEqual(["c", "d"]);
    expect(() => index.select(all, { limit: -1 })).toThrow(/limit/);
    expect(() => index.select(all, { limit: Number.NaN })).toThrow(/limit/);
  });

  it("allows select from inside a filter callback (nested calls use their own buffers)", () => {
    const nodes = Array.from({ length: 3000 }, (_, i) => ({
      id: `n${i}`,
      labels: { parity: String(i % 2), third: String(i % 3) },
    }));
    const index = indexOf(nodes);
    const thirds = sel("third=0");
    const got = index.select(sel("parity=0"), {
      filter: (id) => index.select(thirds, { filter: (other) => other === id }).length === 1,
    });
    const want = nodes.filter((_, i) => i % 6 === 0).map((n) => n.id);
    expect(got.sort()).toEqual(want.sort());
  });

  it("updates the index when a node's labels change", () => {
    const index = indexOf(fleet);
    index.upsert({ id: "a", labels: { region: "us-east", tier: "edge", maintenance: "yes" } });
    expect(index.size).toBe(5);
    expect(index.select(sel("region=eu-west"))).toEqual(["b"]);
    expect(index.select(sel("region=us-east")).sort()).toEqual(["a", "c", "d"]);
    expect(index.select(sel("arch")).sort()).toEqual(["c"]);
    expect(index.select(sel("maintenance")).sort()).toEqual(["a", "b"]);
    expect(index.select(sel("cpu_cores>0")).sort()).toEqual(["b", "c"]);
    // Same labels again: nothing changes.
    index.upsert({ id: "a", labels: { maintenance: "yes", region: "us-east", tier: "edge" } });
    expect(index.select(sel("region=us-east")).sort()).toEqual(["a", "c", "d"]);
    // A key dropped and the value set emptied.
    index.upsert({ id: "a", labels: {} });
    expect(index.select(sel("region=us-east")).sort()).toEqual(["c", "d"]);
    expect(index.select(sel("!region"))).toEqual(["e", "a"].sort().filter((id) => id === "a" || id === "e"));
  });

  it("reuses the slots of removed nodes", () => {
    const index = indexOf(fleet);
    index.remove("b");
    index.upsert({ id: "f", labels: { region: "eu-west", maintenance: "" } });
    expect(index.stats().nodes).toBe(5);
    expect(index.select(sel("region=eu-west")).sort()).toEqual(["a", "f"]);
    expect(index.select(sel("maintenance"))).toEqual(["f"]);
    expect(index.select(sel("tier=gateway"))).toEqual([]);
  });

  it("forgets keys and values no node has any more", () => {
    const index = indexOf(fleet);
    const before = index.stats();
    index.remove("d");
    const after = index.stats();
    expect(after.keys).toBe(before.keys - 1); // example.com/tier is gone
    expect(index.select(sel("example.com/tier"))).toEqual([]);
    expect(index.select(sel("!example.com/tier")).sort()).toEqual(["a", "b", "c", "e"]);
  });

  it("keeps its own copy: mutating a label object after upsert changes nothing", () => {
    const labels: Record<string, string> = { region: "eu-west" };
    const index = new LabelIndex();
    index.upsert({ id: "x", labels });
    labels.region = "us-east";
    expect(index.select(sel("region=eu-west"))).toEqual(["x"]);
    index.upsert({ id: "x", labels }); // the same object, mutated: still a correct update
    expect(index.select(sel("region=eu-west"))).toEqual([]);
    expect(index.select(sel("region=us-east"))).toEqual(["x"]);
  });

  it("handles keys that live on Object.prototype, own __proto__ labels and non-string values", () => {
    const index = new LabelIndex();
    index.upsert({ id: "p", labels: JSON.parse('{"__proto__": "x", "constructor": "c"}') as Labels });
    index.upsert({ id: "q", labels: { toString: "t", n: 1 } as unknown as Labels });
    index.upsert({ id: "r", labels: {} });
    expect(index.select(sel("constructor"))).toEqual(["p"]);
    expect(index.select(sel("!constructor")).sort()).toEqual(["q", "r"]);
    expect(index.select(sel("toString=t"))).toEqual(["q"]);
    expect(index.select(sel("n")).sort()).toEqual([]); // a number is not a label
    expect(index.select({ requirements: [{ key: "__proto__", operator: "=", values: ["x"] }] })).toEqual([
      "p",
    ]);
  });

  it("compares > and < on keys with more distinct values than it enumerates", () => {
    const nodes = Array.from({ length: 5000 }, (_, i) => ({
      id: `n${i}`,
      labels: { serial: String(i - 100) },
    }));
    const index = indexOf(nodes);
    for (const expr of ["serial>4000", "serial<3", "serial>9999", "serial<0"]) {
      expect(index.select(sel(expr)).sort()).toEqual(expected(nodes, sel(expr)));
    }
  });

  it("widens value ids past 255 and 65535 distinct values per key", () => {
    const nodes = Array.from({ length: 70_000 }, (_, i) => ({
      id: `n${i}`,
      labels: { host: `h${i}`, even: String(i % 2 === 0) },
    }));
    const index = indexOf(nodes);
    for (const expr of [
      "host=h3",
      "host=h300",
      "host=h69999",
      "host in (h1,h66000),even=true",
      "even=false,host!=h1",
    ]) {
      const s = sel(expr);
      expect(index.select(s).sort(), expr).toEqual(expected(nodes, s));
    }
    expect(index.stats().values).toBe(70_002);
  });

  it("stays exact while posting sets switch between lists and bitsets and columns between sparse and dense", () => {
    const nodes = new Map<string, NodeLike>();
    const index = new LabelIndex();
    const put = (n: NodeLike) => {
      nodes.set(n.id, n);
      index.upsert(n);
    };
    const exprs = ["k=v", "k", "!k", "k!=v", "k=w", "k in (v,w)", "k notin (v)", "other=1,k!=w"];
    const verify = () => {
      for (const e of exprs) expect(index.select(sel(e)).sort(), e).toEqual(expected(nodes.values(), sel(e)));
    };
    for (let i = 0; i < 4000; i++)
      put({ id: `n${i}`, labels: { other: String(i % 3), ...(i % 2 ? { k: "v" } : {}) } });
    verify(); // k=v on half the nodes: a bitset and a dense column
    for (let i = 1; i < 4000; i += 2)
      if (i % 200 !== 1) put({ id: `n${i}`, labels: { other: String(i % 3) } });
    verify(); // k=v on 20 nodes: back to a list and a sparse column
    for (let i = 0; i < 4000; i += 4) put({ id: `n${i}`, labels: { k: "w" } });
    verify();
    for (let i = 0; i < 4000; i += 3) {
      nodes.delete(`n${i}`);
      index.remove(`n${i}`);
    }
    verify();
    const stats = index.stats();
    expect(stats.bitsetPostings + stats.listPostings).toBeGreaterThan(0);
  });
});

// ---- property tests: the index agrees with the matcher -----------------------------------------

const KEYS = ["a", "b", "c", "example.com/d", "constructor", "n"] as const;
/** Values a selector may name (valid label values). */
const SELECTOR_VALUES = ["", "x", "y", "z", "1", "5", "10", "007"] as const;
/** Values nodes may carry: label sets are not validated, so these include invalid ones. */
const LABEL_VALUES = [...SELECTOR_VALUES, "-3", "+5", "x y", "9223372036854775808", "é"] as const;
const INTEGERS = ["0", "1", "4", "5", "10", "007"] as const;
const IDS = Array.from({ length: 30 }, (_, i) => `n${i}`);

function requirementArb(keys: readonly string[], values: readonly string[]): fc.Arbitrary<string> {
  const key = fc.constantFrom(...keys);
  const value = fc.constantFrom(...values);
  return fc.oneof(
    fc.tuple(key, fc.constantFrom("=", "==", "!="), value).map(([k, op, v]) => `${k}${op}${v}`),
    fc
      .tuple(key, fc.constantFrom("in", "notin"), fc.array(value, { maxLength: 3 }))
      .map(([k, op, vs]) => `${k} ${op} (${vs.join(",")})`),
    key,
    key.map((k) => `!${k}`),
    fc
      .tuple(key, fc.constantFrom(">", "<"), fc.constantFrom(...INTEGERS))
      .map(([k, op, n]) => `${k}${op}${n}`),
  );
}

function specArb(
  keys: readonly string[],
  values: readonly string[],
  ids: readonly string[],
): fc.Arbitrary<NodeSelectorSpec> {
  return fc.record(
    {
      match_labels: fc.dictionary(fc.constantFrom(...keys), fc.constantFrom(...values), { maxKeys: 2 }),
      match_ids: fc.array(fc.constantFrom(...ids), { maxLength: 4 }),
      match_expressions: fc.array(
        fc.array(requirementArb(keys, values), { minLength: 1, maxLength: 3 }).map((r) => r.join(",")),
        { maxLength: 3 },
      ),
    },
    { requiredKeys: [] },
  );
}

type Op = { kind: "upsert"; id: string; labels: Record<string, string> } | { kind: "remove"; id: string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("upsert" as const),
      id: fc.constantFrom(...IDS),
      labels: fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...LABEL_VALUES), { maxKeys: 5 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("remove" as const), id: fc.constantFrom(...IDS) }) },
);

describe("LabelIndex properties", () => {
  it("select returns exactly the nodes the compiled matcher accepts, after random upserts, label changes and removals", () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 80 }),
        fc.array(specArb(KEYS, SELECTOR_VALUES, IDS), { minLength: 1, maxLength: 8 }),
        fc.nat({ max: 10 }),
        (ops, specs, limit) => {
          const index = new LabelIndex();
          const model = new Map<string, NodeLike>();
          ops.forEach((op, step) => {
            if (op.kind === "upsert") {
              const node = { id: op.id, labels: op.labels };
              index.upsert(node);
              model.set(op.id, node);
            } else {
              expect(index.remove(op.id)).toBe(model.delete(op.id));
            }
            expect(index.size).toBe(model.size);
            // Check one selector along the way too, so intermediate states are covered.
            const spec = specs[step % specs.length];
            if (spec !== undefined && step % 7 === 0) {
              const s = compileNodeSelector(spec);
              expect(index.select(s).sort()).toEqual(expected(model.values(), s));
            }
          });
          for (const spec of specs) {
            const s = compileNodeSelector(spec);
            const all = expected(model.values(), s);
            expect(index.select(s).sort()).toEqual(all);
            const limited = index.select(s, { limit });
            expect(limited).toHaveLength(Math.min(limit, all.length));
            for (const id of limited) expect(all).toContain(id);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  /** A fleet large enough for bitsets, dense columns and singleton postings to appear. */
  function bigFleet(seed: number, n: number): NodeLike[] {
    let state = seed >>> 0 || 1;
    const rnd = () => {
      // xorshift32: deterministic per seed, so a failure replays.
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) / 4294967296;
    };
    return Array.from({ length: n }, (_, i) => nodeLabels(`n${i}`, i, rnd));
  }

  function nodeLabels(id: string, i: number, rnd: () => number): NodeLike {
    const labels: Record<string, string> = {};
    if (rnd() < 0.95) labels.dense = `d${Math.floor(rnd() * 3)}`;
    if (rnd() < 0.5) labels.mid = `m${Math.floor(rnd() ** 2 * 40)}`; // skewed: some bitsets, some lists
    if (rnd() < 0.02) labels.rare = `r${Math.floor(rnd() * 2)}`;
    if (rnd() < 0.8) labels.num = rnd() < 0.1 ? "x" : String(Math.floor(rnd() * 21) - 3);
    labels.uniq = `u${i}`;
    return { id, labels };
  }

  it.each([
    "dense,!dense",
    "!dense,dense",
    "dense=d0,dense!=d0",
    "dense in (d0,d1),dense notin (d1)",
    "dense in (d0,d1),!dense",
    "dense=d0,!mid",
    "dense=d0,mid",
    "dense=d0,mid notin (m0,m1)",
    "mid=m0,!dense",
    "mid in (m0,m1),dense!=d2",
    "mid,!mid",
    "rare,!rare",
    "dense=d1,!rare",
    "dense=d1,rare!=r0",
    "num>5,dense=d0",
    "num<3,!dense",
    "uniq=u7,dense",
  ])("combines dense (bitset) and sparse requirements exactly: %j", (expr) => {
    const nodes = bigFleet(12345, 3000);
    const s = sel(expr);
    expect(indexOf(nodes).select(s).sort()).toEqual(expected(nodes, s));
  });

  const BIG_KEYS = ["dense", "mid", "rare", "num", "uniq", "none"] as const;
  const BIG_VALUES = [
    "d0",
    "d1",
    "d2",
    "m0",
    "m1",
    "m7",
    "m39",
    "r0",
    "r1",
    "1",
    "5",
    "10",
    "u1",
    "u77",
    "u1500",
    "",
  ];
  const BIG_IDS = ["n0", "n5", "n1200", "n3999", "n10"];

  it("stays exact on fleets of thousands of nodes, through removals, label changes and slot reuse", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.integer({ min: 1100, max: 4000 }),
        fc.double({ min: 0, max: 0.95, noNaN: true }),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        fc.array(specArb(BIG_KEYS, BIG_VALUES, BIG_IDS), { minLength: 4, maxLength: 10 }),
        (seed, n, removeShare, changeShare, specs) => {
          const nodes = bigFleet(seed, n);
          const model = new Map(nodes.map((node) => [node.id, node]));
          const index = indexOf(nodes);
          const verify = () => {
            for (const spec of specs) {
              const s = compileNodeSelector(spec);
              expect(index.select(s).sort()).toEqual(expected(model.values(), s));
            }
          };
          verify();
          let state = seed;
          const rnd = () => {
            state = (Math.imul(state, 1103515245) + 12345) >>> 0;
            return state / 4294967296;
          };
          for (const node of nodes) {
            const r = rnd();
            if (r < removeShare) {
              index.remove(node.id);
              model.delete(node.id);
            } else if (r < removeShare + changeShare) {
              const changed = nodeLabels(node.id, Math.floor(rnd() * n), rnd);
              index.upsert(changed);
              model.set(node.id, changed);
            }
          }
          verify();
          // New nodes take the freed slots.
          for (let i = 0; i < n / 4; i++) {
            const node = nodeLabels(`new${i}`, n + i, rnd);
            index.upsert(node);
            model.set(node.id, node);
          }
          verify();
        },
      ),
      { numRuns: 40 },
    );
  });
});
