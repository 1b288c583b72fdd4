/**
 * Per-test clean-up for integration tests: what a test pushes runs after it, last first, and a
 * clean-up that fails does not fail the test (the next one still runs).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";

/** What runs after the current test, last pushed first. */
export type Cleanups = Array<() => unknown>;

/** Registers the `afterEach` that empties the returned list; call once, at a file's top level. */
export function useCleanups(): Cleanups {
  const cleanups: Cleanups = [];
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      await Promise.resolve()
        .then(fn)
        .catch(() => {});
    }
  });
  return cleanups;
}

/** A fresh directory under the OS temp dir, removed after the test. */
export async function tempDir(cleanups: Cleanups, prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(d, { recursive: true, force: true }));
  return d;
}
