import { describe, expect, it } from "vitest";
import { FAILURE_CODES, failureOf, LUA_FAILURES } from "./failures.js";
import {
  decodeMeta,
  decodeRecord,
  decodeVersion,
  encodeRecord,
  encodeSpec,
  LUA_RECORD_FIELDS,
  labelsSlot,
  RECORD_FIELDS,
  type RecordMeta,
} from "./record-codec.js";

const meta: RecordMeta = {
  namespace: "default",
  name: "web",
  type: "query",
  version: 3,
  revision: 7,
  stableVersion: 2,
  state: "running",
  message: "running on a/b",
  details: { nodes: "3" },
  deploymentId: "dep-1",
  createdAt: 1_700_000_000_000,
  updatedAt: 1_700_000_005_000,
  labels: 0,
  digest: "abcdefghijkl",
  versionCreatedAt: 1_700_000_004_000,
  versionKind: "revert",
  sourceVersion: 1,
  oldestVersion: 1,
};

describe("record codec", () => {
  it("round-trips a record, taking labels from the spec when the slot is 0", () => {
    const spec = { labels: { app: "web" }, name: "web", note: "line\nbreak" };
    const packed = encodeRecord(meta, JSON.stringify(spec));
    // The meta (JSON: never a raw newline) ends at the first newline; the spec is compressed.
    const metaJson = packed.slice(0, packed.indexOf("\n"));
    expect(JSON.parse(metaJson)).toHaveLength(RECORD_FIELDS.length);
    expect(metaJson).toContain('"running on a\\/b"'); // escaped like Lua's cjson
    expect(packed.slice(metaJson.length + 1)).toBe(encodeSpec(JSON.stringify(spec)));
    expect(packed.slice(metaJson.length + 1, metaJson.length + 3)).toBe("~1");
    expect(decodeRecord("job-1", packed)).toEqual({
      id: "job-1",
      namespace: "default",
      name: "web",
      type: "query",
      labels: { app: "web" },
      spec,
      version: 3,
      revision: 7,
      stableVersion: 2,
      state: "running",
      stateMessage: "running on a/b",
      stateDetails: { nodes: "3" },
      deploymentId: "dep-1",
      createdAt: 1_700_000_000_000,
      updatedAt: 1_700_000_005_000,
    });
    expect(decodeMeta("job-1", packed).meta).toEqual(meta);
    const own = encodeRecord({ ...meta, labels: { team: "x" } }, JSON.stringify(spec));
    expect(decodeRecord("job-1", own).labels).toEqual({ team: "x" });
    expect(decodeRecord("job-1", encodeRecord(meta, "{}")).labels).toEqual({});
  });

  it("reads records and versions whose spec is plain JSON (written before compression)", () => {
    const spec = { labels: { app: "web" }, name: "web" };
    const packed = encodeRecord(meta, JSON.stringify(spec));
    const plain = `${packed.slice(0, packed.indexOf("\n"))}\n${JSON.stringify(spec)}`;
    expect(decodeRecord("job-1", plain)).toEqual(decodeRecord("job-1", packed));
    const version = decodeVersion("job-1", 2, `[5,"submit",0]\n${encodeSpec(JSON.stringify(spec))}`);
    expect(version).toEqual(decodeVersion("job-1", 2, `[5,"submit",0]\n${JSON.stringify(spec)}`));
    expect(version.spec).toEqual(spec);
  });

  it("stores labels once when they equal spec.labels", () => {
    expect(labelsSlot({ a: "1", b: "2" }, { labels: { b: "2", a: "1" } })).toBe(0);
    expect(labelsSlot({}, {})).toBe(0);
    expect(labelsSlot({ a: "1" }, { labels: { a: "2" } })).toEqual({ a: "1" });
  });

  it("decodes versions and reports corrupt data as internal", () => {
    expect(decodeVersion("job-1", 2, '[5,"submit",0]\n{"a":1}')).toEqual({
      jobId: "job-1",
      version: 2,
      spec: { a: 1 },
      createdAt: 5,
      kind: "submit",
      sourceVersion: 0,
    });
    expect(() => decodeRecord("job-1", "no separator")).toThrow(
      expect.objectContaining({ code: "internal" }),
    );
    expect(() => decodeRecord("job-1", "[1,2]\n{}")).toThrow(expect.objectContaining({ code: "internal" }));
    expect(() => decodeVersion("job-1", 1, "x\ny")).toThrow(expect.objectContaining({ code: "internal" }));
    expect(() => decodeRecord("job-1", `${JSON.stringify(RECORD_FIELDS)}\n~7abc`)).toThrow(
      expect.objectContaining({ code: "internal", message: expect.stringContaining("record job-1") }),
    );
  });

  it("generates the Lua slot constants from the same list", () => {
    expect(RECORD_FIELDS).toHaveLength(18);
    expect(LUA_RECORD_FIELDS).toContain("local R_NAMESPACE = 1");
    expect(LUA_RECORD_FIELDS).toContain("local R_STABLE_VERSION = 6");
    expect(LUA_RECORD_FIELDS).toContain("local R_OLDEST_VERSION = 18");
  });
});

describe("script failures", () => {
  it("map every code through one table", () => {
    expect(failureOf([1, "job-1"])).toBeUndefined();
    expect(failureOf([FAILURE_CODES.NOT_FOUND, "job-1"])).toMatchObject({ code: "not_found" });
    expect(failureOf([FAILURE_CODES.VERSION_CONFLICT, 3, 4, 9])).toMatchObject({
      code: "aborted",
      message: "expected version 3 but the job is at version 4: re-read it and retry",
      metadata: { current_version: 4, current_revision: 9 },
    });
    expect(failureOf([FAILURE_CODES.REVISION_CONFLICT, 3, 4, 9])).toMatchObject({ code: "aborted" });
    expect(failureOf([FAILURE_CODES.DELETED, "job-1"])).toMatchObject({ code: "failed_precondition" });
    expect(
      failureOf([FAILURE_CODES.ILLEGAL_TRANSITION, "job-1", "stopped", "running", "pending,failed"]),
    ).toMatchObject({
      code: "failed_precondition",
      message: "job job-1 is stopped and cannot become running (only from: pending, failed)",
      metadata: { current_state: "stopped", target_state: "running" },
    });
    expect(failureOf([FAILURE_CODES.ID_TAKEN, "job-1"])).toMatchObject({ code: "already_exists" });
    expect(() => failureOf([-99])).toThrow(expect.objectContaining({ code: "internal" }));
    expect(LUA_FAILURES).toContain("local E_NOT_FOUND = -1");
  });
});
