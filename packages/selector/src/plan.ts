/**
 * Query planning and filtering for `LabelIndex.select`.
 *
 * A plan has at most one **driver**, the smallest posting set (or union of posting sets) that
 * every match must be in, and a list of **filters**, each of which checks one requirement on a
 * buffer of candidate slots in a tight loop (a column load and an integer compare, a bit test, or
 * a merge against a sorted list). Filters run most selective first, so the buffer shrinks early.
 *
 * Positive requirements give drivers: `=`/`==`/`in` (the value's posting sets), `exists` (the key's
 * posting set), `>`/`<` (the posting sets of the values that pass, or the key's set when the key
 * has too many distinct values to enumerate), and `match_ids`. Negative requirements (`!=`,
 * `notin`, `!k`) only filter.
 */
import type { DenseColumn } from "./column.js";
import type { KeyEntry } from "./key-entry.js";
import { Posting } from "./posting.js";
import type { Requirement } from "./requirement.js";
import { parseInt64 } from "./validate.js";

/** One requirement, checked on candidate slots. `pass` estimates the fraction that passes. */
export type Filter = FilterCheck & {
  pass: number;
  /**
   * Set when the requirement is also "slot in the union of these bitsets" (or, with `negate`, not
   * in it): then it can run a word at a time against a bitset of candidates. Its own `negate`,
   * because a column check of the same requirement may be phrased the other way round.
   */
  words?: { readonly bitsets: readonly Uint32Array[]; readonly negate: boolean };
};

/** How a filter checks one slot. */
export type FilterCheck =
  | { readonly kind: "column"; readonly col: DenseColumn; readonly vid: number; readonly negate: boolean }
  | {
      readonly kind: "table";
      readonly col: DenseColumn;
      readonly table: Uint8Array;
      readonly negate: boolean;
    }
  | { readonly kind: "bits"; readonly bits: Uint32Array; readonly negate: boolean }
  | { readonly kind: "list"; readonly list: Uint32Array; readonly count: number; readonly negate: boolean }
  | { readonly kind: "slot"; readonly slot: number; readonly negate: boolean }
  | { readonly kind: "fn"; readonly fn: (slot: number) => boolean; readonly negate?: undefined };

/** A source of candidate slots. */
export interface Driver {
  /** How many slots `fill` appends. */
  readonly size: number;
  /** Whether `fill` appends slots in ascending order (lets list filters merge instead of search). */
  readonly sorted: boolean;
  /** Appends the candidates to `out` from index `n`; returns the new length. */
  fill(out: Uint32Array, n: number): number;
  /** Set when the candidates are exactly the union of these bitsets, so filters can run per word. */
  readonly bitsets?: readonly Uint32Array[];
}

/** The plan of one `select`. */
export interface Plan {
  /** `undefined`: no positive requirement, every slot is a candidate. */
  readonly driver: Driver | undefined;
  /** Filters to run on the candidates, most selective first. */
  readonly filters: readonly Filter[];
}

/** What the planner reads from the index. */
export interface IndexView {
  readonly keys: ReadonlyMap<string, KeyEntry>;
  readonly slotOf: ReadonlyMap<string, number>;
  /** Slot high-water mark. */
  readonly universe: number;
}

/** Keys with more distinct values than this are not enumerated for `>`/`<`; candidates are checked one by one. */
const MAX_ENUMERATED_VALUES = 4096;

/**
 * Plans a selection. Returns `undefined` when nothing can match: a positive requirement names a
 * key or value no node has, `>`/`<` has no passing value, or none of the ids is known.
 */
export function planSelect(
  requirements: readonly Requirement[],
  ids: readonly string[] | undefined,
  view: IndexView,
): Plan | undefined {
  const universe = Math.max(1, view.universe);
  /** Candidate drivers, each with the filters that are redundant once it is chosen. */
  const drivers: { driver: Driver; covers: Filter[] }[] = [];
  const filters: Filter[] = [];

  if (ids !== undefined) {
    const slots: number[] = [];
    const seen = new Set<number>();
    for (const id of ids) {
      const slot = view.slotOf.get(id);
      if (slot !== undefined && !seen.has(slot)) {
        seen.add(slot);
        slots.push(slot);
      }
    }
    if (slots.length === 0) return undefined;
    const filter: Filter = { kind: "fn", fn: (slot) => seen.has(slot), pass: slots.length / universe };
    filters.push(filter);
    drivers.push({ driver: arrayDriver(slots), covers: [filter] });
  }

  for (const req of requirements) {
    const entry = view.keys.get(req.key);
    const dense = entry?.column.dense ?? null;
    switch (req.operator) {
      case "=":
      case "==":
      case "in": {
        if (entry === undefined) return undefined;
        const vids = knownVids(entry, req.operator === "in" ? req.values : [req.values[0] ?? ""]);
        if (vids.length === 0) return undefined;
        const driver = postingsDriver(entry, vids);
        const filter = valueFilter(entry, dense, vids, false, driver.size / universe);
        filters.push(filter);
        drivers.push({ driver, covers: [filter] });
        break;
      }
      case "!=":
      case "notin": {
        if (entry === undefined) break; // no node has the key: every node passes
        const vids = knownVids(entry, req.operator === "notin" ? req.values : [req.values[0] ?? ""]);
        if (vids.length === 0) break;
        const size = vids.reduce((sum, vid) => sum + postingSize(entry.postings[vid]), 0);
        filters.push(valueFilter(entry, dense, vids, true, 1 - size / universe));
        break;
      }
      case "exists": {
        if (entry === undefined) return undefined;
        const filter = presenceFilter(entry, dense, false, universe);
        filters.push(filter);
        drivers.push({ driver: postingDriver(entry.all), covers: [filter] });
        break;
      }
      case "!": {
        if (entry !== undefined) filters.push(presenceFilter(entry, dense, true, universe));
        break;
      }
      case ">":
      case "<": {
        const bound = req.values.length === 1 ? parseInt64(req.values[0] ?? "") : undefined;
        if (entry === undefined || bound === undefined) return undefined;
        const greater = req.operator === ">";
        const passes = (vid: number): boolean => {
          const n = entry.num(vid);
          return n !== null && (greater ? n > bound : n < bound);
        };
        if (entry.vids.size <= MAX_ENUMERATED_VALUES) {
          // Few distinct values (cpu_cores, memory_gb): find the ones that pass once, then this is
          // an `in` over them, with an exact driver.
          const vids: number[] = [];
          for (const vid of entry.vids.values()) if (passes(vid)) vids.push(vid);
          if (vids.length === 0) return undefined;
          const driver = postingsDriver(entry, vids);
          const filter = valueFilter(entry, dense, vids, false, driver.size / universe);
          filters.push(filter);
          drivers.push({ driver, covers: [filter] });
        } else {
          const read = reader(entry);
          filters.push({
            kind: "fn",
            fn: (slot) => {
              const vid = read(slot);
              return vid !== 0 && passes(vid);
            },
            pass: 0.5 * (entry.all.count / universe),
          });
          // "k > n" implies "k exists": the key's posting set is a (loose) candidate list.
          drivers.push({ driver: postingDriver(entry.all), covers: [] });
        }
        break;
      }
    }
  }

  let best: { driver: Driver; covers: Filter[] } | undefined;
  for (const d of drivers) if (best === undefined || d.driver.size < best.driver.size) best = d;
  const remaining = best === undefined ? filters : filters.filter((f) => !best.covers.includes(f));
  remaining.sort((a, b) => a.pass - b.pass);
  return { driver: best?.driver, filters: remaining };
}

/**
 * Keeps the slots of `buf[from, to)` that pass `f`, compacted to the front; returns the new end.
 * `sorted` says the slots are ascending, which lets a list filter merge instead of searching.
 */
export function applyFilter(f: Filter, buf: Uint32Array, from: number, to: number, sorted: boolean): number {
  let m = from;
  switch (f.kind) {
    case "column": {
      const { col, vid } = f;
      if (f.negate) {
        for (let i = from; i < to; i++) {
          const s = buf[i] ?? 0;
          if ((col[s] ?? 0) !== vid) buf[m++] = s;
        }
      } else {
        for (let i = from; i < to; i++) {
          const s = buf[i] ?? 0;
          if ((col[s] ?? 0) === vid) buf[m++] = s;
        }
      }
      return m;
    }
    case "table": {
      const { col, table } = f;
      const want = f.negate ? 0 : 1;
      for (let i = from; i < to; i++) {
        const s = buf[i] ?? 0;
        if ((table[col[s] ?? 0] ?? 0) === want) buf[m++] = s;
      }
      return m;
    }
    case "bits": {
      const { bits } = f;
      const want = f.negate ? 0 : 1;
      for (let i = from; i < to; i++) {
        const s = buf[i] ?? 0;
        if ((((bits[s >>> 5] ?? 0) >>> (s & 31)) & 1) === want) buf[m++] = s;
      }
      return m;
    }
    case "list": {
      const { list, count, negate } = f;
      if (sorted && count <= 8 * (to - from)) {
        // Merge: both ascending, one pass over each.
        let j = lowerBound(list, count, buf[from] ?? 0);
        for (let i = from; i < to; i++) {
          const s = buf[i] ?? 0;
          while (j < count && (list[j] ?? 0) < s) j++;
          if ((j < count && list[j] === s) !== negate) buf[m++] = s;
        }
      } else {
        for (let i = from; i < to; i++) {
          const s = buf[i] ?? 0;
          const j = lowerBound(list, count, s);
          if ((j < count && list[j] === s) !== negate) buf[m++] = s;
        }
      }
      return m;
    }
    case "slot": {
      const { slot, negate } = f;
      for (let i = from; i < to; i++) {
        const s = buf[i] ?? 0;
        if ((s === slot) !== negate) buf[m++] = s;
      }
      return m;
    }
    case "fn": {
      const { fn } = f;
      for (let i = from; i < to; i++) {
        const s = buf[i] ?? 0;
        if (fn(s)) buf[m++] = s;
      }
      return m;
    }
  }
}

/**
 * Applies `f` to a bitset of candidates a word at a time, when it can: a union of bitsets (AND,
 * or AND NOT when negated), or excluding a few listed slots. Returns false when `f` has to run per
 * candidate instead.
 */
export function applyFilterToWords(f: Filter, words: Uint32Array): boolean {
  if (f.words !== undefined) {
    const { bitsets, negate } = f.words;
    const n = words.length;
    const [a, b] = bitsets;
    if (bitsets.length === 1 && a !== undefined) {
      const m = Math.min(n, a.length);
      if (negate) for (let w = 0; w < m; w++) words[w] = (words[w] ?? 0) & ~(a[w] ?? 0);
      else {
        for (let w = 0; w < m; w++) words[w] = (words[w] ?? 0) & (a[w] ?? 0);
        words.fill(0, m);
      }
      return true;
    }
    if (bitsets.length === 2 && a !== undefined && b !== undefined) {
      if (negate) for (let w = 0; w < n; w++) words[w] = (words[w] ?? 0) & ~((a[w] ?? 0) | (b[w] ?? 0));
      else for (let w = 0; w < n; w++) words[w] = (words[w] ?? 0) & ((a[w] ?? 0) | (b[w] ?? 0));
      return true;
    }
    const union = new Uint32Array(n);
    for (const bits of bitsets) orInto(union, bits);
    if (negate) for (let w = 0; w < n; w++) words[w] = (words[w] ?? 0) & ~(union[w] ?? 0);
    else for (let w = 0; w < n; w++) words[w] = (words[w] ?? 0) & (union[w] ?? 0);
    return true;
  }
  if (f.kind === "list" && f.negate) {
    const { list, count } = f;
    for (let i = 0; i < count; i++) {
      const s = list[i] ?? 0;
      const w = s >>> 5;
      if (w < words.length) words[w] = (words[w] ?? 0) & ~(1 << (s & 31));
    }
    return true;
  }
  if (f.kind === "slot" && f.negate) {
    const w = f.slot >>> 5;
    if (w < words.length) words[w] = (words[w] ?? 0) & ~(1 << (f.slot & 31));
    return true;
  }
  return false;
}

/** `words |= bits`, over the shorter of the two. */
export function orInto(words: Uint32Array, bits: Uint32Array): void {
  const m = Math.min(words.length, bits.length);
  for (let w = 0; w < m; w++) words[w] = (words[w] ?? 0) | (bits[w] ?? 0);
}

/** Appends the set bits of `words`, ascending, to `out` from index `n`; returns the new length. */
export function appendBits(words: Uint32Array, out: Uint32Array, n: number): number {
  for (let w = 0; w < words.length; w++) {
    let word = words[w] ?? 0;
    while (word !== 0) {
      const low = word & -word;
      out[n++] = (w << 5) + 31 - Math.clz32(low);
      word ^= low;
    }
  }
  return n;
}

function lowerBound(list: Uint32Array, count: number, slot: number): number {
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((list[mid] ?? 0) < slot) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The value ids of the values some node has (deduplicated); unknown values match nothing. */
function knownVids(entry: KeyEntry, values: readonly string[]): number[] {
  const vids: number[] = [];
  for (const v of values) {
    const vid = entry.vids.get(v);
    if (vid !== undefined && !vids.includes(vid)) vids.push(vid);
  }
  return vids;
}

/** "value id is (not) one of `vids`": one column load when the column is dense. */
function valueFilter(
  entry: KeyEntry,
  dense: DenseColumn | null,
  vids: readonly number[],
  negate: boolean,
  pass: number,
): Filter {
  const filter = valueCheck(entry, dense, vids, negate, pass);
  const bitsets = bitsetsOf(vids.map((vid) => entry.postings[vid]));
  if (bitsets !== undefined) filter.words = { bitsets, negate };
  return filter;
}

/** The bitsets of `postings` when every one of them is in bitset mode. */
function bitsetsOf(postings: readonly (Posting | number | undefined)[]): Uint32Array[] | undefined {
  const bitsets: Uint32Array[] = [];
  for (const p of postings) {
    if (!(p instanceof Posting) || p.bits === null) return undefined;
    bitsets.push(p.bits);
  }
  return bitsets;
}

function valueCheck(
  entry: KeyEntry,
  dense: DenseColumn | null,
  vids: readonly number[],
  negate: boolean,
  pass: number,
): Filter {
  if (dense !== null && vids.length === 1)
    return { kind: "column", col: dense, vid: vids[0] ?? 0, negate, pass };
  const range = entry.values.length;
  if (dense !== null && range <= 1 << 16) {
    const table = new Uint8Array(range);
    for (const vid of vids) table[vid] = 1;
    return { kind: "table", col: dense, table, negate, pass };
  }
  if (vids.length === 1) {
    const m = membership(entry.postings[vids[0] ?? 0], negate, 1);
    m.pass = pass;
    return m;
  }
  const read = reader(entry);
  const set = new Set(vids);
  return { kind: "fn", fn: negate ? (slot) => !set.has(read(slot)) : (slot) => set.has(read(slot)), pass };
}

/** "has the key" (or, negated, "does not have it"). */
function presenceFilter(
  entry: KeyEntry,
  dense: DenseColumn | null,
  negate: boolean,
  universe: number,
): Filter {
  const share = entry.all.count / universe;
  // "has the key" is "value id is not 0".
  const filter: Filter =
    dense !== null
      ? { kind: "column", col: dense, vid: 0, negate: !negate, pass: negate ? 1 - share : share }
      : membership(entry.all, negate, universe);
  if (entry.all.bits !== null) filter.words = { bitsets: [entry.all.bits], negate };
  return filter;
}

/** Membership in one posting set, whatever its representation. */
function membership(p: Posting | number | undefined, negate: boolean, universe: number): Filter {
  const share = postingSize(p) / universe;
  const pass = negate ? 1 - share : share;
  if (p === undefined) return { kind: "fn", fn: () => negate, pass };
  if (typeof p === "number") return { kind: "slot", slot: p, negate, pass };
  if (p.bits !== null) return { kind: "bits", bits: p.bits, negate, pass };
  return { kind: "list", list: p.list ?? new Uint32Array(0), count: p.count, negate, pass };
}

function reader(entry: KeyEntry): (slot: number) => number {
  const col = entry.column;
  const dense = col.dense;
  if (dense !== null) return (slot) => dense[slot] ?? 0;
  const sparse = col.sparse ?? new Map<number, number>();
  return (slot) => sparse.get(slot) ?? 0;
}

function postingSize(p: Posting | number | undefined): number {
  return p === undefined ? 0 : typeof p === "number" ? 1 : p.count;
}

/** The union of the value posting sets of `vids` (disjoint: a node has one value per key). */
function postingsDriver(entry: KeyEntry, vids: readonly number[]): Driver {
  const parts = vids.map((vid) => entry.postings[vid]).filter((p) => p !== undefined);
  const size = parts.reduce((sum: number, p) => sum + postingSize(p), 0);
  const only = parts.length === 1 ? parts[0] : undefined;
  if (only instanceof Posting) return postingDriver(only);
  const bitsets = bitsetsOf(parts);
  return {
    size,
    sorted: parts.length <= 1,
    ...(bitsets === undefined ? {} : { bitsets }),
    fill(out, n) {
      for (const p of parts) {
        if (typeof p === "number") out[n++] = p;
        else n = p.appendTo(out, n);
      }
      return n;
    },
  };
}

function postingDriver(p: Posting): Driver {
  const fill = (out: Uint32Array, n: number): number => p.appendTo(out, n);
  return p.bits === null
    ? { size: p.count, sorted: true, fill }
    : { size: p.count, sorted: true, fill, bitsets: [p.bits] };
}

function arrayDriver(slots: readonly number[]): Driver {
  return {
    size: slots.length,
    sorted: false,
    fill(out, n) {
      for (const s of slots) out[n++] = s;
      return n;
    },
  };
}
