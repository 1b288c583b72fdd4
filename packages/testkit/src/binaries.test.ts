import { dirname } from "node:path";
import { describe, expect, it } from "vitest";
import { INSTALL_HINT, resolveBinary } from "./binaries.js";

describe("resolveBinary", () => {
  it("finds an executable on the given PATH, or by path", () => {
    const node = process.execPath;
    expect(resolveBinary(node)).toBe(node);
    expect(resolveBinary(node.slice(node.lastIndexOf("/") + 1), `/nonexistent:${dirname(node)}`)).toBe(node);
  });

  it("fails with failed_precondition naming the apt-get command", () => {
    expect(INSTALL_HINT).toBe("apt-get install -y nats-server redis-server");
    expect(() => resolveBinary("redis-server", "/nonexistent")).toThrow(
      expect.objectContaining({
        code: "failed_precondition",
        message:
          "redis-server not found on PATH: install it with `apt-get install -y nats-server redis-server`",
      }),
    );
    expect(() => resolveBinary("/nonexistent/nats-server")).toThrow(/not found: install it with `apt-get/);
  });
});
