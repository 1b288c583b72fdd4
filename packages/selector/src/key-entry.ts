/**
 * The label index's state for one label key: interned values, their posting sets, the
 * "has this key" posting set and the slot → value id column.
 */
import { Column } from "./column.js";
import { Posting } from "./posting.js";
import { parseInt64 } from "./validate.js";

/** Per-key state. Value ids start at 1 so that 0 in a column means "absent". */
export class KeyEntry {
  readonly key: string;
  readonly all = new Posting();
  readonly column = new Column();
  readonly vids = new Map<string, number>();
  /** vid → value; index 0 unused. */
  readonly values: (string | undefined)[] = [undefined];
  /** vid → slots: a bare number when exactly one node has the value (most ids, hostnames). */
  readonly postings: (Posting | number | undefined)[] = [undefined];
  /** vid → int64 value (null: not an integer), filled lazily by `>`/`<` queries. */
  nums: (number | bigint | null | undefined)[] | undefined;
  readonly freeVids: number[] = [];

  constructor(key: string) {
    this.key = key;
  }

  /** The value id of `value`, allocating one (reusing freed ids) when the value is new. */
  intern(value: string): number {
    const known = this.vids.get(value);
    if (known !== undefined) return known;
    const vid = this.freeVids.pop() ?? this.values.length;
    this.values[vid] = value;
    this.vids.set(value, vid);
    if (this.nums !== undefined) this.nums[vid] = undefined;
    return vid;
  }

  /** Frees a value id once no node has the value, so churn in unique values does not leak. */
  release(vid: number): void {
    const value = this.values[vid];
    if (value !== undefined) this.vids.delete(value);
    this.values[vid] = undefined;
    this.postings[vid] = undefined;
    if (this.nums !== undefined) this.nums[vid] = undefined;
    this.freeVids.push(vid);
  }

  /** The value as an int64 (`null` when it is not one), parsed once per value. */
  num(vid: number): number | bigint | null {
    this.nums ??= [];
    let n = this.nums[vid];
    if (n === undefined) {
      n = parseInt64(this.values[vid] ?? "") ?? null;
      this.nums[vid] = n;
    }
    return n;
  }
}
