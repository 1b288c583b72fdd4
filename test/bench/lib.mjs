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
 * Re-runs benchmark `name` with `args` in a child `node <flags>` and returns the child's result:
 * the JSON on its last stdout line. Earlier stdout lines are passed on to stderr.
 */
export function respawnWith(name, args, flags) {
  const runner = join(dirname(fileURLToPath(import.meta.url)), "run.mjs");
  const child = spawnSync(process.execPath, [...flags, runner, name, ...args], {
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

/** {@link respawnWith} `--expose-gc` (for benchmarks that force GC between phases). */
export function respawnWithGc(name, args) {
  return respawnWith(name, args, ["--expose-gc"]);
}

/**
 * The flags of a process simulating a fleet (10,000 agents: fanout, rolling). Its heap holds
 * every agent, and a full collection of it marks on a second thread for about a second; on a
 * 2-core machine that takes the core the processes under measurement run on, and the samples of
 * that second land in the tail. A large initial old space keeps the simulator's full collections
 * out of the run (it still collects its young generation). The control plane runs as it does in
 * production.
 */
export const FLEET_FLAGS = ["--initial-old-space-size=2048"];

/** Whether this process runs with {@link FLEET_FLAGS}. */
export function hasFleetFlags() {
  return FLEET_FLAGS.every((f) => process.execArgv.includes(f));
}
