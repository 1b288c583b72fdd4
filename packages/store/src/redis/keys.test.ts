import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { comparePositions } from "../semantics.js";
import { indexMember, jobStoreKeys, LUA_KEYS, nameMember, timeMember, versionField } from "./keys.js";

const bytes = (s: string): Buffer => Buffer.from(s, "utf8");

describe("job store keys", () => {
  it("build every key under the prefix, in the documented layout", () => {
    const k = jobStoreKeys("t:1:");
    expect([k.records, k.versions, k.events, k.namespaces, k.idempotency("req")]).toEqual([
      "t:1:jobs:rec",
      "t:1:jobs:ver",
      "t:1:jobs:events",
      "t:1:jobs:ns",
      "t:1:idem:req",
    ]);
    expect(k.index("prod", "running", "query", "name")).toBe("t:1:jobs:idx:prod:running:query:name");
    expect(jobStoreKeys().records).toBe("ep:jobs:rec");
    expect(versionField("job-1", 12)).toBe("job-1:12");
    // The Lua mirror builds the same segments.
    expect(LUA_KEYS).toContain('PREFIX .. "jobs:idx:" .. ns .. ":" .. state .. ":" .. jtype .. ":" .. kind');
    expect(LUA_KEYS).toContain('string.format("%012x", ms)');
  });

  it("encode times as 12 lowercase hex digits", () => {
    expect(timeMember(0, "a")).toBe("000000000000a");
    expect(timeMember(1_700_000_000_123, "job-x")).toBe(
      `${(1_700_000_000_123).toString(16).padStart(12, "0")}job-x`,
    );
    expect(indexMember("name", "web", "job-1")).toBe("web\0job-1");
    expect(indexMember("created", 5, "job-1")).toBe(timeMember(5, "job-1"));
  });

  const id = fc.string({ unit: fc.constantFrom("a", "b", "0", "-", "z"), minLength: 1, maxLength: 6 });
  const time = fc.integer({ min: 0, max: 99_999_999_999_999 });
  const name = fc.string({
    unit: fc.constantFrom("a", "b", "-", "é", "😀", "\u0001"),
    minLength: 1,
    maxLength: 5,
  });

  it("make byte order of time members equal (time, id) order", () => {
    fc.assert(
      fc.property(time, id, time, id, (t1, i1, t2, i2) => {
        const byBytes = Math.sign(Buffer.compare(bytes(timeMember(t1, i1)), bytes(timeMember(t2, i2))));
        expect(byBytes).toBe(Math.sign(comparePositions({ key: t1, id: i1 }, { key: t2, id: i2 })));
      }),
    );
  });

  it("make byte order of name members equal (name, id) order", () => {
    fc.assert(
      fc.property(name, id, name, id, (n1, i1, n2, i2) => {
        const byBytes = Math.sign(Buffer.compare(bytes(nameMember(n1, i1)), bytes(nameMember(n2, i2))));
        expect(byBytes).toBe(Math.sign(comparePositions({ key: n1, id: i1 }, { key: n2, id: i2 })));
      }),
    );
  });
});
