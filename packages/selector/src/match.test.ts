/**
 * The match table and corner cases of shared/reference/label-selector-semantics.md, row by row.
 * Every row is checked three ways: `Selector.matches`, `compileNodeSelector(...).matches`, and
 * `LabelIndex.select` over a one-node index, so the three paths cannot drift apart.
 */
import { describe, expect, it } from "vitest";
import { LabelIndex } from "./label-index.js";
import { compileNodeSelector } from "./node-selector.js";
import { parseSelector } from "./parse.js";
import { type Labels, matchesRequirement } from "./requirement.js";

type Case = readonly [expr: string, labels: Labels, expected: boolean];

function check([expr, labels, expected]: Case): void {
  expect(parseSelector(expr).matches(labels), "Selector.matches").toBe(expected);
  const node = { id: "n1", labels };
  const compiled = compileNodeSelector({ match_expressions: [expr] });
  expect(compiled.matches(node), "NodeSelector.matches").toBe(expected);
  const index = new LabelIndex();
  index.upsert(node);
  expect(index.select(compiled), "LabelIndex.select").toEqual(expected ? ["n1"] : []);
}

const absent: Labels = {};

describe("match table", () => {
  describe.each(["=", "=="])("k%sv1", (op) => {
    it.each<Case>([
      [`k${op}v1`, absent, false],
      [`k${op}v1`, { k: "v1" }, true],
      [`k${op}v1`, { k: "v2" }, false],
      [`k${op}v1`, { k: "" }, false],
      [`k${op}v1`, { k: "V1" }, false], // case-sensitive
      [`k${op}v1`, { k: "v1", other: "z" }, true], // extra labels are ignored
    ])("%j on %j → %s", (...c) => check(c));
  });

  it.each<Case>([
    ["k in (v1,v2)", absent, false],
    ["k in (v1,v2)", { k: "v1" }, true],
    ["k in (v1,v2)", { k: "v2" }, true],
    ["k in (v1,v2)", { k: "v3" }, false],
    ["k in (v1,v2)", { k: "" }, false],
  ])("in: %j on %j → %s", (...c) => check(c));

  it.each<Case>([
    ["k!=v1", absent, true], // surprising: absent keys match !=
    ["k!=v1", { k: "v1" }, false],
    ["k!=v1", { k: "v2" }, true],
    ["k!=v1", { k: "" }, true],
  ])("!=: %j on %j → %s", (...c) => check(c));

  it.each<Case>([
    ["k notin (v1,v2)", absent, true], // surprising: absent keys match notin
    ["k notin (v1,v2)", { k: "v1" }, false],
    ["k notin (v1,v2)", { k: "v2" }, false],
    ["k notin (v1,v2)", { k: "v3" }, true],
  ])("notin: %j on %j → %s", (...c) => check(c));

  it.each<Case>([
    ["k", absent, false],
    ["k", { k: "" }, true], // present with the empty value still exists
    ["k", { k: "x" }, true],
    ["!k", absent, true],
    ["!k", { k: "" }, false],
    ["!k", { k: "x" }, false],
  ])("exists / does not exist: %j on %j → %s", (...c) => check(c));

  it.each<Case>([
    ["k>4", absent, false],
    ["k>4", { k: "5" }, true],
    ["k>4", { k: "4" }, false],
    ["k>4", { k: "007" }, true], // int64("007") = 7
    ["k>4", { k: "+5" }, true], // Go's ParseInt accepts a sign
    ["k>4", { k: "abc" }, false], // not an integer: false
    ["k>4", { k: "" }, false],
    ["k>4", { k: " 5" }, false],
    ["k>4", { k: "5.0" }, false],
    ["k>4", { k: "1e3" }, false],
    ["k>4", { k: "9223372036854775807" }, true],
    ["k>4", { k: "9223372036854775808" }, false], // beyond int64: not an integer
    ["k<10", { k: "-3" }, true], // corner case 11: label values may be negative
    ["k<10", { k: "9" }, true],
    ["k<10", { k: "10" }, false],
    ["k<10", { k: "-9223372036854775808" }, true],
    ["k<10", { k: "-9223372036854775809" }, false],
    ["k>0", { k: "-0" }, false],
    ["k<1", { k: "-0" }, true],
    // Exact int64 comparison beyond 2^53, where doubles would round.
    ["k>9223372036854775806", { k: "9223372036854775807" }, true],
    ["k<9007199254740993", { k: "9007199254740992" }, true],
    ["k>9007199254740992", { k: "9007199254740993" }, true],
    ["k<9007199254740993", { k: "9007199254740993" }, false],
  ])("gt/lt: %j on %j → %s", (...c) => check(c));
});

describe("exactness", () => {
  it.each<Case>([
    ["x=007", { x: "7" }, false], // no numeric normalisation outside > and <
    ["x=A", { x: "a" }, false],
    ["X=a", { x: "a" }, false], // keys are case-sensitive
    ["example.com/tier=edge", { tier: "edge" }, false], // the prefix is part of the key
    ["example.com/tier=edge", { "example.com/tier": "edge" }, true],
    ["tier=edge", { "example.com/tier": "edge" }, false],
  ])("%j on %j → %s", (...c) => check(c));
});

describe("corner cases of the reference", () => {
  it.each<Case>([
    // 1. != and notin match absent keys; "k,k!=v" requires presence.
    ["k,k!=v", absent, false],
    ["k,k!=v", { k: "w" }, true],
    ["k,k!=v", { k: "v" }, false],
    // 2. "x in ()" means x in (""); "x notin ()" excludes only the empty value.
    ["x in ()", { x: "" }, true],
    ["x in ()", { x: "a" }, false],
    ["x in ()", absent, false],
    ["x notin ()", { x: "" }, false],
    ["x notin ()", { x: "a" }, true],
    ["x notin ()", absent, true],
    // 3. x=, x==, "x= " use the empty value; x!= matches absent keys and any non-empty value.
    ["x=", { x: "" }, true],
    ["x=", absent, false],
    ["x==", { x: "" }, true],
    ["x= ", { x: "" }, true],
    ["x!=", absent, true],
    ["x!=", { x: "a" }, true],
    ["x!=", { x: "" }, false],
    // 5. empty list items add "".
    ["x in (a,)", { x: "" }, true],
    ["x in (a,)", { x: "a" }, true],
    ["x in (,a)", { x: "" }, true],
    ["x in (a,,b)", { x: "" }, true],
    ["x in (a,,b)", { x: "b" }, true],
    ["x in (a,,)", { x: "" }, true],
    // 6. "! debug" is valid.
    ["! debug", absent, true],
    ["! debug", { debug: "1" }, false],
    // 7. keywords are identifiers in key and value position.
    ["in in (in)", { in: "in" }, true],
    ["in in (in)", { in: "notin" }, false],
    ["notin=in", { notin: "in" }, true],
    ["in", { in: "" }, true],
    ["notin", absent, false],
    // 10. dots in a key without a prefix.
    ["app.kubernetes.io=x", { "app.kubernetes.io": "x" }, true],
    ["a..b", { "a..b": "" }, true],
    // 12. \r \n \t are whitespace.
    ["x\r\n=\ta", { x: "a" }, true],
  ])("%j on %j → %s", (...c) => check(c));

  it("4. an empty selector is rejected in specs, and with allowEmpty matches everything", () => {
    expect(() => parseSelector("")).toThrow(/empty expression/);
    expect(parseSelector("", { allowEmpty: true }).matches({ a: "b" })).toBe(true);
  });

  it.each(["!x=a", "!", "x!", "!!x", "x=a||y=b", "x=a=b", "x==a==b", "x===a", "x>=1", "x IN (a)", "x>-1"])(
    "6/8/9/11. %j is an error",
    (expr) => {
      expect(() => parseSelector(expr)).toThrow(/at byte \d+/);
    },
  );

  it.each([
    ["x\u000b=a"], // \v
    ["x\f=a"], // \f
    ["x\u00a0=a"], // NBSP
  ])("12. %j: \\v, \\f and NBSP are not whitespace, so the key is invalid", (expr) => {
    expect(() => parseSelector(expr)).toThrow(/invalid key/);
  });
});

describe("label sets are not validated and keys on Object.prototype are ordinary", () => {
  it.each<Case>([
    ["x=a", { x: "a", "bad key!": "!!", y: "a b" }, true],
    ["x!=a", { x: "not a valid value!" }, true],
    ["constructor", absent, false],
    ["!constructor", absent, true],
    ["toString!=x", absent, true],
    ["constructor=a", { constructor: "a" }, true],
    ["hasOwnProperty in (a)", absent, false],
    ["valueOf notin (a)", absent, true],
  ])("%j on %j → %s", (...c) => check(c));

  it("reads an own __proto__ label (JSON.parse creates one) as a label", () => {
    const labels = JSON.parse('{"__proto__": "x", "a": "b"}') as Labels;
    expect(matchesRequirement({ key: "__proto__", operator: "=", values: ["x"] }, labels)).toBe(true);
    expect(matchesRequirement({ key: "__proto__", operator: "exists", values: [] }, {})).toBe(false);
  });

  it("ignores non-string values (they are not labels)", () => {
    const labels = { a: 1 } as unknown as Labels;
    expect(matchesRequirement({ key: "a", operator: "exists", values: [] }, labels)).toBe(false);
    expect(matchesRequirement({ key: "a", operator: "!", values: [] }, labels)).toBe(true);
  });
});

describe("a selector is the AND of its requirements", () => {
  it.each<Case>([
    ["region=eu-west,tier in (edge,gateway),!maintenance", { region: "eu-west", tier: "edge" }, true],
    [
      "region=eu-west,tier in (edge,gateway),!maintenance",
      { region: "eu-west", tier: "edge", maintenance: "" },
      false,
    ],
    ["region=eu-west,tier in (edge,gateway),!maintenance", { region: "us-east", tier: "edge" }, false],
    ["cpu_cores>4,arch=arm64", { cpu_cores: "8", arch: "arm64" }, true],
    ["cpu_cores>4,arch=arm64", { cpu_cores: "4", arch: "arm64" }, false],
    ["x=a,x=b", { x: "a" }, false],
  ])("%j on %j → %s", (...c) => check(c));
});
