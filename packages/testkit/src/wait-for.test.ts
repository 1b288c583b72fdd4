import { isEdgeplaneError } from "@edgeplane/core";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { delay, waitFor, withTimeout } from "./wait-for.js";

// Virtual time only: every test drives the timers with vi.advanceTimersByTimeAsync.
beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Attaches a handler at once, so a rejection is never "unhandled" while time is advanced. */
function settle<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

describe("waitFor(predicate)", () => {
  it("resolves with the first truthy value, polling every intervalMs", async () => {
    let calls = 0;
    const result = settle(
      waitFor(() => (++calls >= 3 ? `ready after ${calls}` : undefined), { intervalMs: 10 }),
    );
    await vi.advanceTimersByTimeAsync(25);
    expect(await result).toEqual({ value: "ready after 3" });
    expect(calls).toBe(3);
  });

  it("checks immediately: an already-true condition costs no time", async () => {
    expect(await waitFor(() => true)).toBe(true);
  });

  it("awaits async predicates", async () => {
    let ready = false;
    const result = settle(waitFor(async () => ready, { intervalMs: 10 }));
    await vi.advanceTimersByTimeAsync(30);
    ready = true;
    await vi.advanceTimersByTimeAsync(10);
    expect(await result).toEqual({ value: true });
  });

  it("treats a throwing predicate as not yet", async () => {
    let calls = 0;
    const result = settle(
      waitFor(
        () => {
          if (++calls < 3) throw new Error("not connected");
          return 7;
        },
        { intervalMs: 10 },
      ),
    );
    await vi.advanceTimersByTimeAsync(20);
    expect(await result).toEqual({ value: 7 });
  });

  it("fails with deadline_exceeded naming the message and the last error", async () => {
    const cause = new Error("connection refused");
    const result = settle(
      waitFor(
        () => {
          throw cause;
        },
        { timeoutMs: 100, intervalMs: 10, message: "redis to answer PING" },
      ),
    );
    await vi.advanceTimersByTimeAsync(100);
    const { error } = await result;
    expect(isEdgeplaneError(error)).toBe(true);
    expect(error).toMatchObject({
      code: "deadline_exceeded",
      message: "timed out after 100 ms waiting for redis to answer PING; last error: connection refused",
      cause,
    });
  });

  it("does not resolve at the deadline's edge and stops polling afterwards", async () => {
    let calls = 0;
    const result = settle(waitFor(() => ++calls > 1000, { timeoutMs: 50, intervalMs: 10 }));
    await vi.advanceTimersByTimeAsync(49);
    const before = calls;
    await vi.advanceTimersByTimeAsync(1);
    expect((await result).error).toMatchObject({ code: "deadline_exceeded" });
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toBeLessThanOrEqual(before + 1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("is cancelled by an AbortSignal", async () => {
    const controller = new AbortController();
    const result = settle(waitFor(() => false, { signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(30);
    controller.abort(new Error("test over"));
    expect((await result).error).toMatchObject({ code: "canceled" });
    expect(vi.getTimerCount()).toBe(0);
    const already = settle(waitFor(() => true, { signal: AbortSignal.abort() }));
    expect((await already).error).toMatchObject({ code: "canceled" });
  });
});

describe("waitFor(promise) and withTimeout", () => {
  it("passes a value or an error through and clears its timer", async () => {
    expect(await waitFor(Promise.resolve(5))).toBe(5);
    expect(await withTimeout(Promise.resolve("ok"), 100, "op")).toBe("ok");
    const boom = new Error("boom");
    expect((await settle(withTimeout(Promise.reject(boom), 100, "op"))).error).toBe(boom);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("rejects with deadline_exceeded when the promise is too slow", async () => {
    const never = new Promise<never>(() => {});
    const result = settle(withTimeout(never, 200, "GET after restart"));
    await vi.advanceTimersByTimeAsync(200);
    expect((await result).error).toMatchObject({
      code: "deadline_exceeded",
      message: "GET after restart did not finish within 200 ms",
    });
    const viaWaitFor = settle(waitFor(never, { timeoutMs: 10, message: "the reply" }));
    await vi.advanceTimersByTimeAsync(10);
    expect((await viaWaitFor).error).toMatchObject({ message: "the reply did not finish within 10 ms" });
  });

  it("is cancelled by an AbortSignal", async () => {
    const controller = new AbortController();
    const result = settle(withTimeout(new Promise(() => {}), 1000, "op", controller.signal));
    controller.abort();
    expect((await result).error).toMatchObject({ code: "canceled" });
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("delay", () => {
  it("resolves after ms, or rejects with canceled on abort", async () => {
    let done = false;
    const waited = delay(100).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(99);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await waited;
    expect(done).toBe(true);

    const controller = new AbortController();
    const aborted = settle(delay(100, controller.signal));
    controller.abort();
    expect((await aborted).error).toMatchObject({ code: "canceled" });
    expect(vi.getTimerCount()).toBe(0);
  });
});
