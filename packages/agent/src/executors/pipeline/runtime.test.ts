import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { HealthWindows, windowHealth } from "./health.js";
import { decodeDataMessage, GenerateInput } from "./inputs.js";
import { DiscardOutput, jsonLine, StreamOutput } from "./outputs.js";
import { compileProcessors, jsonataTruthy } from "./processors.js";
import {
  type Message,
  MessageError,
  type PipelineInput,
  type PipelineOutput,
  PipelineRuntime,
} from "./runtime.js";

/** An input of fixed batches. */
function batches(...list: Message[][]): PipelineInput & { nextCalls: number } {
  const queue = [...list];
  return {
    nextCalls: 0,
    async open() {},
    async next() {
      this.nextCalls++;
      return queue.shift();
    },
    async close() {},
  };
}

/** An output that records what it gets; `slow` makes each batch's flush take that long. */
function recorder(slowMs = 0): PipelineOutput & { messages: Message[]; flushes: number } {
  return {
    messages: [],
    flushes: 0,
    async open() {},
    write(m) {
      if (m === "unwritable") throw new MessageError("cannot write that");
      this.messages.push(m);
    },
    async flush() {
      this.flushes++;
      if (slowMs > 0) await new Promise((r) => setTimeout(r, slowMs));
    },
    async close() {},
  };
}

const processors = (...p: Array<{ mapping: string } | { filter: string }>) =>
  compileProcessors(
    p.map((x) =>
      "mapping" in x ? { kind: "mapping", expression: x.mapping } : { kind: "filter", expression: x.filter },
    ),
  );

describe("PipelineRuntime", () => {
  it("maps, filters and counts; an erroring message is dropped and the pipeline goes on", async () => {
    const errors: string[] = [];
    const out = recorder();
    const rt = new PipelineRuntime({
      input: batches(
        [
          { n: 1, level: "info" },
          { n: 2, level: "debug" },
        ],
        [{ n: 3, level: "info", fail: true }, { n: 4, level: "info" }, { skip: true }],
      ),
      processors: processors(
        { filter: 'level != "debug"' },
        { mapping: 'fail ? $error("boom") : skip ? undefined : {"n": n * 10}' },
      ),
      output: out,
      onMessageError: (where, err) => errors.push(`${where}: ${(err as { message: string }).message}`),
    });
    expect(await rt.run(new AbortController().signal)).toBe("exhausted");
    expect(out.messages).toEqual([{ n: 10 }, { n: 40 }]);
    expect(rt.counters).toEqual({ in: 5, out: 2, filtered: 2, errored: 1 });
    expect(errors).toEqual(["processors[1] (mapping): boom"]);
    expect(out.flushes).toBe(2);
  });

  it("counts a message the output refuses as errored, and stops on an output failure", async () => {
    const out = recorder();
    const rt = new PipelineRuntime({ input: batches(["unwritable", "ok"]), processors: [], output: out });
    await rt.run(new AbortController().signal);
    expect(rt.counters).toEqual({ in: 2, out: 1, filtered: 0, errored: 1 });

    const broken: PipelineOutput = { ...recorder(), write: () => Promise.reject(new Error("disk full")) };
    const rt2 = new PipelineRuntime({ input: batches([1]), processors: [], output: broken });
    await expect(rt2.run(new AbortController().signal)).rejects.toThrow("disk full");
  });

  it("counts what an input dropped as in and errored", async () => {
    const input = { ...batches([1]), takeDropped: () => 4 };
    const rt = new PipelineRuntime({ input, processors: [], output: new DiscardOutput() });
    await rt.run(new AbortController().signal);
    expect(rt.counters).toMatchObject({ in: 1 + 4 + 4, errored: 8 });
  });

  it("pulls the next batch only after the previous one was written (backpressure)", async () => {
    const input = batches([1, 2], [3], [4]);
    const out = recorder(30);
    const rt = new PipelineRuntime({ input, processors: [], output: out });
    const run = rt.run(new AbortController().signal);
    await new Promise((r) => setTimeout(r, 10));
    expect(input.nextCalls).toBe(1); // the first batch's flush is still going
    await run;
    expect(input.nextCalls).toBe(4);
  });

  it("stops when its signal aborts", async () => {
    const controller = new AbortController();
    const input: PipelineInput = {
      async open() {},
      next: (signal) =>
        new Promise((resolve) => signal.addEventListener("abort", () => resolve(undefined), { once: true })),
      async close() {},
    };
    const rt = new PipelineRuntime({ input, processors: [], output: new DiscardOutput() });
    const run = rt.run(controller.signal);
    controller.abort();
    expect(await run).toBe("stopped");
  });
});

describe("GenerateInput", () => {
  it("emits batches every interval with a sequence field, up to count", async () => {
    const input = new GenerateInput({
      intervalMs: 5,
      message: { metric: "cpu" },
      count: 5,
      batchSize: 2,
      seqField: "seq",
      maxBuffer: 1000,
      clock: { now: () => Date.now() },
    });
    const got: Message[][] = [];
    const signal = new AbortController().signal;
    for (let b = await input.next(signal); b; b = await input.next(signal)) got.push([...b]);
    expect(got).toEqual([
      [
        { metric: "cpu", seq: 1 },
        { metric: "cpu", seq: 2 },
      ],
      [
        { metric: "cpu", seq: 3 },
        { metric: "cpu", seq: 4 },
      ],
      [{ metric: "cpu", seq: 5 }],
    ]);
  });

  it("splits a tick larger than max_buffer, and hands out a frozen copy of the message", async () => {
    const message = { a: 1 };
    const input = new GenerateInput({
      intervalMs: 1000,
      message,
      count: undefined,
      batchSize: 5,
      seqField: undefined,
      maxBuffer: 2,
      clock: { now: () => Date.now() },
    });
    const signal = new AbortController().signal;
    const sizes = [];
    for (let i = 0; i < 3; i++) sizes.push((await input.next(signal))?.length);
    expect(sizes).toEqual([2, 2, 1]);
    const b = await Promise.race([
      input.next(signal),
      new Promise((r) => setTimeout(() => r("waiting"), 50)),
    ]);
    expect(b).toBe("waiting"); // the next tick is a second away
    const [first] =
      (await new GenerateInput({
        ...input,
        intervalMs: 1,
        message,
        count: 1,
        batchSize: 1,
        seqField: undefined,
        maxBuffer: 1,
        clock: { now: () => Date.now() },
      }).next(signal)) ?? [];
    expect(first).toEqual(message);
    expect(first).not.toBe(message);
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(message)).toBe(false);
  });
});

describe("health windows", () => {
  it.each([
    [0, 0, 0.1, true, 0],
    [200, 12, 0.1, true, 0.06],
    [180, 27, 0.1, false, 0.15],
    [10, 1, 0.1, true, 0.1],
    [50, 50, 0.1, false, 1],
    [10, 1, 0, false, 0.1],
  ])("in %d, errored %d, max %d → healthy %s, rate %d", (inn, err, max, healthy, rate) => {
    const h = windowHealth(inn, err, max);
    expect(h.healthy).toBe(healthy);
    expect(h.errorRate).toBeCloseTo(rate);
  });

  it("rolls over running counters and says when health flips", () => {
    const w = new HealthWindows(0.1);
    expect(w.current).toEqual({ healthy: true, errorRate: 0 });
    expect(w.roll({ in: 200, errored: 12 })).toMatchObject({
      healthy: true,
      flipped: false,
      in: 200,
      errored: 12,
    });
    expect(w.roll({ in: 380, errored: 39 })).toMatchObject({
      healthy: false,
      flipped: true,
      errorRate: 0.15,
    });
    expect(w.roll({ in: 380, errored: 39 })).toMatchObject({ healthy: true, flipped: true, errorRate: 0 });
  });
});

describe("processors and codecs", () => {
  it("follows JSONata's $boolean for filters", () => {
    for (const v of [true, 1, "x", [0, 1], { a: 1 }]) expect(jsonataTruthy(v)).toBe(true);
    for (const v of [false, 0, "", [], [0, ""], {}, null, undefined, () => 1])
      expect(jsonataTruthy(v)).toBe(false);
  });

  it("writes JSON lines and refuses what has no JSON form", async () => {
    expect(jsonLine({ a: 1 })).toBe('{"a":1}\n');
    expect(() => jsonLine(() => 1)).toThrow(MessageError);
    const big: Record<string, unknown> = {};
    big.self = big;
    expect(() => jsonLine(big)).toThrow(MessageError);
    const stream = new PassThrough();
    const chunks: string[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c.toString()));
    const out = new StreamOutput(stream);
    out.write({ a: 1 });
    out.write({ b: 2 });
    await out.flush();
    expect(chunks.join("")).toBe('{"a":1}\n{"b":2}\n');
    expect(decodeDataMessage(new TextEncoder().encode('{"x":1}'))).toEqual({ x: 1 });
    expect(decodeDataMessage(new TextEncoder().encode("plain"))).toEqual({ data: "plain" });
  });
});
