import { once } from "node:events";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { LogBuffer } from "./log-buffer.js";

describe("LogBuffer", () => {
  it("splits chunks into lines, joining partial lines across chunks and streams", async () => {
    const log = new LogBuffer();
    const out = new PassThrough();
    const err = new PassThrough();
    log.attach(out);
    log.attach(err);
    out.write("Ready to ");
    err.write("warn: one\r\n");
    out.write("accept connections\nsecond");
    out.end();
    await once(out, "end"); // the unterminated last line is flushed at end
    expect(log.tail()).toBe("warn: one\nReady to accept connections\nsecond");
  });

  it("keeps only the last `capacity` lines, and since(mark) returns what came after", () => {
    const log = new LogBuffer(3);
    log.push("a");
    const mark = log.mark();
    for (const line of ["b", "c", "d", "e"]) log.push(line);
    expect(log.tail()).toBe("c\nd\ne");
    expect(log.since(mark)).toEqual(["c", "d", "e"]);
    expect(log.since(log.mark())).toEqual([]);
    expect(log.tail(2)).toBe("d\ne");
  });
});
