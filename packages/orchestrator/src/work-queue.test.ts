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

  it("takeMany hands out waiting keys from the head while accepted, as if by get", async () => {
    const q = new WorkQueue<string>();
    for (const k of ["n1", "n2", "n3", "j1", "n4"]) q.add(k);
    const isNode = (k: string) => k.startsWith("n");
    expect(q.takeMany(2, isNode)).toEqual(["n1", "n2"]);
    expect(q.takeMany(10, isNode)).toEqual(["n3"]);
    expect(q.takeMany(10, isNode)).toEqual([]);
    expect(q.length).toBe(2);
    expect(q.inFlight).toBe(3);
    q.add("n1");
    expect(q.length).toBe(2);
    q.done("n1");
    expect(await q.get()).toBe("j1");
    expect(q.takeMany(10)).toEqual(["n4", "n1"]);
    expect(q.takeMany(10)).toEqual([]);
  });

  it("runBatched groups batchable keys, runs others alone, and retries only the keys that failed", async () => {
    const q = new WorkQueue<string>({ baseDelayMs: 1 });
    const calls: string[][] = [];
    const errors: string[] = [];
    let failN3 = true;
    let failJob = true;
    for (const k of ["n1", "n2", "n3", "j1", "n4", "n5", "n6"]) q.add(k);
    const running = q.runBatched(
      async (keys) => {
        calls.push([...keys]);
        await new Promise((r) => setTimeout(r, 1));
        if (keys.includes("j1") && failJob) {
          failJob = false;
          throw new Error("job failed");
        }
        if (keys.includes("n3") && failN3) {
          failN3 = false;
          return new Map([["n3", new Error("n3 failed")]]);
        }
        return undefined;
      },
      {
        concurrency: 1,
        maxBatch: 2,
        batchable: (k) => k.startsWith("n"),
        onError: (k) => errors.push(k),
      },
    );
    while (calls.flat().filter((k) => k === "n3" || k === "j1").length < 4 || q.length > 0 || q.inFlight > 0)
      await new Promise((r) => setTimeout(r, 2));
    q.shutDown();
    await running;
    // A batch stops at the first key that is not batchable; the retries join later batches.
    expect(calls.slice(0, 4)).toEqual([["n1", "n2"], ["n3"], ["j1"], ["n4", "n5"]]);
    expect(calls.every((c) => c.length <= 2 && (c.length === 1 || c.every((k) => k.startsWith("n"))))).toBe(
      true,
    );
    const count = (k: string) => calls.flat().filter((x) => x === k).length;
    expect(["n1", "n2", "n3", "j1", "n4", "n5", "n6"].map(count)).toEqual([1, 1, 2, 2, 1, 1, 1]);
    expect(errors).toEqual(["n3", "j1"]);
    expect(q.failures("n3")).toBe(0);
    expect(q.failures("n1")).toBe(0);
  });
});
