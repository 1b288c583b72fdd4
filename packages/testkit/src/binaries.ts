/**
 * Finding `redis-server` / `nats-server` before spawning them, so a missing binary fails with
 * the command that installs it rather than a bare `spawn ENOENT`.
 */
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";
import { EdgeplaneError } from "@edgeplane/core";

/** The command that installs both servers on Debian/Ubuntu, quoted in every "not found" error. */
export const INSTALL_HINT = "apt-get install -y nats-server redis-server";

/**
 * Resolves `binary` (a bare name looked up on `PATH`, or a path) to an executable file.
 *
 * @throws EdgeplaneError `failed_precondition` naming {@link INSTALL_HINT} when it is missing.
 */
export function resolveBinary(binary: string, path: string = process.env.PATH ?? ""): string {
  const candidates = binary.includes("/")
    ? [isAbsolute(binary) ? binary : resolve(binary)]
    : path
        .split(delimiter)
        .filter((dir) => dir !== "")
        .map((dir) => join(dir, binary));
  for (const candidate of candidates) {
    if (isExecutableFile(candidate)) return candidate;
  }
  throw binaryNotFound(binary);
}

/** The error for a missing server binary. */
export function binaryNotFound(binary: string, cause?: unknown): EdgeplaneError {
  const where = binary.includes("/") ? "" : " on PATH";
  return new EdgeplaneError(
    "failed_precondition",
    `${binary} not found${where}: install it with \`${INSTALL_HINT}\``,
    {
      cause,
    },
  );
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
