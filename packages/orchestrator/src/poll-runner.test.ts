import { describe, expect, it } from "vitest";
import { PollRunner } from "./poll-runner.js";

/** A poll that waits until released, counting its runs. */
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

describe("PollRunner", () => {
  it("never runs two polls at once; requests during a poll share one more poll after it", async () => {
    const g = gatedPoll();
    const runner = new PollRunner(g.poll);
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

  it("polls no more once stopped, and stop waits for the poll in progress", async () => {
    const g = gatedPoll();
    const runner = new PollRunner(g.poll);
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

  it("a failed poll fails its callers only; the poll requested meanwhile still runs, and later ones too", async () => {
    let runs = 0;
    let fail: (err: Error) => void = () => {};
    const runner = new PollRunner(() => {
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
