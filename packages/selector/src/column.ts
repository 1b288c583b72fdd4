/**
 * A column: for one label key, the value id each node slot carries (0 = the key is absent).
 *
 * The label index checks non-driving requirements (`!=`, `notin`, `!k`, `>`/`<`, and the other
 * positive ones) on each candidate by reading this column: one typed-array load and an integer
 * compare, no string hashing. The index also reads it to find a node's old labels when the node
 * changes or leaves, so it never keeps a copy of the caller's label objects.
 *
 * Dense keys (on more than 1/16 of the slots) use a typed array as narrow as their value ids
 * allow (1 byte for up to 255 distinct values); rare keys use a `Map`, so a fleet with hundreds of
 * rarely used keys does not pay a byte per node for each of them.
 */

/** A dense column: slot → value id, as narrow as the key's value ids allow. */
export type DenseColumn = Uint8Array | Uint16Array | Uint32Array;

/** slot → value id for one key, dense or sparse depending on how many slots have the key. */
export class Column {
  /** slot → value id, or `null` while the column is sparse. */
  dense: DenseColumn | null = null;
  /** slot → value id while the column is sparse. */
  sparse: Map<number, number> | null = new Map();

  /** The value id at `slot`, 0 when absent. */
  get(slot: number): number {
    const dense = this.dense;
    if (dense !== null) return dense[slot] ?? 0;
    return this.sparse?.get(slot) ?? 0;
  }

  /**
   * Sets the value id of `slot` (vid > 0). `count` is the number of slots with this key after the
   * change, `universe` the slot high-water mark and `capacity` the size per-slot arrays grow to.
   */
  set(slot: number, vid: number, count: number, universe: number, capacity: number): void {
    if (this.dense === null && count * 16 > universe) this.toDense(capacity, vid);
    let dense = this.dense;
    if (dense === null) {
      this.sparse?.set(slot, vid);
      return;
    }
    // Grow to cover the slot, and widen (8 → 16 → 32 bits) when the value id does not fit.
    if (slot >= dense.length || vid > maxOf(dense)) {
      dense = this.resized(Math.max(capacity, slot + 1, dense.length), Math.max(vid, maxOf(dense)));
    }
    dense[slot] = vid;
  }

  /** Clears `slot`. `count` is the number of slots with this key after the change. */
  delete(slot: number, count: number, universe: number): void {
    const dense = this.dense;
    if (dense === null) {
      this.sparse?.delete(slot);
      return;
    }
    if (slot < dense.length) dense[slot] = 0;
    if (count * 64 < universe) this.toSparse();
  }

  private toDense(capacity: number, vid: number): void {
    const sparse = this.sparse ?? new Map<number, number>();
    let maxVid = vid;
    let maxSlot = 0;
    for (const [slot, v] of sparse) {
      if (v > maxVid) maxVid = v;
      if (slot > maxSlot) maxSlot = slot;
    }
    const dense = allocate(Math.max(capacity, maxSlot + 1), maxVid);
    for (const [slot, v] of sparse) dense[slot] = v;
    this.dense = dense;
    this.sparse = null;
  }

  private toSparse(): void {
    const dense = this.dense;
    if (dense === null) return;
    const sparse = new Map<number, number>();
    for (let slot = 0; slot < dense.length; slot++) {
      const v = dense[slot] ?? 0;
      if (v !== 0) sparse.set(slot, v);
    }
    this.sparse = sparse;
    this.dense = null;
  }

  private resized(length: number, maxVid: number): DenseColumn {
    const old = this.dense ?? new Uint8Array(0);
    const dense = allocate(length, maxVid);
    dense.set(old);
    this.dense = dense;
    return dense;
  }
}

/** The largest value id a column of this width holds. */
function maxOf(a: DenseColumn): number {
  return a instanceof Uint8Array ? 0xff : a instanceof Uint16Array ? 0xffff : 0xffffffff;
}

function allocate(length: number, maxVid: number): DenseColumn {
  if (maxVid <= 0xff) return new Uint8Array(length);
  if (maxVid <= 0xffff) return new Uint16Array(length);
  return new Uint32Array(length);
}
