// Helpers the benchmarks share (not a benchmark: run.mjs only runs `*.bench.mjs`).
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** A logger that drops everything (the shape of @edgeplane/core's Logger). */
export const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

/** `x` rounded to `digits` decimals. */
export function round(x, digits = 3) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1), so every run measures the same data. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Re-runs benchmark `name` with `args` in a child `node --expose-gc` (for benchmarks that force
 * GC between phases) and returns the child's result: the JSON on its last stdout line. Earlier
 * stdout lines are passed on to stderr.
 */
export function respawnWithGc(name, args) {
  const runner = join(dirname(fileURLToPath(import.meta.url)), "run.mjs");
  const child = spawnSync(process.execPath, ["--expose-gc", runner, name, ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 64 * 1024 * 1024,
  });
  const lines = (child.stdout ?? "").trim().split("\n");
  const last = lines.pop() ?? "";
  if (lines.length > 0) process.stderr.write(`${lines.join("\n")}\n`);
  if (child.status !== 0 || !last.startsWith("{")) {
    throw new Error(`${name} benchmark child failed (status ${child.status}): ${last}`);
  }
  return JSON.parse(last);
}
