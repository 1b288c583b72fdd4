/**
 * Posting sets: the set of node slots that carry one label key, or one key=value pair.
 *
 * A set is a sorted `Uint32Array` while it is sparse and a bitset (one bit per slot, in
 * `Uint32Array` words) once it holds more than 1/32 of the slots, the point where the bitset
 * becomes the smaller of the two. It turns back into a list below 1/128, so a set that hovers
 * around the threshold does not flip on every change.
 */

/** Below this many slots the index never uses bitsets: lists are small and cheap to scan. */
const MIN_BITSET_UNIVERSE = 1024;

/** A set of slot numbers. `universe` is the index's slot high-water mark. */
export class Posting {
  /** How many slots are in the set. */
  count = 0;
  /** Sorted slots in `list[0, count)`; `null` in bitset mode. */
  list: Uint32Array | null = new Uint32Array(4);
  /** One bit per slot; `null` in list mode. */
  bits: Uint32Array | null = null;

  /** Whether `slot` is in the set. */
  has(slot: number): boolean {
    const bits = this.bits;
    if (bits !== null) return ((bits[slot >>> 5] ?? 0) & (1 << (slot & 31))) !== 0;
    const i = this.search(slot);
    return i < this.count && this.list?.[i] === slot;
  }

  /** Adds `slot`; a slot already present is ignored. */
  add(slot: number, universe: number): void {
    let bits = this.bits;
    if (bits === null && this.count >= 64 && this.count * 32 > universe && universe >= MIN_BITSET_UNIVERSE) {
      bits = this.toBits(universe);
    }
    if (bits !== null) {
      const w = slot >>> 5;
      if (w >= bits.length) {
        const grown = new Uint32Array(
          Math.max(w + 1, Math.ceil(universe / 32), Math.ceil(bits.length * 1.5)),
        );
        grown.set(bits);
        this.bits = bits = grown;
      }
      const mask = 1 << (slot & 31);
      if (((bits[w] ?? 0) & mask) === 0) {
        bits[w] = (bits[w] ?? 0) | mask;
        this.count++;
      }
      return;
    }
    let list = this.list ?? new Uint32Array(4);
    const i = this.search(slot);
    if (i < this.count && list[i] === slot) return;
    if (this.count === list.length) {
      const grown = new Uint32Array(Math.max(4, Math.ceil(list.length * 1.5)));
      grown.set(list);
      this.list = list = grown;
    }
    // Appends (the common case while nodes are registered) shift nothing.
    if (i < this.count) list.copyWithin(i + 1, i, this.count);
    list[i] = slot;
    this.count++;
  }

  /** Removes `slot`; a slot not present is ignored. */
  delete(slot: number, universe: number): void {
    const bits = this.bits;
    if (bits !== null) {
      const w = slot >>> 5;
      const mask = 1 << (slot & 31);
      const word = bits[w] ?? 0;
      if ((word & mask) === 0) return;
      bits[w] = word & ~mask;
      this.count--;
      if (this.count * 128 < universe) this.toList();
      return;
    }
    const list = this.list;
    if (list === null) return;
    const i = this.search(slot);
    if (i >= this.count || list[i] !== slot) return;
    list.copyWithin(i, i + 1, this.count);
    this.count--;
    // Give memory back when a list shrinks to a quarter of its capacity.
    if (list.length > 16 && this.count * 4 < list.length)
      this.list = list.slice(0, Math.max(4, this.count * 2));
  }

  /** The smallest slot in the set (the set must not be empty). */
  first(): number {
    if (this.list !== null) return this.list[0] ?? 0;
    const bits = this.bits ?? new Uint32Array(0);
    for (let w = 0; w < bits.length; w++) {
      const word = bits[w] ?? 0;
      if (word !== 0) return (w << 5) + 31 - Math.clz32(word & -word);
    }
    return 0;
  }

  /** Appends every slot, ascending, to `out` from index `n`; returns the new length. */
  appendTo(out: Uint32Array, n: number): number {
    const list = this.list;
    if (list !== null) {
      out.set(list.subarray(0, this.count), n);
      return n + this.count;
    }
    const bits = this.bits ?? new Uint32Array(0);
    for (let w = 0; w < bits.length; w++) {
      let word = bits[w] ?? 0;
      while (word !== 0) {
        const low = word & -word;
        out[n++] = (w << 5) + 31 - Math.clz32(low);
        word ^= low;
      }
    }
    return n;
  }

  /** Binary search: the index of the first list entry >= slot. */
  private search(slot: number): number {
    const list = this.list;
    if (list === null) return 0;
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((list[mid] ?? 0) < slot) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private toBits(universe: number): Uint32Array {
    const bits = new Uint32Array(Math.ceil(universe / 32));
    const list = this.list ?? new Uint32Array(0);
    for (let i = 0; i < this.count; i++) {
      const slot = list[i] ?? 0;
      bits[slot >>> 5] = (bits[slot >>> 5] ?? 0) | (1 << (slot & 31));
    }
    this.list = null;
    this.bits = bits;
    return bits;
  }

  private toList(): void {
    const list = new Uint32Array(Math.max(4, Math.ceil(this.count * 1.5)));
    this.appendTo(list, 0);
    this.list = list;
    this.bits = null;
  }
}
