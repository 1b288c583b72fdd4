import { describe, expect, it } from "vitest";
import { parseInt64, utf8Length, validateLabelKey, validateLabelValue } from "./labels.js";

const name63 = `a${"b".repeat(61)}c`;
const prefix253 = `${Array.from({ length: 4 }, () => "p".repeat(62)).join(".")}.q`; // 4*62 + 3 dots + 2 = 253

describe("validateLabelKey", () => {
  it.each([
    "a",
    "A",
    "1",
    "tier",
    "Tier",
    "cpu_cores",
    "app.kubernetes.io", // dots allowed without a prefix
    "a..b", // consecutive dots allowed in the name
    "a-b_c.d",
    "in",
    "notin",
    "constructor",
    name63,
    "example.com/tier",
    "example.com/Tier",
    "kubernetes.io/hostname",
    "a/b",
    "1-2.x/y",
    `${"p".repeat(100)}/x`, // no 63-byte cap per DNS label
    `${prefix253}/${name63}`, // the longest valid key: 317 bytes
  ])("accepts %j", (key) => {
    expect(validateLabelKey(key)).toBeUndefined();
  });

  it("accepts the 317-byte maximum and the 253-byte prefix exactly", () => {
    expect(prefix253).toHaveLength(253);
    expect(`${prefix253}/${name63}`).toHaveLength(317);
  });

  it.each([
    ["", /name is empty/],
    ["-a", /starts with "-"/],
    ["a-", /ends with "-"/],
    ["_a", /starts with "_"/],
    ["a.", /ends with "."/],
    [".a", /starts with "."/],
    ["a b", /" " \(space\) at offset 1/],
    ["a:b", /":" at offset 1/],
    ["a\u000bb", /"\\u000b" at offset 1/], // \v is not whitespace, and not a name byte either
    ["a\u00a0b", /"\\u00a0" at offset 1/], // NBSP
    ["é", /"é" at offset 0/],
    ["a\u0000", /"\\u0000"/],
    [`${name63}d`, /64 bytes long; it is at most 63/],
    ["a/b/c", /has 2 "\/"/],
    ["/a", /prefix before "\/" is empty/],
    ["a/", /name after the prefix is empty/],
    ["Example.com/a", /upper case is not allowed in the prefix/],
    ["ex_ample.com/a", /"_" at offset 2 is not allowed/],
    ["example.com./a", /ends with "."/],
    ["example..com/a", /empty part/],
    [".example.com/a", /empty part at offset 0/],
    ["-example.com/a", /part starting with "-"/],
    ["example-.com/a", /part ending with "-"/],
    [`${prefix253}x/a`, /254 bytes long; it is at most 253/],
    [`example.com/${name63}d`, /64 bytes long/],
    ["example.com/-a", /starts with "-"/],
  ])("rejects %j", (key, problem) => {
    expect(validateLabelKey(key)).toMatch(problem);
  });
});

describe("validateLabelValue", () => {
  it.each(["", "a", "A", "1", "eu-west", "v1.2.3", "a_b", "a..b", "007", name63, "in", "true"])(
    "accepts %j",
    (value) => {
      expect(validateLabelValue(value)).toBeUndefined();
    },
  );

  it.each([
    ["-1", /starts with "-"/],
    ["+5", /"\+" at offset 0/],
    ["a-", /ends with "-"/],
    [".a", /starts with "."/],
    ["a_", /ends with "_"/],
    ["a/b", /"\/" at offset 1/],
    ["a:b", /":" at offset 1/],
    ["a b", /space/],
    ["a||y", /"\|" at offset 1/],
    ["é", /"é"/],
    [`${name63}d`, /64 bytes long; a value is at most 63 bytes/],
    ["é".repeat(32), /64 bytes long/], // 32 two-byte characters: length is counted in bytes
  ])("rejects %j", (value, problem) => {
    expect(validateLabelValue(value)).toMatch(problem);
  });
});

describe("utf8Length", () => {
  it.each([
    ["", 0],
    ["abc", 3],
    ["é", 2],
    ["€", 3],
    ["😀", 4],
    ["\ud800", 3], // a lone surrogate counts as U+FFFD
    ["a😀b", 6],
  ])("%j is %i bytes", (s, bytes) => {
    expect(utf8Length(s)).toBe(bytes);
  });

  it("counts a prefix of the string", () => {
    expect(utf8Length("é=a", 1)).toBe(2);
  });
});

describe("parseInt64 (Go strconv.ParseInt(s, 10, 64))", () => {
  it.each([
    ["0", 0],
    ["7", 7],
    ["007", 7],
    ["+5", 5],
    ["-3", -3],
    ["123456789012345", 123456789012345],
    ["9007199254740991", 9007199254740991],
  ])("%j → %d", (s, n) => {
    expect(parseInt64(s)).toBe(n);
  });

  it("returns a bigint beyond the safe integers, within int64", () => {
    expect(parseInt64("9223372036854775807")).toBe(9223372036854775807n);
    expect(parseInt64("-9223372036854775808")).toBe(-9223372036854775808n);
    expect(parseInt64("9007199254740993")).toBe(9007199254740993n);
  });

  it.each([
    "",
    "+",
    "-",
    "1.5",
    "1e3",
    "0x10",
    "1_000",
    " 1",
    "1 ",
    "a",
    "9223372036854775808",
    "-9223372036854775809",
  ])("rejects %j", (s) => {
    expect(parseInt64(s)).toBeUndefined();
  });
});
