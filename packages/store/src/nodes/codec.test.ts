import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeDesired, encodeDesiredBody, encodeDesiredBodyPlain, spliceRevision } from "./codec.js";
import { assignmentArbitrary, sampleAssignment } from "./conformance/node-store-suite.js";

describe("encodeDesiredBody", () => {
  it("is JSON.stringify of the body, cached tails or not", () => {
    const config = { input: { generate: { interval: "1s" } }, output: { discard: {} } };
    const a = sampleAssignment("exec-a", { config });
    const b = sampleAssignment('exec-"b"\n', { config, deploymentId: "dep-2", desiredState: "stopped" });
    for (const list of [[], [a], [a, b], [b, a], [sampleAssignment("é", { jobName: "ü\u2028" })]]) {
      expect(encodeDesiredBody(list, 1234)).toBe(encodeDesiredBodyPlain(list, 1234));
      expect(encodeDesiredBody(list, 1234)).toBe(encodeDesiredBodyPlain(list, 1234));
    }
    const c = sampleAssignment('exec-"c"', { config, deploymentId: "dep-2" });
    const text = spliceRevision(3, encodeDesiredBody([a, c], 99));
    expect(decodeDesired("n1", text)).toEqual({
      nodeId: "n1",
      revision: 3,
      assignments: [a, c],
      updatedAt: 99,
    });
  });

  it("matches JSON.stringify on arbitrary assignments (property)", () => {
    const configs = [{}, { a: [1, "x", null] }, { nested: { 'k"': "v\u0000" } }];
    const rec = assignmentArbitrary(configs, 12);
    fc.assert(
      fc.property(fc.array(rec, { maxLength: 4 }), fc.integer({ min: 0, max: 2 ** 45 }), (list, now) => {
        expect(encodeDesiredBody(list, now)).toBe(encodeDesiredBodyPlain(list, now));
      }),
      { numRuns: 300 },
    );
  });
});
