import type { NodeStateType } from "@edgeplane/store";
import { describe, expect, it } from "vitest";
import { livenessConfig, livenessMessage, sweepState } from "./node-liveness.js";

const config = livenessConfig(); // 5 s × 3 = 15 s, lost 5 min, grace 30 s
const T0 = Date.UTC(2026, 0, 1);

function node(state: NodeStateType, lastHeartbeat: number, drained = false) {
  return { state, lastHeartbeat, drained };
}

describe("livenessConfig", () => {
  it("derives the thresholds and checks them", () => {
    expect(config).toEqual({
      heartbeatIntervalMs: 5000,
      missedHeartbeats: 3,
      disconnectAfterMs: 15_000,
      lostAfterMs: 300_000,
      restartGraceMs: 30_000,
    });
    expect(() => livenessConfig({ lostAfterMs: 15_000 })).toThrow(/lost_after_ms/);
    expect(() => livenessConfig({ heartbeatIntervalMs: 0 })).toThrow(/heartbeat_interval_ms/);
    expect(livenessConfig({ heartbeatIntervalMs: 100, lostAfterMs: 1000 }).restartGraceMs).toBe(600);
  });
});

describe("sweepState", () => {
  const longAgo = T0 - 3_600_000; // the view began an hour ago: no grace in play

  it("is a table over silence (rows) and state (columns)", () => {
    const rows: Array<[number, Partial<Record<NodeStateType, NodeStateType | undefined>>]> = [
      [0, { ready: undefined, draining: undefined, disconnected: undefined, lost: undefined }],
      [15_000, { ready: undefined, draining: undefined, disconnected: undefined, lost: undefined }],
      [15_001, { ready: "disconnected", draining: "disconnected", disconnected: undefined, lost: undefined }],
      [
        300_000,
        { ready: "disconnected", draining: "disconnected", disconnected: undefined, lost: undefined },
      ],
      [300_001, { ready: "lost", draining: "lost", disconnected: "lost", lost: undefined }],
    ];
    for (const [silent, expected] of rows) {
      for (const [state, want] of Object.entries(expected)) {
        expect(
          sweepState(node(state as NodeStateType, T0 - silent), T0, longAgo, config),
          `${state} silent ${silent}`,
        ).toBe(want);
      }
    }
  });

  it("gives a restarted registry a grace period before disconnected, and lost_after before lost", () => {
    const start = T0;
    const stale = node("ready", start - 90_000); // persisted coarsely, 90 s before the restart
    expect(sweepState(stale, start, start, config)).toBeUndefined();
    expect(sweepState(stale, start + 29_999, start, config)).toBeUndefined();
    expect(sweepState(stale, start + 30_000, start, config)).toBe("disconnected");
    const disconnected = node("disconnected", start - 290_000);
    expect(sweepState(disconnected, start + 299_999, start, config)).toBeUndefined();
    expect(sweepState(disconnected, start + 300_000, start, config)).toBe("lost");
  });

  it("never revives a silent node (only a heartbeat does)", () => {
    expect(sweepState(node("disconnected", T0), T0, longAgo, config)).toBeUndefined();
    expect(sweepState(node("lost", T0), T0, longAgo, config)).toBeUndefined();
  });
});

describe("livenessMessage", () => {
  it("says what happened and when", () => {
    expect(livenessMessage("disconnected", T0, config)).toBe(
      "missed 3 heartbeats (last at 2026-01-01T00:00:00.000Z)",
    );
    expect(livenessMessage("lost", T0, config)).toBe(
      "no heartbeat for more than 5m0s (last at 2026-01-01T00:00:00.000Z)",
    );
    expect(livenessMessage("ready", T0, config)).toBe("");
  });
});
