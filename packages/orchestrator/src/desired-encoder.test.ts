import { fromBinary } from "@bufbuild/protobuf";
import { DesiredStateSchema } from "@edgeplane/api";
import { encode } from "@edgeplane/bus";
import type { AssignmentRecord, JsonObject } from "@edgeplane/store";
import { assignmentArbitrary } from "@edgeplane/store/conformance/nodes";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DesiredStateEncoder } from "./desired-encoder.js";
import { desiredStateMessage } from "./desired-message.js";

const T0 = Date.UTC(2026, 0, 1, 12, 30, 15, 250);
const CONFIG: JsonObject = {
  input: { generate: { interval: "1s", message: { n: 1.5, ok: true, none: null, list: ["a", 2] } } },
  output: { discard: {} },
};

function assignment(executionId: string, overrides: Partial<AssignmentRecord> = {}): AssignmentRecord {
  return {
    executionId,
    jobId: "job-1",
    jobVersion: 3,
    namespace: "default",
    jobName: "logs",
    type: "pipeline",
    config: CONFIG,
    desiredState: "running",
    timeouts: { executionTimeout: 0, queueTimeout: 60, totalTimeout: 0 },
    restartPolicy: "on-failure",
    maxErrorRate: 0.1,
    deploymentId: "dep-1",
    ...overrides,
  };
}

/** What the generic path encodes. */
const generic = (nodeId: string, revision: number, assignments: readonly AssignmentRecord[], now: number) =>
  encode(DesiredStateSchema, desiredStateMessage(nodeId, revision, assignments, now));

describe("DesiredStateEncoder", () => {
  it("gives the bytes of the generic encoder, template cached or not", () => {
    const enc = new DesiredStateEncoder();
    const cases: Array<[string, number, AssignmentRecord[], number]> = [
      ["node-000001", 7, [assignment("exec-aaaa")], T0],
      ["node-000002", 8, [assignment("exec-bbbb")], T0 + 1],
      ["n", 1, [assignment("exec-a"), assignment("exec-b", { jobId: "job-2", desiredState: "stopped" })], T0],
      ["n", 0, [], 0],
      ["", 0, [assignment("")], 999],
      [
        "edge-ü",
        4_294_967_295,
        [assignment("exec-ü", { jobName: "ünïcode ✓", jobVersion: 0, maxErrorRate: 0 })],
        1000,
      ],
      ["n", 300, [assignment("exec-x", { config: {} })], 2 ** 40],
      // Lone surrogates (written as U+FFFD), a pair, 2- and 3-byte characters.
      ["\ud800x\udc00", 2, [assignment("e-\ud83d\ude00-\u00e9-\u20ac-\ud800")], T0],
      ["\udbff", 2, [assignment("\udfff")], T0],
    ];
    for (const [nodeId, revision, list, now] of cases) {
      expect(enc.encode(nodeId, revision, list, now)).toEqual(generic(nodeId, revision, list, now));
      // Again, from the cached templates.
      expect(enc.encode(nodeId, revision, list, now)).toEqual(generic(nodeId, revision, list, now));
    }
  });

  it("never reuses a template across different fields of the same config", () => {
    const enc = new DesiredStateEncoder();
    const a = assignment("exec-1");
    const b = assignment("exec-2", { deploymentId: "dep-2", timeouts: { ...a.timeouts, totalTimeout: 5 } });
    enc.encode("n1", 1, [a], T0);
    const got = fromBinary(DesiredStateSchema, enc.encode("n2", 1, [b], T0));
    expect(got.assignments[0]?.deploymentId).toBe("dep-2");
    expect(got.assignments[0]?.timeouts?.totalTimeout).toBe(5);
    expect(got.assignments[0]?.executionId).toBe("exec-2");
  });

  it("falls back to the generic encoder for times and revisions it does not write by hand", () => {
    const enc = new DesiredStateEncoder();
    for (const now of [T0 + 0.5, -1000]) {
      expect(enc.encode("n", 1, [assignment("e")], now)).toEqual(generic("n", 1, [assignment("e")], now));
    }
  });

  it("matches the generic encoder on arbitrary records (property)", () => {
    const enc = new DesiredStateEncoder();
    const str = fc.string({ unit: "binary", maxLength: 20 });
    const rec = assignmentArbitrary([CONFIG, {}, { a: { b: [1, "x"] } }], 20);
    fc.assert(
      fc.property(
        str,
        fc.integer({ min: 0, max: 4_294_967_295 }),
        fc.array(rec, { maxLength: 4 }),
        fc.integer({ min: 0, max: 2 ** 45 }),
        (nodeId, revision, list, now) => {
          expect(enc.encode(nodeId, revision, list, now)).toEqual(generic(nodeId, revision, list, now));
        },
      ),
      { numRuns: 300 },
    );
  });
});
