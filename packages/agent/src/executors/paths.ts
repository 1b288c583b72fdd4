/**
 * A small, safe glob for pipeline file paths (node:fs has no glob in Node 20), and the agent.yaml
 * path allow lists.
 *
 * - Job paths are absolute; `*` matches any characters within one path segment and `?` one
 *   character; neither matches a leading `.` (hidden files need a pattern starting with `.`).
 *   No `**`, no brace or bracket sets: everything else is literal.
 * - Allow-list entries (`allowed_input_paths`, `allowed_output_paths`) are absolute paths or globs
 *   that may also use `**` (any number of segments). An entry allows what it matches and
 *   everything under it: `/var/log/app` allows `/var/log/app/x.log` and `/var/log/app/a/b.log`.
 */
import { readdir, stat } from "node:fs/promises";

/** Whether a path segment holds a glob character. */
export function hasGlob(segment: string): boolean {
  return segment.includes("*") || segment.includes("?");
}

const segmentCache = new Map<string, RegExp>();

function segmentRegExp(pattern: string): RegExp {
  let re = segmentCache.get(pattern);
  if (!re) {
    let src = "^";
    for (const ch of pattern) {
      if (ch === "*") src += "[^/]*";
      else if (ch === "?") src += "[^/]";
      else src += ch.replace(/[.+^${}()|[\]\\]/g, "\\$&");
    }
    re = new RegExp(`${src}$`, "s");
    if (segmentCache.size > 1000) segmentCache.clear();
    segmentCache.set(pattern, re);
  }
  return re;
}

/** Whether file name `name` matches one glob segment (a leading `.` only by a leading `.`). */
export function matchSegment(pattern: string, name: string): boolean {
  if (!hasGlob(pattern)) return pattern === name;
  if (name.startsWith(".") && !pattern.startsWith(".")) return false;
  return segmentRegExp(pattern).test(name);
}

function split(path: string): string[] {
  return path.split("/").filter((s) => s !== "");
}

function matchFrom(p: readonly string[], pi: number, s: readonly string[], si: number): boolean {
  if (pi === p.length) return si === s.length;
  const seg = p[pi] as string;
  if (seg === "**") {
    for (let k = si; k <= s.length; k++) if (matchFrom(p, pi + 1, s, k)) return true;
    return false;
  }
  if (si === s.length) return false;
  return matchSegment(seg, s[si] as string) && matchFrom(p, pi + 1, s, si + 1);
}

/** Whether absolute `path` matches glob `pattern` (`*`, `?`, and `**` for any number of segments). */
export function matchGlob(pattern: string, path: string): boolean {
  return matchFrom(split(pattern), 0, split(path), 0);
}

/** Whether allow-list `entries` allow absolute `path` (an entry allows what it matches and what is under it). */
export function pathAllowed(entries: readonly string[], path: string): boolean {
  return entries.some((e) => matchGlob(`${e === "/" ? "" : e}/**`, path));
}

function within(p: readonly string[], pi: number, a: readonly string[], ai: number): boolean {
  if (ai === a.length) return true; // everything under what the entry matches is allowed
  if (pi === p.length) return false; // the job's pattern stops above the allowed paths
  const seg = a[ai] as string;
  if (seg === "**") return within(p, pi, a, ai + 1) || within(p, pi + 1, a, ai);
  const ps = p[pi] as string;
  if (!hasGlob(ps)) return matchSegment(seg, ps) && within(p, pi + 1, a, ai + 1);
  // A glob segment of the job is covered only by "*" or by the very same glob.
  const covered = seg === ps || (seg === "*" && !ps.startsWith("."));
  return covered && within(p, pi + 1, a, ai + 1);
}

/**
 * Whether every path job glob `pattern` can match is allowed by `entries` (conservative: a glob
 * segment of the job is covered only by `*`, `**` or the same glob in an entry).
 */
export function patternAllowed(entries: readonly string[], pattern: string): boolean {
  const p = split(pattern);
  return entries.some((e) => within(p, 0, split(e), 0));
}

/** The directory part of a glob before its first glob segment (`/var/log/app` for `/var/log/app/*.log`). */
export function literalDir(pattern: string): string {
  const segs = split(pattern);
  const firstGlob = segs.findIndex(hasGlob);
  const dirSegs = firstGlob === -1 ? segs.slice(0, -1) : segs.slice(0, firstGlob);
  return `/${dirSegs.join("/")}`;
}

/**
 * The regular files matching absolute glob `pattern`, sorted, at most `limit` of them. Directories
 * that cannot be read are skipped (a file input keeps waiting for them to appear).
 */
export async function expandGlob(pattern: string, limit = 1024): Promise<string[]> {
  const segs = split(pattern);
  let dirs: string[] = [""];
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i] as string;
    const next: string[] = [];
    for (const dir of dirs) {
      if (!hasGlob(seg)) {
        next.push(`${dir}/${seg}`);
        continue;
      }
      let names: string[];
      try {
        names = await readdir(dir === "" ? "/" : dir);
      } catch {
        continue;
      }
      for (const name of names.sort()) if (matchSegment(seg, name)) next.push(`${dir}/${name}`);
      if (next.length > limit * 4) break; // a pathological pattern: stop widening
    }
    dirs = next;
  }
  const files: string[] = [];
  for (const candidate of dirs) {
    if (files.length >= limit) break;
    try {
      if ((await stat(candidate)).isFile()) files.push(candidate);
    } catch {
      // gone, or not there yet
    }
  }
  return files.sort();
}
