import { describe, expect, it } from "vitest";
import { type QueueTimers, WorkQueue } from "./work-queue.js";

/** Timers that fire only when the test advances them. */
function fakeTimers(): QueueTimers & { advance(ms: number): void; pending(): number } {
  let now = 0;
  let next = 0;
  const timers = new Map<number, { at: number; cb: () => void }>();
  return {
    now: () => now,
    setTimeout: (cb, ms) => {
      const id = ++next;
      timers.set(id, { at: now + ms, cb });
      return id;
    },
    clearTimeout: (h) => {
      timers.delete(h as number);
    },
    advance(ms) {
      now += ms;
      for (const [id, t] of [...timers].sort((a, b) => a[1].at - b[1].at)) {
        if (t.at <= now) {
          timers.delete(id);
          t.cb();
        }
      }
    },
    pending: () => timers.size,
  };
}

describe("WorkQueue", () => {
  it("dedupes queued keys and hands them out in order", async () => {
    const q = new WorkQueue<string>();
    for (const k of ["a", "b", "a", "c", "b"]) q.add(k);
    expect(q.length).toBe(3);
    expect([await q.get(), await q.get(), await q.get()]).toEqual(["a", "b", "c"]);
    expect(q.inFlight).toBe(3);
  });

  it("never hands a key in flight to a second worker, and requeues it on done", async () => {
    const q = new WorkQueue<string>();
    q.add("a");
    const key = await q.get();
    q.add("a");
    q.add("a");
    expect(q.length).toBe(0);
    expect(q.isDirty("a")).toBe(true);
    q.done(key as string);
    expect(q.length).toBe(1);
    expect(await q.get()).toBe("a");
    q.done("a");
    expect(q.length).toBe(0);
    expect(q.inFlight).toBe(0);
  });

  it("wakes a waiting worker on add", async () => {
    const q = new WorkQueue<string>();
    const got = q.get();
    q.add("x");
    expect(await got).toBe("x");
    expect(q.inFlight).toBe(1);
  });

  it("addAfter adds later; the earliest pending delay wins", () => {
    const timers = fakeTimers();
    const q = new WorkQueue<string>({ timers });
    q.addAfter("a", 100);
    q.addAfter("a", 500);
    q.addAfter("a", 50);
    expect(q.length).toBe(0);
    expect(q.delayed).toBe(1);
    timers.advance(49);
    expect(q.length).toBe(0);
    timers.advance(1);
    expect(q.length).toBe(1);
    expect(timers.pending()).toBe(0);
    q.addAfter("b", 0);
    expect(q.length).toBe(2);
  });

  it("backs off per key exponentially, capped, until forgotten", async () => {
    const timers = fakeTimers();
    const q = new WorkQueue<string>({ timers, baseDelayMs: 10, maxDelayMs: 35 });
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      q.addRateLimited("k");
      let waited = 0;
      while (q.length === 0 && waited < 1000) {
        timers.advance(1);
        waited++;
      }
      delays.push(waited);
      q.done((await q.get()) as string);
    }
    expect(delays).toEqual([10, 20, 35, 35]);
    expect(q.failures("k")).toBe(4);
    q.forget("k");
    expect(q.failures("k")).toBe(0);
  });

  it("shutDown hands out what is queued, then undefined, and refuses new keys", async () => {
    const timers = fakeTimers();
    const q = new WorkQueue<string>({ timers });
    const idle = q.get();
    q.add("a");
    expect(await idle).toBe("a");
    q.add("b");
    q.addAfter("c", 10);
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBe("b");
    q.add("d");
    timers.advance(20);
    expect(await q.get()).toBeUndefined();
    expect(q.length).toBe(0);
  });

  it("drain resolves once nothing is in flight", async () => {
    const q = new WorkQueue<string>();
    q.add("a");
    const k = await q.get();
    let drained = false;
    const d = q.drain().then(() => {
      drained = true;
    });
    await Promise.resolve();
    expect(drained).toBe(false);
    q.done(k as string);
    await d;
    expect(drained).toBe(true);
  });

  it("run processes every key once per add burst, retries failures, and stops on shutDown", async () => {
    const q = new WorkQueue<string>({ baseDelayMs: 1 });
    const seen: string[] = [];
    let failOnce = true;
    const errors: string[] = [];
    // Queued before the workers start, so the second "a" is deduplicated.
    for (const k of ["a", "b", "bad", "a", "c"]) q.add(k);
    const running = q.run(
      async (key) => {
        seen.push(key);
        if (key === "bad" && failOnce) {
          failOnce = false;
          throw new Error("boom");
        }
        await new Promise((r) => setTimeout(r, 1));
      },
      { concurrency: 3, onError: (key) => errors.push(key) },
    );
    while (seen.filter((k) => k === "bad").length < 2 || q.length > 0 || q.inFlight > 0) {
      await new Promise((r) => setTimeout(r, 2));
    }
    q.shutDown();
    await running;
    expect(seen.filter((k) => k === "a")).toHaveLength(1);
    expect(seen.filter((k) => k === "bad")).toHaveLength(2);
    expect(errors).toEqual(["bad"]);
    expect(q.failures("bad")).toBe(0);
  });

  it("never runs one key concurrently with itself", async () => {
    const q = new WorkQueue<number>();
    const active = new Set<number>();
    let overlaps = 0;
    let runs = 0;
    const running = q.run(
      async (key) => {
        if (active.has(key)) overlaps++;
        active.add(key);
        runs++;
        await new Promise((r) => setTimeout(r, Math.random() * 2));
        active.delete(key);
      },
      { concurrency: 8 },
    );
    for (let i = 0; i < 500; i++) {
      q.add(i % 5);
      if (i % 50 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await new Promise((r) => setTimeout(r, 5));
    while (q.length > 0 || q.inFlight > 0) await new Promise((r) => setTimeout(r, 2));
    q.shutDown();
    await running;
    expect(overlaps).toBe(0);
    expect(runs).toBeGreaterThanOrEqual(5);
    expect(runs).toBeLessThan(500);
  });
});
