/**
 * Argument parsing shared by every `edgectl` command (node:util parseArgs, strict: an unknown
 * flag is an error naming it).
 */
import { type ParseArgsConfig, parseArgs } from "node:util";
import { EdgeplaneError } from "@edgeplane/core";

/** Flag definitions of one command. */
export type Flags = NonNullable<ParseArgsConfig["options"]>;

/** Parses `argv` of one command; throws invalid_argument with the parser's message on a bad flag. */
export function parseFlags<F extends Flags>(
  command: string,
  argv: readonly string[],
  flags: F,
): ReturnType<typeof parseArgs<{ args: string[]; options: F; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args: [...argv], options: flags, allowPositionals: true, strict: true });
  } catch (err) {
    throw new EdgeplaneError(
      "invalid_argument",
      `edgectl ${command}: ${(err as Error).message}; see edgectl ${command} --help`,
    );
  }
}

/** The gRPC address of the control plane: --server, else $EDGEPLANE_SERVER, else 127.0.0.1:50051. */
export function serverAddress(flag: string | undefined): string {
  return flag ?? process.env.EDGEPLANE_SERVER ?? "127.0.0.1:50051";
}

/** A non-negative integer flag (`--limit 50`); undefined when absent, invalid_argument otherwise. */
export function intFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value))
    throw new EdgeplaneError("invalid_argument", `--${name}: must be a non-negative integer`);
  return Number(value);
}
