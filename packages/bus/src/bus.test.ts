import { HeartbeatSchema } from "@edgeplane/api";
import { describe, expect, it } from "vitest";
import { decode, encode } from "./codec.js";
import { MemoryBroker, subjectMatches } from "./memory-bus.js";
import { nodeIdProblem, parseOutbound, subjects } from "./subjects.js";

describe("subjects", () => {
  it("builds per-node subjects and parses them back", () => {
    expect(subjects.desired("n1")).toBe("ep.node.n1.in.desired");
    expect(subjects.outbound("n1", "heartbeat")).toBe("ep.node.n1.out.heartbeat");
    expect(parseOutbound("ep.node.edge-01.out.heartbeat")).toEqual({ nodeId: "edge-01", kind: "heartbeat" });
    for (const bad of [
      "ep.node.n1.out.nope",
      "ep.node.n1.in.desired",
      "ep.node.a.b.out.event",
      "x.node.n1.out.event",
    ]) {
      expect(parseOutbound(bad)).toBeUndefined();
    }
  });

  it("refuses node ids that are not one subject token", () => {
    for (const bad of ["", "a.b", "*", ">", "a b", "-a", "x".repeat(64), "é"])
      expect(nodeIdProblem(bad)).toBeDefined();
    for (const good of ["n1", "edge-01", "Site_A-7"]) expect(nodeIdProblem(good)).toBeUndefined();
  });
});

describe("codec", () => {
  it("round-trips and refuses malformed or oversized input", () => {
    const bytes = encode(HeartbeatSchema, { nodeId: "n1", seq: 3n, appliedRevision: 7 });
    expect(decode(HeartbeatSchema, bytes)).toMatchObject({ nodeId: "n1", seq: 3n, appliedRevision: 7 });
    expect(() => decode(HeartbeatSchema, new Uint8Array([0xff, 0xff, 0xff]))).toThrow(/malformed/);
    expect(() => decode(HeartbeatSchema, new Uint8Array(2 * 1024 * 1024))).toThrow(/exceeds/);
  });
});

describe("MemoryBroker", () => {
  it("matches NATS wildcards", () => {
    expect(subjectMatches("ep.node.*.out.>", "ep.node.n1.out.heartbeat")).toBe(true);
    expect(subjectMatches("ep.node.*.out.>", "ep.node.n1.out")).toBe(false);
    expect(subjectMatches("ep.node.*.in.desired", "ep.node.n1.in.desired")).toBe(true);
    expect(subjectMatches("a.b", "a.b.c")).toBe(false);
  });

  it("delivers, load-balances queue groups and answers requests", async () => {
    const broker = new MemoryBroker();
    const a = broker.connect();
    const b = broker.connect();
    const got: string[] = [];
    b.subscribe("x.*", (m) => got.push(m.subject));
    let q = 0;
    b.subscribe("x.y", () => q++, { queue: "g" });
    b.subscribe("x.y", () => q++, { queue: "g" });
    b.subscribe("svc", (m) => m.reply && b.publish(m.reply, new Uint8Array([1, 2])));
    a.publish("x.y", new Uint8Array());
    await a.flush();
    expect(got).toEqual(["x.y"]);
    expect(q).toBe(1);
    expect([...(await a.request("svc", new Uint8Array(), { timeoutMs: 100 }))]).toEqual([1, 2]);
    await expect(a.request("nobody", new Uint8Array(), { timeoutMs: 100 })).rejects.toMatchObject({
      code: "unavailable",
    });
    await b.close();
    a.publish("x.y", new Uint8Array());
    await a.flush();
    expect(got).toHaveLength(1);
  });
});
