import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { EdgeplaneError, isEdgeplaneError } from "@edgeplane/core";
import { describe, expect, it } from "vitest";
import { parseMatchExpressions, parseSelector } from "./parse.js";
import type { Operator } from "./requirement.js";

type Row = readonly [key: string, operator: Operator, values: readonly string[]];

function reqs(expr: string): Row[] {
  return parseSelector(expr).requirements.map((r) => [r.key, r.operator, [...r.values]] as const);
}

function parseError(expr: string): EdgeplaneError {
  try {
    parseSelector(expr);
  } catch (err) {
    if (isEdgeplaneError(err)) return err;
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(expr)} to be rejected`);
}

describe("parseSelector: valid expressions (Kubernetes grammar)", () => {
  it.each<[string, Row[]]>([
    ["x", [["x", "exists", []]]],
    ["!x", [["x", "!", []]]],
    ["! x", [["x", "!", []]]], // a space after "!" is allowed
    ["!\tx", [["x", "!", []]]],
    ["x=a", [["x", "=", ["a"]]]],
    ["x==a", [["x", "==", ["a"]]]],
    ["x!=a", [["x", "!=", ["a"]]]],
    ["x != a", [["x", "!=", ["a"]]]],
    ["x=", [["x", "=", [""]]]], // a missing value is the empty value
    ["x==", [["x", "==", [""]]]],
    ["x= ", [["x", "=", [""]]]],
    ["x!=", [["x", "!=", [""]]]],
    [
      "x=,y",
      [
        ["x", "=", [""]],
        ["y", "exists", []],
      ],
    ],
    ["x in (a)", [["x", "in", ["a"]]]],
    ["x in(a)", [["x", "in", ["a"]]]], // no whitespace needed next to special bytes
    ["x in (b,a,a)", [["x", "in", ["a", "b"]]]], // set semantics, sorted
    ["x in ( a , b )", [["x", "in", ["a", "b"]]]],
    ["x in ()", [["x", "in", [""]]]], // corner case 2
    ["x notin ()", [["x", "notin", [""]]]],
    ["x in (a,)", [["x", "in", ["", "a"]]]], // corner case 5
    ["x in (,a)", [["x", "in", ["", "a"]]]],
    ["x in (a,,b)", [["x", "in", ["", "a", "b"]]]],
    ["x in (a,,)", [["x", "in", ["", "a"]]]], // valid since Kubernetes 1.35
    ["x in (,)", [["x", "in", [""]]]],
    ["x notin (a,b)", [["x", "notin", ["a", "b"]]]],
    ["in in (in)", [["in", "in", ["in"]]]], // keywords only where an operator is expected
    ["notin=in", [["notin", "=", ["in"]]]],
    ["in", [["in", "exists", []]]],
    ["notin", [["notin", "exists", []]]],
    ["!in", [["in", "!", []]]],
    ["x notin (in,notin)", [["x", "notin", ["in", "notin"]]]],
    ["x>1", [["x", ">", ["1"]]]],
    ["x<10", [["x", "<", ["10"]]]],
    ["x > 5", [["x", ">", ["5"]]]],
    ["x>01", [["x", ">", ["01"]]]], // leading zeros are a valid int and a valid value
    ["x>0", [["x", ">", ["0"]]]],
    ["x>9223372036854775807", [["x", ">", ["9223372036854775807"]]]],
    ["example.com/tier=edge", [["example.com/tier", "=", ["edge"]]]],
    ["app.kubernetes.io=x", [["app.kubernetes.io", "=", ["x"]]]],
    ["a..b=c", [["a..b", "=", ["c"]]]],
    ["X=A", [["X", "=", ["A"]]]],
    ["constructor=a", [["constructor", "=", ["a"]]]],
    ["\tx\r\n=\na\t", [["x", "=", ["a"]]]], // \t \r \n are whitespace
    ["x=a   ", [["x", "=", ["a"]]]],
    [
      "x=a , y=b",
      [
        ["x", "=", ["a"]],
        ["y", "=", ["b"]],
      ],
    ],
    [
      "x=a,x=b",
      [
        ["x", "=", ["a"]],
        ["x", "=", ["b"]],
      ],
    ], // allowed, matches nothing
    [
      "a=b,c!=d,e in (f),g notin (h),i,!j,k>1,l<2",
      [
        ["a", "=", ["b"]],
        ["c", "!=", ["d"]],
        ["e", "in", ["f"]],
        ["g", "notin", ["h"]],
        ["i", "exists", []],
        ["j", "!", []],
        ["k", ">", ["1"]],
        ["l", "<", ["2"]],
      ],
    ],
    [
      "region=eu-west,tier in (edge,gateway),!maintenance",
      [
        ["region", "=", ["eu-west"]],
        ["tier", "in", ["edge", "gateway"]],
        ["maintenance", "!", []],
      ],
    ],
    [
      "cpu_cores>4,arch=arm64",
      [
        ["cpu_cores", ">", ["4"]],
        ["arch", "=", ["arm64"]],
      ],
    ],
  ])("%j", (expr, expected) => {
    expect(reqs(expr)).toEqual(expected);
  });

  it("keeps source order in requirements and prints the canonical form sorted by key", () => {
    const s = parseSelector("b=1, a in (y,x), !c, d");
    expect(s.requirements.map((r) => r.key)).toEqual(["b", "a", "c", "d"]);
    expect(s.toString()).toBe("a in (x,y),b=1,!c,d");
    expect(parseSelector(s.toString()).toString()).toBe(s.toString());
  });

  it("accepts an empty expression only when asked (query filters), matching everything", () => {
    const s = parseSelector("  ", { allowEmpty: true });
    expect(s.requirements).toEqual([]);
    expect(s.matches({})).toBe(true);
  });
});

const sixtyFourDigits = "1".repeat(64);
/** [expression, byte position of the problem, a fragment of the message]. */
const INVALID: readonly [string, number, string][] = [
  ["", 0, "an empty expression is rejected"],
  ["   ", 3, "an empty expression is rejected"],
  ["\t\r\n", 3, "an empty expression is rejected"],
  [",", 0, 'found ",", expected a label key or "!"'],
  [",x", 0, 'found ",", expected a label key or "!"'],
  ["x,", 2, 'expected a label key or "!" after ","'],
  ["x,,y", 2, 'found ",", expected a label key or "!" after ","'],
  ["x, ,y", 3, 'found ","'],
  ["x=a,", 4, 'after ","'],
  ["x,!", 3, 'expected a label key after "!"'],
  ["!", 1, 'expected a label key after "!"'],
  ["!!x", 1, 'there is no "!!"'],
  ["x!", 1, 'found "!", expected an operator'],
  ["!x=a", 2, '"!" only negates a bare key'],
  ["!x in (a)", 3, 'found "in", expected "," or the end of the expression after "!x"'],
  ["x IN (a)", 2, 'operators are lower case: write "in"'],
  ["x NotIn (a)", 2, 'write "notin"'],
  ["bad key=1", 4, 'found "key", expected an operator'],
  ["x)", 1, 'found ")", expected an operator'],
  ["(x)", 0, 'found "(", expected a label key'],
  ["=a", 0, 'found "=", expected a label key'],
  ["x in a", 5, 'expected "(" to open the value list'],
  ["x notin", 7, 'expected "(" to open the value list after "notin"'],
  ["x in (a", 7, 'expected "," or ")" — close the value list'],
  ["tier in (a", 10, 'expected "," or ")" — close the value list'],
  ["x in (", 6, 'expected a value, "," or ")"'],
  ["x in (a b)", 8, 'found "b", expected "," or ")" — separate values with ","'],
  ["x in (!a)", 6, 'found "!", expected a value'],
  ["x in (a=b)", 7, 'found "=", expected "," or ")"'],
  ["x in ((a))", 6, 'found "("'],
  ["x in (a)(b)", 8, 'found "(", expected "," or the end of the expression'],
  ["x in (a) y", 9, 'found "y", expected "," or the end'],
  ["x=a b", 4, 'found "b", expected "," or the end of the expression'],
  ["x=a=b", 3, 'found "="'],
  ["x==a==b", 4, 'found "=="'],
  ["x===a", 3, 'found "=", expected a value after "=="'],
  ["x=(a)", 2, 'found "(", expected a value after "="'],
  ["x>=1", 2, 'there is no ">="'],
  ["x<=1", 2, 'there is no "<="'],
  ["x>", 2, 'expected an integer after ">"'],
  ["x>,y", 2, 'found ",", expected an integer after ">"'],
  ["x>a", 2, 'invalid value "a" for ">"'],
  ["x>-1", 2, 'invalid value "-1" for ">"'], // an int, but not a valid label value
  ["x>+1", 2, 'invalid value "+1"'],
  ["x>1.5", 2, 'invalid value "1.5"'],
  ["x>0x10", 2, 'invalid value "0x10"'],
  ["x>9223372036854775808", 2, "no larger than 9223372036854775807"],
  [`x<${sixtyFourDigits}`, 2, "non-negative base-10 integer"],
  ["x > 1 2", 6, 'found "2"'],
  ["x=a||y=b", 2, 'there is no "||"'], // corner case 8: not OR
  ["x=a&&y=b", 2, 'there is no "&&"'],
  ["x=-a", 2, 'invalid value "-a" for key "x": starts with "-"'],
  ["x=a/b", 2, '"/" at offset 1 is not allowed'],
  ["x=a\u00a0", 2, "\\u00a0"], // NBSP is not whitespace: it is part of the value
  ["x=a\u0000", 2, "\\u0000"], // NUL does not end the string here (Kubernetes stops at it)
  ["-x=a", 0, 'invalid key "-x"'],
  ["a/b/c=1", 0, 'has 2 "/"'],
  ["Foo.com/x=1", 0, "upper case is not allowed in the prefix"],
  ["x\u000b=a", 0, 'invalid key "x\\u000b"'], // \v is not whitespace
  ["x\f", 0, "invalid key"],
  [`${"a".repeat(64)}=b`, 0, "64 bytes long"],
  ["x=é", 2, 'invalid value "é"'],
  ["tier=a,é=b", 7, 'invalid key "é"'],
];

describe("parseSelector: invalid expressions name the byte position", () => {
  it("covers at least 40 invalid strings", () => {
    expect(INVALID.length).toBeGreaterThanOrEqual(40);
  });

  it.each(INVALID)("%j at byte %i", (expr, position, fragment) => {
    const err = parseError(expr);
    expect(err.code).toBe("invalid_argument");
    expect(err.message).toContain(`: at byte ${position}: `);
    expect(err.message).toContain(fragment);
    expect(err.metadata.position).toBe(position);
    expect(err.details).toHaveLength(1);
    expect(err.details[0]?.field).toBe("selector");
    expect(err.message.startsWith(`selector: ${JSON.stringify(expr)}: at byte ${position}: `)).toBe(true);
  });

  it("reports UTF-8 byte offsets, which stop at the first non-ASCII byte", () => {
    // Every token the grammar accepts is ASCII, so the first non-ASCII character is always inside
    // the token that fails: the byte offset of that token is also its UTF-16 index.
    expect(parseError("x=a,😀=b").metadata.position).toBe(4);
    expect(parseError("x=a😀 b").metadata.position).toBe(2);
    expect(parseError("x in (é,").metadata.position).toBe(6);
    expect(parseError("x=a é").metadata.position).toBe(4);
    expect(parseError("x é (a)").metadata.position).toBe(2);
  });

  it("names the field it is given", () => {
    const err = (() => {
      try {
        parseSelector("x in (a", { field: "label_selector" });
      } catch (e) {
        return e as EdgeplaneError;
      }
      throw new Error("not rejected");
    })();
    expect(err.message).toBe(
      'label_selector: "x in (a": at byte 7: expected "," or ")" — close the value list',
    );
    expect(err.details).toEqual([
      {
        field: "label_selector",
        description: '"x in (a": at byte 7: expected "," or ")" — close the value list',
      },
    ]);
    expect(err.httpStatus).toBe(400);
  });

  it("quotes only a window of a long expression", () => {
    const expr = `${"a=b,".repeat(1000)}x in (y`;
    const err = parseError(expr);
    expect(err.metadata.position).toBe(expr.length);
    expect(err.message.length).toBeLessThan(300);
    expect(err.message).toContain("…");
    expect(err.message).toContain("x in (y");
  });
});

describe("parseMatchExpressions", () => {
  it("ANDs the requirements of every string", () => {
    expect(parseMatchExpressions(["a=b,c", "!d"]).map((r) => r.key)).toEqual(["a", "c", "d"]);
  });

  it("reports the index of the bad string in the field name, as the lead's example", () => {
    try {
      parseMatchExpressions(["a=b", "c", "tier in (a"]);
      expect.unreachable();
    } catch (err) {
      const e = err as EdgeplaneError;
      expect(e.code).toBe("invalid_argument");
      expect(e.message).toBe(
        'match_expressions[2]: "tier in (a": at byte 10: expected "," or ")" — close the value list',
      );
      expect(e.details).toEqual([
        {
          field: "match_expressions[2]",
          description: '"tier in (a": at byte 10: expected "," or ")" — close the value list',
        },
      ]);
    }
  });

  it("reports every bad string at once, with a field path", () => {
    try {
      parseMatchExpressions(["x==", "", "y in (a", "ok"], "spec.selector.match_expressions");
      expect.unreachable();
    } catch (err) {
      const e = err as EdgeplaneError;
      expect(e.details.map((d) => d.field)).toEqual([
        "spec.selector.match_expressions[1]",
        "spec.selector.match_expressions[2]",
      ]);
      expect(e.message).toContain("(and 1 more problem(s), see details)");
      expect(e.details[0]?.description).toMatch(/^"": at byte 0: expected a requirement/);
    }
  });

  it("accepts an empty list", () => {
    expect(parseMatchExpressions([])).toEqual([]);
  });
});

describe("parsing is linear", () => {
  /**
   * The best of 7 timed runs after 3 warm-up runs (for the JIT), in ms. The minimum is the
   * estimate of the intrinsic cost: other processes on a shared machine can only add time.
   */
  function bestMs(fn: () => void): number {
    for (let i = 0; i < 3; i++) fn();
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 7; i++) {
      const t0 = performance.now();
      fn();
      best = Math.min(best, performance.now() - t0);
    }
    return best;
  }
  const attempt = (expr: string) => () => {
    try {
      parseSelector(expr);
    } catch {
      // rejected is fine: only the time counts
    }
  };

  const requirements = (n: number) => Array.from({ length: n }, (_, i) => `key-${i}=value-${i}`).join(",");

  it("parses 10,000 requirements in under 10 ms", () => {
    const expr = requirements(10_000);
    expect(parseSelector(expr).requirements).toHaveLength(10_000);
    expect(bestMs(attempt(expr))).toBeLessThan(10);
  });

  it("takes about twice as long for twice the input", () => {
    const small = bestMs(attempt(requirements(10_000)));
    const large = bestMs(attempt(requirements(20_000)));
    expect(large / small).toBeLessThan(4);
  });

  it.each([
    ["valid requirements", "tier in (edge,gateway),"],
    ["one huge value list", "a,"],
    ["an unterminated list", "x in (a,"],
    ["only whitespace", " \t"],
    ["one huge identifier", "a"],
    ["a run of special bytes", "=!"],
    ["commas", ","],
    ["non-ASCII", "é"],
  ])("handles a 64 KiB expression of %s in under 10 ms", (_name, unit) => {
    let expr = unit.repeat(Math.ceil(65_536 / unit.length)).slice(0, 65_536);
    if (unit === "a,") expr = `x in (${expr.slice(0, -8)})`;
    if (unit === "tier in (edge,gateway),") expr = `${expr.slice(0, expr.lastIndexOf(","))}`;
    expect(bestMs(attempt(expr))).toBeLessThan(10);
  });

  it("builds no regular expression at all (so none from user input)", () => {
    const dir = dirname(fileURLToPath(import.meta.url));
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))) {
      const source = readFileSync(join(dir, file), "utf8");
      expect(source, file).not.toMatch(/new RegExp|RegExp\(/);
    }
  });
});

describe("errors", () => {
  it("are EdgeplaneErrors with code invalid_argument", () => {
    const err = parseError("x in (a");
    expect(err).toBeInstanceOf(EdgeplaneError);
    expect(err.retryable).toBe(false);
  });
});
