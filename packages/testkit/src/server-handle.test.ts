import { describe, expect, it } from "vitest";
import { natsUrlFromEnv, redisUrlFromEnv } from "./external.js";
import { isCompleteRespReply } from "./probes.js";
import { createExternalServer, parseServerUrl } from "./server-handle.js";

describe("parseServerUrl", () => {
  it.each([
    ["redis", "redis://127.0.0.1:7000", "127.0.0.1", 7000],
    ["redis", "redis://:secret@cache.internal/2", "cache.internal", 6379],
    ["redis", "rediss://user:pw@[::1]:6380", "::1", 6380],
    ["redis", "localhost:7001", "localhost", 7001],
    ["nats", "nats://10.0.0.1", "10.0.0.1", 4222],
    ["nats", "nats://a:4223, nats://b:4224", "a", 4223],
    ["nats", "tls://n1.example:4443", "n1.example", 4443],
  ] as const)("%s %s → %s:%d", (kind, url, host, port) => {
    expect(parseServerUrl(kind, url)).toEqual({ host, port });
  });

  it("rejects what is not a URL", () => {
    expect(() => parseServerUrl("redis", "redis://")).toThrow(
      expect.objectContaining({ code: "invalid_argument" }),
    );
    expect(() => parseServerUrl("nats", "nats://a b")).toThrow(
      expect.objectContaining({ code: "invalid_argument" }),
    );
  });
});

describe("createExternalServer", () => {
  const server = createExternalServer("redis", "redis://10.1.2.3:7000", "REDIS_URL");

  it("describes the server and is never killed, restarted or paused", async () => {
    expect(server).toMatchObject({
      kind: "redis",
      external: true,
      host: "10.1.2.3",
      port: 7000,
      running: true,
    });
    expect(server.pid).toBeUndefined();
    const refusal = { code: "failed_precondition", message: expect.stringContaining("unset REDIS_URL") };
    await expect(server.kill()).rejects.toMatchObject(refusal);
    await expect(server.restart()).rejects.toMatchObject(refusal);
    await expect(server.pause()).rejects.toMatchObject(refusal);
    await expect(server.resume()).rejects.toMatchObject(refusal);
    await expect(server.stop()).resolves.toBeUndefined();
    expect(server.logs()).toContain("not available");
  });
});

describe("redisUrlFromEnv / natsUrlFromEnv", () => {
  it("read the variables, ignoring blank values", () => {
    expect(redisUrlFromEnv({ REDIS_URL: " redis://h:1 " })).toBe("redis://h:1");
    expect(redisUrlFromEnv({ REDIS_URL: "  " })).toBeUndefined();
    expect(redisUrlFromEnv({})).toBeUndefined();
    expect(natsUrlFromEnv({ NATS_URL: "nats://h:2" })).toBe("nats://h:2");
    expect(natsUrlFromEnv({ NATS_URL: "" })).toBeUndefined();
  });
});

describe("isCompleteRespReply", () => {
  it.each([
    ["+PONG\r\n", true],
    ["+PON", false],
    ["-LOADING Redis is loading the dataset in memory\r\n", true],
    [":42\r\n", true],
    ["$5\r\nhello\r\n", true],
    ["$5\r\nhel", false],
    ["$5\r\nhello", false],
    ["$-1\r\n", true],
    ["$", false],
  ])("%j → %s", (reply, complete) => {
    expect(isCompleteRespReply(Buffer.from(reply))).toBe(complete);
  });
});
