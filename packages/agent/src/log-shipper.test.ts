import type { LogBatch } from "@edgeplane/api";
import { FakeClock } from "@edgeplane/testkit";
import { describe, expect, it } from "vitest";
import { LogShipper } from "./log-shipper.js";

describe("LogShipper", () => {
  it("batches per execution with gap-free sequence numbers", () => {
    const sent: LogBatch[] = [];
    const shipper = new LogShipper({
      nodeId: "n1",
      clock: new FakeClock(),
      publish: (b) => sent.push(b) > 0,
      maxLinesPerBatch: 3,
    });
    for (let i = 1; i <= 4; i++) shipper.append("e1", "INFO", "stdout", `line ${i}`);
    shipper.append("e2", "ERROR", "stderr", "oops");
    shipper.close();
    expect(sent.map((b) => [b.executionId, b.lines.map((l) => Number(l.seq))])).toEqual([
      ["e1", [1, 2, 3]],
      ["e1", [4]],
      ["e2", [1]],
    ]);
    expect(sent[2]?.lines[0]).toMatchObject({ level: "ERROR", stream: "stderr", text: "oops" });
    expect(sent.every((b) => b.nodeId === "n1" && b.dropped === 0n)).toBe(true);
  });

  it("keeps a bounded buffer while it cannot publish, drops the oldest and says how many", () => {
    const sent: LogBatch[] = [];
    let online = false;
    const shipper = new LogShipper({
      nodeId: "n1",
      clock: new FakeClock(),
      publish: (b) => online && sent.push(b) > 0,
      maxBufferedLines: 5,
      maxLineChars: 4,
    });
    for (let i = 1; i <= 8; i++) shipper.append("e1", "INFO", "stdout", `line ${i}`);
    shipper.flush();
    expect(sent).toEqual([]);
    online = true;
    shipper.flush();
    expect(sent).toHaveLength(1);
    expect(sent[0]?.dropped).toBe(3n);
    expect(sent[0]?.lines.map((l) => Number(l.seq))).toEqual([4, 5, 6, 7, 8]);
    expect(sent[0]?.lines[0]?.text).toBe("line…");
    shipper.close();
  });
});
