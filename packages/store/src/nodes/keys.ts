/**
 * Every Redis key of the node registry and of the per-node desired state, built here and only
 * here (and mirrored in the Lua scripts through KEYS, never spelled there).
 *
 * Layout (default prefix `ep:`; tests use a random prefix to isolate themselves):
 *
 * | key                    | type | holds                                                             |
 * |------------------------|------|-------------------------------------------------------------------|
 * | `ep:nodes:rec`         | hash | node id → node record JSON (`node-codec.ts`)                      |
 * | `ep:nodes:desired`     | hash | node id → desired state JSON (revision + assignment set)          |
 * | `ep:nodes:desired-rev` | hash | node id → desired revision (read in bulk at start, without sets)  |
 *
 * One hash per collection keeps the startup load to one `HSCAN` per hash and a coalesced batch
 * of node writes to one `HSET` per chunk inside one `MULTI`. For Redis Cluster, give a prefix with
 * a hash tag (`{ep}:`): the desired-state script writes two keys, so both must live in one slot.
 */

/** The default key prefix (shared with the job store). */
export const DEFAULT_NODE_PREFIX = "ep:";

/** The keys of one node store (one prefix). */
export interface NodeStoreKeys {
  readonly prefix: string;
  /** Hash: node id → node record JSON. */
  readonly records: string;
  /** Hash: node id → desired state JSON. */
  readonly desired: string;
  /** Hash: node id → desired revision. */
  readonly desiredRevisions: string;
}

/** Builds the keys of a node store with this prefix. */
export function nodeStoreKeys(prefix: string = DEFAULT_NODE_PREFIX): NodeStoreKeys {
  return {
    prefix,
    records: `${prefix}nodes:rec`,
    desired: `${prefix}nodes:desired`,
    desiredRevisions: `${prefix}nodes:desired-rev`,
  };
}
