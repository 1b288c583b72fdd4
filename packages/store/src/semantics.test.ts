import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { JobRecord, ListJobsQuery } from "./job-store.js";
import {
  type CandidateSource,
  canonicalJson,
  checkPutCommand,
  collectPage,
  compareCodePoints,
  comparePositions,
  defaultMaxScan,
  effectiveStates,
  effectiveTypes,
  isCanonical,
  specDigest,
} from "./semantics.js";

const job = (i: number, labels: Record<string, string> = {}): JobRecord => ({
  id: `job-${String(i).padStart(3, "0")}`,
  namespace: "default",
  name: `n${i}`,
  type: "pipeline",
  labels,
  spec: {},
  version: 1,
  revision: 1,
  stableVersion: 0,
  state: "pending",
  stateMessage: "",
  stateDetails: {},
  deploymentId: "",
  createdAt: 1000 + i,
  updatedAt: 1000 + i,
});

/** A source over an array that records how many candidates each take() asked for. */
function source(jobs: JobRecord[]): CandidateSource & { asked: number[] } {
  let at = 0;
  const asked: number[] = [];
  return {
    asked,
    take: async (max) => {
      asked.push(max);
      const items = jobs.slice(at, at + max);
      at += items.length;
      return { items, more: at < jobs.length };
    },
  };
}

const q = (overrides: Partial<ListJobsQuery> = {}): ListJobsQuery => ({
  namespace: "default",
  limit: 3,
  orderBy: "created_at",
  order: "asc",
  includeDeleted: false,
  ...overrides,
});

describe("canonicalJson and specDigest", () => {
  it("ignore key order at every depth but keep array order", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, 1], c: null } })).toBe('{"a":{"c":null,"d":[2,1]},"b":1}');
    expect(canonicalJson({ a: undefined, b: [undefined] })).toBe('{"b":[null]}');
    expect(specDigest("pipeline", { x: "1" }, { a: 1, b: 2 })).toBe(
      specDigest("pipeline", { x: "1" }, { b: 2, a: 1 }),
    );
    expect(specDigest("pipeline", { x: "1" }, { a: 1 })).not.toBe(specDigest("query", { x: "1" }, { a: 1 }));
    expect(specDigest("pipeline", { x: "1" }, { a: 1 })).not.toBe(
      specDigest("pipeline", { x: "2" }, { a: 1 }),
    );
    expect(specDigest("pipeline", {}, { a: [1, 2] })).not.toBe(specDigest("pipeline", {}, { a: [2, 1] }));
    expect(specDigest("pipeline", {}, {})).toMatch(/^[A-Za-z0-9_-]{12}$/);
  });

  it("keep the digests already stored: the same spec digests as it always did", () => {
    // Stored jobs carry this digest; a change here would make an identical re-submit a new version.
    const spec = {
      name: "web",
      config: { b: [1, { z: "é", a: null }], a: 'x"y' },
      labels: { "k/é": "v" },
      n: 1.5,
      e: [],
      o: {},
    };
    expect(specDigest("pipeline", { tier: "edge", a: "1" }, spec)).toBe("4heMm0PHhFAD");
  });

  it("take the spec's own JSON for the digest only when it is canonical", () => {
    const sorted = { a: 1, b: { c: [1, { d: 2, e: null }] } };
    expect(isCanonical(sorted)).toBe(true);
    expect(specDigest("pipeline", {}, sorted, JSON.stringify(sorted))).toBe(
      specDigest("pipeline", {}, sorted),
    );
    const unsorted = { b: 1, a: 2 };
    expect(isCanonical(unsorted)).toBe(false);
    expect(specDigest("pipeline", {}, unsorted, JSON.stringify(unsorted))).toBe(
      specDigest("pipeline", {}, { a: 2, b: 1 }),
    );
    // Integer-like keys: JSON.stringify writes "2" before "10", the canonical order is "10", "2".
    expect(isCanonical({ 10: 1, 2: 1 })).toBe(false);
    expect(canonicalJson({ 2: "x", 10: "y" })).toBe('{"10":"y","2":"x"}');
    // Not plain JSON data: never the JSON.stringify shortcut.
    expect(isCanonical({ a: undefined })).toBe(false);
    expect(isCanonical([undefined])).toBe(false);
    expect(isCanonical({ a: new Date(0) })).toBe(false);
    expect(isCanonical({ a: () => 1 })).toBe(false);
    expect(canonicalJson({ a: new Date(0), b: undefined })).toBe('{"a":{}}');
  });

  it("write every value as the sorted-keys JSON, whichever way they take", () => {
    // The reference: sort every object's keys, then JSON.stringify.
    const sortDeep = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(sortDeep)
        : v !== null && typeof v === "object"
          ? Object.fromEntries(
              Object.keys(v)
                .sort()
                .map((k) => [k, sortDeep((v as Record<string, unknown>)[k])]),
            )
          : v;
    const reference = (v: unknown): string => {
      // Object.fromEntries would re-order integer-like keys; write objects by hand.
      const s = sortDeep(v);
      const write = (x: unknown): string =>
        Array.isArray(x)
          ? `[${x.map(write).join(",")}]`
          : x !== null && typeof x === "object"
            ? `{${Object.keys(x)
                .sort()
                .map((k) => `${JSON.stringify(k)}:${write((x as Record<string, unknown>)[k])}`)
                .join(",")}}`
            : (JSON.stringify(x) ?? "null");
      return write(s);
    };
    const key = fc.oneof(fc.string(), fc.constantFrom("0", "1", "10", "2", "__proto__", "a", "b"));
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: "small" },
        fc.jsonValue({ maxDepth: 1 }),
        fc.array(tie("node"), { maxLength: 4 }),
        fc.dictionary(key, tie("node"), { maxKeys: 5 }),
      ),
    })).node;
    fc.assert(
      fc.property(value, (v) => {
        const json = canonicalJson(v);
        expect(json).toBe(reference(v));
        // Its parse is canonical too (unless integer-like keys order differently) and writes the same.
        expect(canonicalJson(JSON.parse(json))).toBe(json);
      }),
    );
  });

  it("round-trip through JSON.parse to the same value", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(JSON.parse(canonicalJson(v))).toEqual(JSON.parse(JSON.stringify(v)));
      }),
    );
  });
});

describe("compareCodePoints", () => {
  const unit = fc.constantFrom("a", "b", "Z", "-", "é", "ｚ", "😀", "\u{10000}", "\u0000", "\u007f");
  it("orders like the UTF-8 bytes (what Redis compares)", () => {
    fc.assert(
      fc.property(fc.string({ unit }), fc.string({ unit }), (a, b) => {
        expect(Math.sign(compareCodePoints(a, b))).toBe(
          Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))),
        );
      }),
    );
  });

  it("orders positions by key, then id", () => {
    expect(comparePositions({ key: 1, id: "b" }, { key: 2, id: "a" })).toBeLessThan(0);
    expect(comparePositions({ key: 2, id: "a" }, { key: 2, id: "b" })).toBeLessThan(0);
    expect(comparePositions({ key: "x", id: "a" }, { key: "x", id: "a" })).toBe(0);
    expect(comparePositions({ key: "ab", id: "a" }, { key: "a", id: "z" })).toBeGreaterThan(0);
  });
});

describe("effective filters", () => {
  it("hide deleted jobs unless asked, by flag or by naming the state", () => {
    expect(effectiveStates(q())).not.toContain("deleted");
    expect(effectiveStates(q({ includeDeleted: true }))).toContain("deleted");
    expect(effectiveStates(q({ states: ["deleted"] }))).toEqual(["deleted"]);
    expect(effectiveStates(q({ states: ["running", "pending", "running"] }))).toEqual(["pending", "running"]);
    expect(effectiveTypes(q({ types: [] }))).toHaveLength(4);
    expect(defaultMaxScan(10)).toBe(1000);
    expect(defaultMaxScan(500)).toBe(5000);
  });
});

describe("collectPage", () => {
  const jobs = Array.from({ length: 10 }, (_, i) => job(i, { even: String(i % 2 === 0) }));

  it("asks for exactly the page without a filter, and says whether more follow", async () => {
    const s = source(jobs);
    const page = await collectPage(s, q({ limit: 3 }));
    expect(page.items.map((j) => j.id)).toEqual(["job-000", "job-001", "job-002"]);
    expect(page.next).toEqual({ key: 1002, id: "job-002" });
    expect(s.asked).toEqual([3]);
    expect(await collectPage(source(jobs), q({ limit: 10 }))).toEqual({ items: jobs });
    expect(await collectPage(source(jobs), q({ limit: 11 }))).toEqual({ items: jobs });
    expect(await collectPage(source([]), q())).toEqual({ items: [] });
  });

  it("stops a filtered scan at maxScan with a cursor at the last job examined", async () => {
    const even = (l: Readonly<Record<string, string>>) => l.even === "true";
    const s = source(jobs);
    const page = await collectPage(s, q({ limit: 5, labelFilter: even, maxScan: 4 }));
    expect(page.items.map((j) => j.id)).toEqual(["job-000", "job-002"]);
    expect(page.next).toEqual({ key: 1003, id: "job-003" });
    expect(s.asked).toEqual([4]);
    // Ends exactly at the last candidate: no cursor.
    const tail = await collectPage(source(jobs.slice(6)), q({ limit: 5, labelFilter: even, maxScan: 4 }));
    expect(tail).toEqual({ items: [jobs[6], jobs[8]] });
    // Full page before the bound: the cursor is the last match.
    const full = await collectPage(source(jobs), q({ limit: 2, labelFilter: even }));
    expect(full.next).toEqual({ key: 1002, id: "job-002" });
  });

  it("uses the name as the cursor key in name order", async () => {
    const page = await collectPage(source(jobs), q({ limit: 1, orderBy: "name" }));
    expect(page.next).toEqual({ key: "n0", id: "job-000" });
  });
});

describe("checkPutCommand", () => {
  it("accepts the largest time the indexes hold and rejects one beyond", () => {
    const base = {
      namespace: "default",
      name: "a",
      type: "pipeline" as const,
      labels: {},
      spec: {},
      newId: "job-1",
      now: 99_999_999_999_999,
    };
    expect(() => checkPutCommand(base)).not.toThrow();
    expect(() => checkPutCommand({ ...base, now: 100_000_000_000_000 })).toThrow(/now/);
    expect(() => checkPutCommand({ ...base, spec: [] as never })).toThrow(/spec/);
    expect(() => checkPutCommand({ ...base, kind: "other" as never })).toThrow(/kind/);
  });
});
