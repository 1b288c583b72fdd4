import { describe, expect, it } from "vitest";
import { CoalescingRunner } from "./coalescing-runner.js";

/** A task that waits until released, counting its runs. */
function gatedPoll() {
  let runs = 0;
  let release: () => void = () => {};
  const poll = () => {
    runs++;
    return new Promise<void>((resolve) => {
      release = resolve;
    });
  };
  return { poll, runs: () => runs, release: () => release() };
}

describe("CoalescingRunner", () => {
  it("never runs twice at once; requests during a run share one more run after it", async () => {
    const g = gatedPoll();
    const runner = new CoalescingRunner(g.poll);
    const first = runner.run();
    const a = runner.run();
    const b = runner.run();
    expect(a).toBe(b);
    expect(g.runs()).toBe(1);
    g.release();
    await first;
    await Promise.resolve();
    expect(g.runs()).toBe(2);
    g.release();
    await Promise.all([a, b]);
    expect(g.runs()).toBe(2);
    expect(runner.running).toBeUndefined();
  });

  it("runs no more once stopped, and stop waits for the run in progress", async () => {
    const g = gatedPoll();
    const runner = new CoalescingRunner(g.poll);
    void runner.run();
    let stopped = false;
    const stopping = runner.stop().then(() => {
      stopped = true;
    });
    await Promise.resolve();
    expect(stopped).toBe(false);
    g.release();
    await stopping;
    await runner.run();
    expect(g.runs()).toBe(1);
  });

  it("a failed run fails its callers only; the run requested meanwhile still happens, and later ones too", async () => {
    let runs = 0;
    let fail: (err: Error) => void = () => {};
    const runner = new CoalescingRunner(() => {
      runs++;
      if (runs === 1)
        return new Promise<void>((_, reject) => {
          fail = reject;
        });
      return Promise.resolve();
    });
    const first = runner.run();
    const again = runner.run();
    fail(new Error("redis down"));
    await expect(first).rejects.toThrow("redis down");
    await again;
    expect(runs).toBe(2);
    await runner.run();
    expect(runs).toBe(3);
    await runner.stop();
  });
});
