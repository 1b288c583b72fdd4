/** Output of `edgectl`: tables for people, JSON and YAML for scripts. */

import { EdgeplaneError } from "@edgeplane/core";
import { stringify } from "yaml";

/** Output formats. */
export type OutputFormat = "text" | "json" | "yaml";

/** Validates `-o`. */
export function outputFormat(value: string | undefined): OutputFormat {
  const v = value ?? "text";
  if (v !== "text" && v !== "json" && v !== "yaml") {
    throw new EdgeplaneError("invalid_argument", `-o: "${v}" is not one of text, json, yaml`, {
      details: [{ field: "output", description: "must be text, json or yaml" }],
    });
  }
  return v;
}

/** Writes a value as JSON or YAML. */
export function printData(value: unknown, format: "json" | "yaml"): void {
  process.stdout.write(format === "json" ? `${JSON.stringify(value, null, 2)}\n` : stringify(value));
}

/** Renders rows as an aligned table with a header. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join("\n")}\n`;
}

/** "3m ago", "2h ago", or the date, for tables. */
export function ago(iso: string | undefined, now = Date.now()): string {
  if (!iso) return "";
  const ms = now - Date.parse(iso);
  if (!Number.isFinite(ms)) return iso;
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return iso.slice(0, 10);
}

/**
 * The exact command for the next page of a list: the same arguments with `--next-token` replaced,
 * quoted for a POSIX shell. `command` is what precedes the arguments (`job list`).
 */
export function nextPageCommand(command: string, argv: readonly string[], token: string): string {
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--next-token") i++;
    else if (!argv[i]?.startsWith("--next-token=")) kept.push(argv[i] as string);
  }
  const quoted = kept.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`));
  return `edgectl ${command} ${[...quoted, "--next-token", token].join(" ")}`;
}
