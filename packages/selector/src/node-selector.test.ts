import type { EdgeplaneError } from "@edgeplane/core";
import { describe, expect, it } from "vitest";
import { compileNodeSelector, type NodeSelectorSpec } from "./node-selector.js";

function rejected(spec: NodeSelectorSpec, path?: string): EdgeplaneError {
  try {
    compileNodeSelector(spec, path === undefined ? {} : { path });
  } catch (err) {
    return err as EdgeplaneError;
  }
  throw new Error("expected the selector to be rejected");
}

const n1 = { id: "n1", labels: { region: "eu-west", tier: "edge", cpu_cores: "8", x: "" } };
const n2 = { id: "n2", labels: { region: "us-east", tier: "gateway", maintenance: "true" } };

describe("compileNodeSelector", () => {
  it("matches every node when empty", () => {
    for (const spec of [{}, { match_labels: {} }, { match_ids: [] }, { match_expressions: [] }]) {
      const s = compileNodeSelector(spec);
      expect(s.matchesEverything).toBe(true);
      expect(s.matches(n1)).toBe(true);
      expect(s.matches({ id: "x", labels: {} })).toBe(true);
    }
  });

  it("treats match_labels as equality requirements (SelectorFromSet)", () => {
    const s = compileNodeSelector({ match_labels: { region: "eu-west", tier: "edge" } });
    expect(s.requirements).toEqual([
      { key: "region", operator: "=", values: ["eu-west"] },
      { key: "tier", operator: "=", values: ["edge"] },
    ]);
    expect(s.matches(n1)).toBe(true);
    expect(s.matches(n2)).toBe(false);
  });

  it('requires {"x": ""} to be present with the empty value', () => {
    const s = compileNodeSelector({ match_labels: { x: "" } });
    expect(s.matches(n1)).toBe(true);
    expect(s.matches(n2)).toBe(false);
  });

  it("matches ids from match_ids, an empty list meaning no constraint", () => {
    const s = compileNodeSelector({ match_ids: ["n2", "n3"] });
    expect(s.ids).toEqual(["n2", "n3"]);
    expect(s.matches(n1)).toBe(false);
    expect(s.matches(n2)).toBe(true);
    expect(compileNodeSelector({ match_ids: [] }).ids).toBeUndefined();
  });

  it("ANDs match_labels, match_ids and every expression", () => {
    const s = compileNodeSelector({
      match_labels: { region: "eu-west" },
      match_ids: ["n1", "n2"],
      match_expressions: ["tier in (edge,gateway)", "cpu_cores>4,!maintenance"],
    });
    expect(s.matchesEverything).toBe(false);
    expect(s.matches(n1)).toBe(true);
    expect(s.matches(n2)).toBe(false);
    expect(s.matches({ ...n1, id: "n9" })).toBe(false);
    expect(s.matches({ ...n1, labels: { ...n1.labels, cpu_cores: "4" } })).toBe(false);
    expect(s.toString()).toBe("id in (n1,n2),region=eu-west,tier in (edge,gateway),cpu_cores>4,!maintenance");
  });

  it("names the fields of every problem, in one error", () => {
    const err = rejected({
      match_labels: { "bad key": "x", ok: "a b", "example.com/": "y" },
      match_ids: ["n1", ""],
      match_expressions: ["x=", "", "tier in (a"],
    });
    expect(err.code).toBe("invalid_argument");
    expect(err.details.map((d) => d.field)).toEqual([
      'match_labels["bad key"]',
      'match_labels["ok"]',
      'match_labels["example.com/"]',
      "match_ids[1]",
      "match_expressions[1]",
      "match_expressions[2]",
    ]);
    expect(err.message).toMatch(/^match_labels\["bad key"\]: invalid key: name: " " \(space\) at offset 3/);
    expect(err.message).toContain("(and 5 more problem(s), see details)");
    expect(err.details[1]?.description).toMatch(
      /^invalid value "a b": " " \(space\) at offset 1 is not allowed/,
    );
    expect(err.details[5]?.description).toBe(
      '"tier in (a": at byte 10: expected "," or ")" — close the value list',
    );
    expect(err.metadata.position).toBe(0); // the first expression problem: "" at byte 0
  });

  it("prefixes field names with a path", () => {
    const err = rejected({ match_expressions: ["ok", "x in"] }, "spec.selector");
    expect(err.details).toEqual([
      {
        field: "spec.selector.match_expressions[1]",
        description: '"x in": at byte 4: expected "(" to open the value list after "in" — write "x in (a,b)"',
      },
    ]);
    expect(err.message).toBe(
      'spec.selector.match_expressions[1]: "x in": at byte 4: expected "(" to open the value list after "in" — write "x in (a,b)"',
    );
  });

  it("validates match_labels values with the label value rules", () => {
    expect(rejected({ match_labels: { x: "-a" } }).details[0]?.description).toMatch(/starts with "-"/);
    expect(rejected({ match_labels: { x: "a".repeat(64) } }).details[0]?.description).toMatch(/64 bytes/);
    expect(rejected({ match_labels: { x: 1 as unknown as string } }).details[0]?.description).toBe(
      "the value must be a string",
    );
  });

  it("is a pure function of its input", () => {
    const spec = { match_labels: { a: "b" }, match_expressions: ["c"] };
    const before = JSON.stringify(spec);
    compileNodeSelector(spec);
    expect(JSON.stringify(spec)).toBe(before);
  });
});
