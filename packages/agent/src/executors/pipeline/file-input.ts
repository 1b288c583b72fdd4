/**
 * The `file` input: tails the files its globs match, and survives rotation.
 *
 * - **Start**: files that exist when the pipeline starts are read from their end (only new lines);
 *   files that appear later are read from their start. After an agent restart the execution
 *   resumes from the offsets it saved: the same file (device and inode) from its offset, files
 *   that appeared meanwhile from their start.
 * - **Polling**: every `pollIntervalMs` (250 ms) each file is read from its offset; the globs are
 *   expanded again every `scanIntervalMs` (1 s) to find new files.
 * - **Rotation by rename** (`app.log` → `app.log.1`, new `app.log`): the path now names another
 *   inode. The old file stays open and is read until it has been quiet for `rotateWaitMs` (5 s:
 *   writers that reopen late lose nothing), the new file is read from its start.
 * - **copytruncate** (the file shrinks under its offset): read again from the start.
 * - **Lines**: one message per non-empty line; a line that is a JSON object is that object, any
 *   other line is `{"line": "...", "path": "..."}`. Lines longer than `maxLineBytes` (1 MiB) are cut.
 * - **Offsets** of what the pipeline has fully processed are saved in the execution's directory
 *   at most once a second and on stop (at-least-once across agent restarts).
 * - **Security**: the job's globs are checked against `allowed_input_paths` before anything is
 *   opened, and every file's real path (symlinks resolved) again before it is read.
 *
 * Known limit (as for every polling tailer): a file truncated and refilled beyond its old offset
 * between two polls is not seen as truncated.
 */
import type { FileHandle } from "node:fs/promises";
import { open, readFile, realpath, stat } from "node:fs/promises";
import { sleep } from "../../backoff.js";
import { writeFileAtomic } from "../../state-file.js";
import { expandGlob, literalDir, pathAllowed } from "../paths.js";
import type { Message, PipelineInput } from "./runtime.js";

/** Options of {@link FileInput}. */
export interface FileInputOptions {
  /** Absolute globs (already checked against `allowed`). */
  readonly paths: readonly string[];
  /** agent.yaml `allowed_input_paths`: checked again on each file's real path. */
  readonly allowed: readonly string[];
  /** The largest batch. */
  readonly maxBuffer: number;
  /** Where offsets are saved (the execution's directory); none when absent. */
  readonly offsetsFile?: string;
  readonly pollIntervalMs?: number;
  readonly scanIntervalMs?: number;
  readonly rotateWaitMs?: number;
  readonly maxLineBytes?: number;
  readonly maxFiles?: number;
  /** Execution log lines (rotation, skipped files). */
  readonly log?: (level: "INFO" | "WARN", text: string) => void;
  readonly now?: () => number;
}

const CHUNK = 64 * 1024;
const NEWLINE = 0x0a;
const OFFSETS_FORMAT = 1;

interface Line {
  readonly message: Message;
  /** The file offset just after this line. */
  readonly end: number;
}

interface Tracked {
  readonly path: string;
  readonly key: string;
  readonly fh: FileHandle;
  /** Read up to here. */
  pos: number;
  /** Fully processed up to here (saved as the offset). */
  committed: number;
  partial: Buffer[];
  partialLen: number;
  skipping: boolean;
  /** Lines read but not handed out yet (a chunk held more than one batch). */
  backlog: Line[];
  /** Set once the path names another file: read until quiet, then close. */
  rotatedAt: number | undefined;
  lastDataAt: number;
}

interface SavedOffset {
  readonly path: string;
  readonly key: string;
  readonly pos: number;
}

function fileKey(s: { dev: number; ino: number }): string {
  return `${s.dev}:${s.ino}`;
}

/** A line as a message: a JSON object when it is one, else `{line, path}`. */
export function lineMessage(line: string, path: string): Message {
  if (line.charCodeAt(0) === 0x7b) {
    try {
      const v: unknown = JSON.parse(line);
      if (v !== null && typeof v === "object" && !Array.isArray(v)) return v;
    } catch {
      // not JSON after all
    }
  }
  return { line, path };
}

/** The `file` input. */
export class FileInput implements PipelineInput {
  readonly #o: FileInputOptions;
  readonly #now: () => number;
  readonly #files: Tracked[] = [];
  /** Offsets of files read before (closed after rotation, or saved before a restart), by dev:ino. */
  readonly #known = new Map<string, number>();
  readonly #warned = new Set<string>();
  readonly #buf = Buffer.allocUnsafe(CHUNK);
  #nextScan = 0;
  #rr = 0;
  #handedOut: Array<{ file: Tracked; end: number }> = [];
  #lastSave = 0;
  #dirty = false;
  #closed = false;

  constructor(options: FileInputOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  async open(): Promise<void> {
    for (const [i, p] of this.#o.paths.entries()) {
      const dir = literalDir(p);
      let ok = false;
      try {
        ok = (await stat(dir)).isDirectory();
      } catch {
        ok = false;
      }
      if (!ok) {
        throw new Error(
          `input.file.paths[${i}]: directory ${dir} of ${JSON.stringify(p)} does not exist on this node`,
        );
      }
    }
    // After an agent restart (saved offsets): known files resume at their offset, files that
    // appeared meanwhile are read from the start. A first start reads existing files from the end.
    const saved = await this.#loadOffsets();
    await this.#scan(saved ?? new Map(), saved === undefined ? "end" : "start");
    if (this.#files.length === 0) {
      this.#o.log?.("INFO", `no file matches ${this.#o.paths.join(", ")} yet; waiting for one to appear`);
    }
  }

  async next(signal: AbortSignal): Promise<readonly Message[] | undefined> {
    for (const h of this.#handedOut) {
      h.file.committed = h.end;
      this.#dirty = true;
    }
    this.#handedOut = [];
    await this.#maybeSave(false);
    for (;;) {
      if (signal.aborted || this.#closed) return undefined;
      if (this.#now() >= this.#nextScan) await this.#scan(new Map(), "start");
      const count = this.#files.length;
      for (let k = 0; k < count; k++) {
        const idx = (this.#rr + k) % count;
        const file = this.#files[idx];
        if (!file) continue;
        if (file.backlog.length === 0) {
          try {
            await this.#poll(file);
          } catch (err) {
            if (this.#closed) return undefined;
            this.#drop(file, err);
            continue;
          }
        }
        if (file.backlog.length > 0) {
          this.#rr = idx + 1;
          const lines = file.backlog.splice(0, this.#o.maxBuffer);
          this.#handedOut.push({ file, end: (lines.at(-1) as Line).end });
          return lines.map((l) => l.message);
        }
      }
      this.#reap();
      await sleep(this.#o.pollIntervalMs ?? 250, signal);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#maybeSave(true).catch(() => {});
    await Promise.allSettled(this.#files.map((f) => f.fh.close()));
    this.#files.length = 0;
  }

  // ---------------------------------------------------------------- discovery

  async #scan(saved: ReadonlyMap<string, SavedOffset>, from: "end" | "start"): Promise<void> {
    this.#nextScan = this.#now() + (this.#o.scanIntervalMs ?? 1000);
    const maxFiles = this.#o.maxFiles ?? 256;
    const seen = new Set<string>();
    for (const pattern of this.#o.paths) {
      for (const path of await expandGlob(pattern, maxFiles)) {
        if (seen.has(path)) continue;
        seen.add(path);
        if (this.#files.some((f) => f.path === path && f.rotatedAt === undefined)) continue;
        if (this.#files.length >= maxFiles) {
          this.#warnOnce(`max-files`, `tails at most ${maxFiles} files; ${path} and others are not read`);
          return;
        }
        await this.#track(path, from, saved);
      }
    }
  }

  /** Starts reading `path` (from its end or its start, or from a known offset of the same file). */
  async #track(
    path: string,
    from: "end" | "start",
    saved: ReadonlyMap<string, SavedOffset>,
  ): Promise<Tracked | undefined> {
    let real: string;
    try {
      real = await realpath(path);
    } catch {
      return undefined; // gone again
    }
    if (!pathAllowed(this.#o.allowed, real)) {
      this.#warnOnce(
        `escape:${path}`,
        `skipped ${path}: it resolves to ${real}, outside agent.yaml executors.pipeline.allowed_input_paths`,
      );
      return undefined;
    }
    let fh: FileHandle;
    try {
      fh = await open(path, "r");
    } catch (err) {
      this.#warnOnce(`open:${path}`, `cannot open ${path}: ${(err as Error).message}`);
      return undefined;
    }
    const st = await fh.stat();
    if (!st.isFile()) {
      await fh.close();
      return undefined;
    }
    const key = fileKey(st);
    if (this.#files.some((f) => f.key === key)) {
      await fh.close(); // the same file under a second name (a rotated file the glob also matches)
      return undefined;
    }
    const known = this.#known.get(key) ?? saved.get(key)?.pos;
    let pos = from === "end" ? st.size : 0;
    if (known !== undefined && known <= st.size) pos = known;
    const t: Tracked = {
      path,
      key,
      fh,
      pos,
      committed: pos,
      partial: [],
      partialLen: 0,
      skipping: false,
      backlog: [],
      rotatedAt: undefined,
      lastDataAt: this.#now(),
    };
    this.#files.push(t);
    this.#dirty = true;
    return t;
  }

  // ---------------------------------------------------------------- reading

  /** Reads what is new in one file into its backlog; notices truncation and rotation. */
  async #poll(t: Tracked): Promise<void> {
    const st = await t.fh.stat();
    if (t.rotatedAt === undefined && st.size < t.pos) {
      this.#o.log?.("INFO", `${t.path} was truncated; reading it again from the start`);
      t.pos = 0;
      t.committed = 0;
      t.partial = [];
      t.partialLen = 0;
      t.skipping = false;
    }
    if (st.size > t.pos) {
      const { bytesRead } = await t.fh.read(this.#buf, 0, Math.min(CHUNK, st.size - t.pos), t.pos);
      if (bytesRead > 0) {
        this.#split(t, this.#buf.subarray(0, bytesRead));
        t.lastDataAt = this.#now();
        return;
      }
    }
    if (t.rotatedAt !== undefined) {
      if (this.#now() - t.lastDataAt >= (this.#o.rotateWaitMs ?? 5000)) this.#flushPartial(t);
      return;
    }
    let current: Awaited<ReturnType<typeof stat>> | undefined;
    try {
      current = await stat(t.path);
    } catch {
      current = undefined;
    }
    if (current && fileKey(current) === t.key) return;
    // The path names another file now (or none): rotated. Drain the old one, read the new one.
    t.rotatedAt = this.#now();
    t.lastDataAt = this.#now();
    this.#o.log?.(
      "INFO",
      current
        ? `${t.path} was rotated; reading the new file from the start`
        : `${t.path} was moved or removed; waiting for it to come back`,
    );
    if (current?.isFile()) await this.#track(t.path, "start", new Map());
  }

  /** Splits new bytes of `t` into lines (its backlog); the rest waits for its newline. */
  #split(t: Tracked, chunk: Buffer): void {
    const max = this.#o.maxLineBytes ?? 1024 * 1024;
    let start = 0;
    const base = t.pos;
    t.pos += chunk.length;
    while (start < chunk.length) {
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl === -1 ? chunk.length : nl;
      if (!t.skipping) {
        const room = max - t.partialLen;
        if (end - start > room) {
          t.partial.push(Buffer.from(chunk.subarray(start, start + room)));
          t.partialLen += room;
          this.#emitLine(t, base + start + room, "…");
          t.skipping = true;
        } else if (end > start) {
          t.partial.push(Buffer.from(chunk.subarray(start, end)));
          t.partialLen += end - start;
        }
      }
      if (nl === -1) break;
      if (t.skipping) t.skipping = false;
      else this.#emitLine(t, base + nl + 1, "");
      start = nl + 1;
    }
  }

  #emitLine(t: Tracked, end: number, suffix: string): void {
    let line =
      t.partial.length === 1
        ? (t.partial[0] as Buffer).toString("utf8")
        : Buffer.concat(t.partial, t.partialLen).toString("utf8");
    t.partial = [];
    t.partialLen = 0;
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line.length === 0) return;
    t.backlog.push({ message: lineMessage(line + suffix, t.path), end });
  }

  /** A rotated file went quiet: its last line (without newline) counts, then it is closed. */
  #flushPartial(t: Tracked): void {
    if (t.partialLen > 0 && !t.skipping) this.#emitLine(t, t.pos, "");
    t.partial = [];
    t.partialLen = 0;
    t.skipping = false;
  }

  /** Closes rotated files that went quiet and have nothing left to hand out. */
  #reap(): void {
    const wait = this.#o.rotateWaitMs ?? 5000;
    for (let i = this.#files.length - 1; i >= 0; i--) {
      const t = this.#files[i] as Tracked;
      if (t.rotatedAt === undefined || t.backlog.length > 0 || t.partialLen > 0) continue;
      if (this.#now() - t.lastDataAt < wait) continue;
      if (this.#handedOut.some((h) => h.file === t)) continue;
      this.#files.splice(i, 1);
      this.#remember(t.key, t.pos);
      this.#dirty = true;
      void t.fh.close().catch(() => {});
    }
  }

  /** A file that cannot be read any more: stop tailing it (a later scan picks it up again). */
  #drop(t: Tracked, err: unknown): void {
    const i = this.#files.indexOf(t);
    if (i !== -1) this.#files.splice(i, 1);
    this.#remember(t.key, t.committed);
    this.#dirty = true;
    this.#o.log?.("WARN", `cannot read ${t.path}: ${(err as Error).message}; it is looked for again`);
    void t.fh.close().catch(() => {});
  }

  #remember(key: string, pos: number): void {
    this.#known.delete(key);
    this.#known.set(key, pos);
    if (this.#known.size > 4096) {
      const oldest = this.#known.keys().next().value;
      if (oldest !== undefined) this.#known.delete(oldest);
    }
  }

  #warnOnce(key: string, text: string): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#o.log?.("WARN", text);
  }

  // ---------------------------------------------------------------- offsets

  async #loadOffsets(): Promise<Map<string, SavedOffset> | undefined> {
    const file = this.#o.offsetsFile;
    if (!file) return undefined;
    try {
      const doc = JSON.parse(await readFile(file, "utf8")) as {
        format?: number;
        files?: Array<{ path?: unknown; key?: unknown; pos?: unknown }>;
      };
      if (doc.format !== OFFSETS_FORMAT || !Array.isArray(doc.files)) return undefined;
      const out = new Map<string, SavedOffset>();
      for (const f of doc.files) {
        if (typeof f.key === "string" && typeof f.pos === "number" && typeof f.path === "string") {
          out.set(f.key, { key: f.key, pos: f.pos, path: f.path });
        }
      }
      return out;
    } catch {
      return undefined; // none yet, or unreadable: start from the end
    }
  }

  async #maybeSave(force: boolean): Promise<void> {
    const file = this.#o.offsetsFile;
    if (!file || !this.#dirty) return;
    if (!force && this.#now() - this.#lastSave < 1000) return;
    this.#lastSave = this.#now();
    this.#dirty = false;
    const files = this.#files.map((f) => ({ path: f.path, key: f.key, pos: f.committed }));
    for (const [key, pos] of this.#known) {
      if (!files.some((f) => f.key === key)) files.push({ path: "", key, pos });
    }
    await writeFileAtomic(file, `${JSON.stringify({ format: OFFSETS_FORMAT, files })}\n`, 0o600).catch(
      (err: unknown) => {
        this.#warnOnce("offsets", `cannot save file offsets: ${(err as Error).message}`);
      },
    );
  }
}
