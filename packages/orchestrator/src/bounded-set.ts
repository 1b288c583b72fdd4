/**
 * A set of at most `capacity` strings that forgets the least recently seen one first (an LRU of
 * keys): de-duplicates execution events by id with bounded memory.
 */
export class BoundedSet {
  readonly #items = new Set<string>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = Math.max(1, Math.floor(capacity));
  }

  get size(): number {
    return this.#items.size;
  }

  /** Adds `key`; returns false when it was already there (and marks it recently seen). */
  add(key: string): boolean {
    if (this.#items.has(key)) {
      this.#items.delete(key);
      this.#items.add(key);
      return false;
    }
    this.#items.add(key);
    if (this.#items.size > this.#capacity) {
      const oldest = this.#items.values().next().value;
      if (oldest !== undefined) this.#items.delete(oldest);
    }
    return true;
  }

  has(key: string): boolean {
    return this.#items.has(key);
  }
}
