/**
 * `LabelIndex`: the node set, indexed by label, answering "which nodes does this selector pick"
 * without looking at every node.
 *
 * Layout (see the package README for the picture):
 * - every node gets a dense **slot** number (freed slots are reused), so per-node data lives in
 *   typed arrays indexed by slot;
 * - every label **key** has a {@link KeyEntry}: its interned values (value → value id), one
 *   posting set of slots per value id, a posting set of the slots that have the key at all, and
 *   a column slot → value id;
 * - `select` plans first (`plan.ts`): the smallest positive requirement (`=`, `in`, exists,
 *   `>`/`<`, or `match_ids`) is the **driver** that yields candidates, and every other
 *   requirement becomes a **filter** run over the candidates. When the driver and some filters
 *   are bitsets they are intersected 32 slots at a time before the rest runs per candidate.
 *   A selector with no positive requirement (only `!=`, `notin`, `!k`, or nothing) has no driver
 *   and scans every slot: that is the correct answer, it is just not sub-linear.
 *
 * The index keeps no reference to the caller's label objects (only interned strings), so changing
 * a label object after `upsert` cannot corrupt it; upsert again to change a node's labels.
 */
import { invalidArgument } from "@edgeplane/core";
import { KeyEntry } from "./key-entry.js";
import type { NodeLike } from "./node-selector.js";
import { appendBits, applyFilter, applyFilterToWords, orInto, type Plan, planSelect } from "./plan.js";
import { Posting } from "./posting.js";
import { type Labels, labelKeys, ownLabel, type Requirement } from "./requirement.js";

/** Anything `select` can evaluate: a compiled node selector, or a parsed selector (no ids). */
export interface SelectorLike {
  readonly requirements: readonly Requirement[];
  /** Node ids the selection is limited to; `undefined` means no id constraint. */
  readonly ids?: readonly string[] | undefined;
}

/** Options of {@link LabelIndex.select}. */
export interface SelectOptions {
  /** Return at most this many ids (the first found). */
  readonly limit?: number;
  /** Keep only ids for which this returns true (e.g. nodes that are ready); counts against `limit` only when kept. */
  readonly filter?: (id: string) => boolean;
  /** Sort the ids (code-unit order). Default: unspecified order, which is cheaper. */
  readonly sort?: boolean;
}

/** Counters describing the index, for tests, metrics and the benchmark. */
export interface LabelIndexStats {
  readonly nodes: number;
  readonly keys: number;
  readonly values: number;
  readonly bitsetPostings: number;
  readonly listPostings: number;
  readonly slotCapacity: number;
}

/** Candidates filtered per round: small enough to stay in cache, large enough to amortise the loop setup. */
const CHUNK = 4096;

/**
 * An in-memory index of nodes by label. Pure data structure: no I/O, no timers.
 *
 * @example
 * const index = new LabelIndex();
 * index.upsert({ id: "n1", labels: { region: "eu-west", tier: "edge" } });
 * index.select(compileNodeSelector({ match_expressions: ["region=eu-west,!maintenance"] })); // ["n1"]
 */
export class LabelIndex {
  readonly #keys = new Map<string, KeyEntry>();
  readonly #slotOf = new Map<string, number>();
  /** slot → node id; `undefined` for a free slot. */
  #ids: (string | undefined)[] = [];
  /** slot → number of labels, to recognise an unchanged upsert in O(labels). */
  #labelCount = new Uint32Array(0);
  readonly #freeSlots: number[] = [];
  /** Slot high-water mark: every slot in use is below it. */
  #universe = 0;
  /** Scratch buffer for candidate slots, reused across calls (select is synchronous). */
  #scratch = new Uint32Array(CHUNK);
  /** Scratch bitset for word-at-a-time intersections. */
  #wordScratch = new Uint32Array(0);
  /** True while a select runs, so that a nested one (from a `filter` callback) uses its own buffers. */
  #selecting = false;

  /** The number of nodes in the index. */
  get size(): number {
    return this.#slotOf.size;
  }

  /** Whether a node with this id is in the index. */
  has(id: string): boolean {
    return this.#slotOf.has(id);
  }

  /** The ids of every node, in slot order. */
  *ids(): IterableIterator<string> {
    for (const id of this.#ids) if (id !== undefined) yield id;
  }

  /**
   * Adds a node, or replaces the labels of the node with the same id. Only own properties with
   * string values count as labels. Costs O(labels) when nothing changed, O(labels + keys) otherwise.
   */
  upsert(node: NodeLike): void {
    const { id, labels } = node;
    if (typeof id !== "string") throw invalidArgument("node.id", "must be a string");
    const keys = labelKeys(labels);
    let slot = this.#slotOf.get(id);
    if (slot === undefined) {
      slot = this.#allocateSlot(id);
      for (const key of keys) this.#addLabel(slot, key, ownLabel(labels, key) ?? "");
      this.#labelCount[slot] = keys.length;
      return;
    }
    if (this.#unchanged(slot, labels, keys)) return;
    // Drop every old label that is gone or changed, then add the new ones that are missing.
    let remaining = this.#labelCount[slot] ?? 0;
    for (const entry of this.#keys.values()) {
      if (remaining === 0) break;
      const vid = entry.column.get(slot);
      if (vid === 0) continue;
      remaining--;
      if (ownLabel(labels, entry.key) !== entry.values[vid]) this.#removeLabel(entry, slot, vid);
    }
    for (const key of keys) {
      const entry = this.#keys.get(key);
      if (entry === undefined || entry.column.get(slot) === 0)
        this.#addLabel(slot, key, ownLabel(labels, key) ?? "");
    }
    this.#labelCount[slot] = keys.length;
  }

  /** Removes a node; returns whether it was there. Costs O(keys in the index). */
  remove(id: string): boolean {
    const slot = this.#slotOf.get(id);
    if (slot === undefined) return false;
    let remaining = this.#labelCount[slot] ?? 0;
    for (const entry of this.#keys.values()) {
      if (remaining === 0) break;
      const vid = entry.column.get(slot);
      if (vid === 0) continue;
      remaining--;
      this.#removeLabel(entry, slot, vid);
    }
    this.#labelCount[slot] = 0;
    this.#ids[slot] = undefined;
    this.#slotOf.delete(id);
    this.#freeSlots.push(slot);
    return true;
  }

  /** Removes every node. */
  clear(): void {
    this.#keys.clear();
    this.#slotOf.clear();
    this.#ids = [];
    this.#labelCount = new Uint32Array(0);
    this.#freeSlots.length = 0;
    this.#universe = 0;
  }

  /**
   * The ids of the nodes `selector` matches: exactly the nodes for which
   * `compileNodeSelector(...).matches(node)` is true (property-tested).
   *
   * Cost: O(smallest positive requirement's posting set × requirements) plus O(result); with no
   * positive requirement (only `!=`, `notin`, `!k`, or an empty selector), O(nodes).
   */
  select(selector: SelectorLike, options: SelectOptions = {}): string[] {
    const limit = Math.floor(options.limit ?? Number.POSITIVE_INFINITY);
    if (!(limit >= 0)) throw invalidArgument("limit", "must be a number >= 0");
    const plan = planSelect(selector.requirements, selector.ids, {
      keys: this.#keys,
      slotOf: this.#slotOf,
      universe: this.#universe,
    });
    const out: string[] = [];
    if (plan === undefined || limit === 0) return out;
    // A `filter` callback may call select again: the nested call must not reuse our buffers.
    const nested = this.#selecting;
    this.#selecting = true;
    try {
      this.#run(plan, out, limit, options.filter, nested);
    } finally {
      this.#selecting = nested;
    }
    return options.sort ? out.sort() : out;
  }

  /** Runs `plan`, appending at most `limit` matching ids that pass `keep` to `out`. */
  #run(
    plan: Plan,
    out: string[],
    limit: number,
    keep: ((id: string) => boolean) | undefined,
    nested: boolean,
  ): void {
    const ids = this.#ids;
    const driver = plan.driver;
    let filters = plan.filters;
    let sorted = driver === undefined || driver.sorted;

    /** Filters `buf[from, to)` and emits the ids; true once `limit` is reached. */
    const emit = (buf: Uint32Array, from: number, to: number): boolean => {
      let end = to;
      for (const f of filters) {
        end = applyFilter(f, buf, from, end, sorted);
        if (end === from) return false;
      }
      for (let i = from; i < end; i++) {
        const id = ids[buf[i] ?? 0];
        if (id === undefined || (keep !== undefined && !keep(id))) continue;
        out.push(id);
        if (out.length >= limit) return true;
      }
      return false;
    };

    // Candidates are processed in chunks so that `limit` stops the work early.
    if (driver === undefined) {
      // No positive requirement narrows the search: every slot is a candidate, generated a chunk
      // at a time so a scan never allocates a buffer the size of the fleet.
      const buf = nested ? new Uint32Array(CHUNK) : this.#scratch;
      for (let base = 0; base < this.#universe; base += CHUNK) {
        const n = Math.min(CHUNK, this.#universe - base);
        for (let i = 0; i < n; i++) buf[i] = base + i;
        if (emit(buf, 0, n)) break;
      }
    } else {
      if (!nested && this.#scratch.length < driver.size) {
        this.#scratch = new Uint32Array(Math.ceil(driver.size * 1.25));
      }
      const buf = nested ? new Uint32Array(driver.size) : this.#scratch;
      let total: number;
      if (driver.bitsets !== undefined && filters.some((f) => f.words !== undefined)) {
        // A dense driver and dense filters: intersect a word (32 slots) at a time, then check
        // what is left per candidate. This is what keeps 1%-selectivity queries cheap.
        const words = this.#words(driver.bitsets, nested);
        filters = filters.filter((f) => !applyFilterToWords(f, words));
        total = appendBits(words, buf, 0);
        sorted = true;
      } else total = driver.fill(buf, 0);
      for (let from = 0; from < total; from += CHUNK)
        if (emit(buf, from, Math.min(total, from + CHUNK))) break;
    }
  }

  /** Counters describing the index. */
  stats(): LabelIndexStats {
    let values = 0;
    let bitsetPostings = 0;
    let listPostings = 0;
    for (const entry of this.#keys.values()) {
      values += entry.vids.size;
      for (const p of [entry.all, ...entry.postings]) {
        if (p instanceof Posting) {
          if (p.bits !== null) bitsetPostings++;
          else listPostings++;
        }
      }
    }
    return {
      nodes: this.size,
      keys: this.#keys.size,
      values,
      bitsetPostings,
      listPostings,
      slotCapacity: this.#labelCount.length,
    };
  }

  /** The union of `bitsets` in a (scratch, unless nested) word buffer covering every slot. */
  #words(bitsets: readonly Uint32Array[], nested: boolean): Uint32Array {
    const n = Math.ceil(this.#universe / 32);
    if (!nested && this.#wordScratch.length < n) this.#wordScratch = new Uint32Array(Math.ceil(n * 1.25));
    const words = nested ? new Uint32Array(n) : this.#wordScratch.subarray(0, n);
    const [first, ...rest] = bitsets;
    // The first set is copied with a memcpy; only a union of several needs a loop.
    const m = Math.min(n, first?.length ?? 0);
    if (first !== undefined) words.set(first.subarray(0, m));
    words.fill(0, m);
    for (const bits of rest) orInto(words, bits);
    return words;
  }

  #allocateSlot(id: string): number {
    let slot = this.#freeSlots.pop();
    if (slot === undefined) {
      slot = this.#universe++;
      if (slot >= this.#labelCount.length) {
        const grown = new Uint32Array(Math.max(1024, Math.ceil(this.#labelCount.length * 1.5)));
        grown.set(this.#labelCount);
        this.#labelCount = grown;
      }
    }
    this.#ids[slot] = id;
    this.#slotOf.set(id, slot);
    return slot;
  }

  #addLabel(slot: number, key: string, value: string): void {
    let entry = this.#keys.get(key);
    if (entry === undefined) {
      entry = new KeyEntry(key);
      this.#keys.set(key, entry);
    }
    const vid = entry.intern(value);
    const universe = this.#universe;
    entry.all.add(slot, universe);
    entry.column.set(slot, vid, entry.all.count, universe, this.#labelCount.length);
    const p = entry.postings[vid];
    if (p === undefined) entry.postings[vid] = slot;
    else if (typeof p === "number") {
      const posting = new Posting();
      posting.add(p, universe);
      posting.add(slot, universe);
      entry.postings[vid] = posting;
    } else p.add(slot, universe);
  }

  #removeLabel(entry: KeyEntry, slot: number, vid: number): void {
    const universe = this.#universe;
    entry.all.delete(slot, universe);
    entry.column.delete(slot, entry.all.count, universe);
    const p = entry.postings[vid];
    if (typeof p === "number" || p === undefined) entry.release(vid);
    else {
      p.delete(slot, universe);
      // Back to the bare-number form, which costs nothing beyond the array cell.
      if (p.count === 1) entry.postings[vid] = p.first();
    }
    if (entry.all.count === 0) this.#keys.delete(entry.key);
  }

  /** Whether `labels` are exactly what the index holds for `slot`. */
  #unchanged(slot: number, labels: Labels, keys: readonly string[]): boolean {
    if (keys.length !== this.#labelCount[slot]) return false;
    for (const key of keys) {
      const entry = this.#keys.get(key);
      if (entry === undefined) return false;
      const vid = entry.column.get(slot);
      if (vid === 0 || entry.values[vid] !== ownLabel(labels, key)) return false;
    }
    return true;
  }
}
