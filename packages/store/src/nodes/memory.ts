/**
 * The in-memory {@link NodeStore} and {@link DesiredStateStore}: the dev default and the reference
 * the Redis ones are compared with. They keep the same JSON text as Redis (so records handed out
 * are always copies; a write returns its checked assignments, whose `config` objects are the
 * command's), and apply each write synchronously before its promise settles, so concurrent
 * writes are applied one at a time, like Lua scripts in Redis.
 */
import { EdgeplaneError } from "@edgeplane/core";
import {
  checkNodeRecord,
  checkPutDesired,
  decodeDesired,
  decodeNodeRecord,
  desiredConflict,
  encodeDesiredBody,
  encodeNodeRecord,
  nextRevision,
  revisionExhausted,
  spliceRevision,
} from "./codec.js";
import {
  type DesiredStateRecord,
  type DesiredStateStore,
  MAX_DESIRED_REVISION,
  type NodeRecord,
  type NodeStore,
  type PutDesiredCommand,
  type PutDesiredResult,
} from "./node-store.js";

/**
 * What the memory stores keep. Share one between two store instances to model a control-plane
 * restart over the same data (the stores are then two "processes" on one "Redis").
 */
export interface MemoryNodeData {
  /** node id → node record JSON. */
  readonly nodes: Map<string, string>;
  /** node id → desired state JSON (with its revision). */
  readonly desired: Map<string, string>;
}

/** Fresh, empty data for the memory stores. */
export function createMemoryNodeData(): MemoryNodeData {
  return { nodes: new Map(), desired: new Map() };
}

/** Options of {@link createMemoryNodeStore}. */
export interface MemoryNodeStoreOptions {
  readonly data?: MemoryNodeData;
  /** Called for every stored entry `loadAll` cannot read (it is skipped). */
  readonly onCorrupt?: (id: string, error: Error) => void;
}

/** Creates the memory {@link NodeStore}. */
export function createMemoryNodeStore(options: MemoryNodeStoreOptions = {}): NodeStore {
  const data = options.data ?? createMemoryNodeData();
  return {
    loadAll: async () => {
      const out: NodeRecord[] = [];
      for (const [id, text] of data.nodes) {
        try {
          out.push(decodeNodeRecord(id, text));
        } catch (err) {
          options.onCorrupt?.(id, err as Error);
        }
      }
      return out;
    },
    get: async (id) => {
      const text = data.nodes.get(id);
      return text === undefined ? undefined : decodeNodeRecord(id, text);
    },
    saveMany: async (records) => {
      // Check every record before writing any: the batch is all or nothing.
      const encoded = records.map((r, i) => {
        const checked = checkNodeRecord(r, `records[${i}]`);
        return [checked.id, encodeNodeRecord(checked)] as const;
      });
      for (const [id, text] of encoded) data.nodes.set(id, text);
    },
    close: async () => {},
  };
}

/** Options of {@link createMemoryDesiredStateStore}. */
export interface MemoryDesiredStateStoreOptions {
  readonly data?: MemoryNodeData;
}

/** Creates the memory {@link DesiredStateStore}. */
export function createMemoryDesiredStateStore(
  options: MemoryDesiredStateStoreOptions = {},
): DesiredStateStore {
  const data = options.data ?? createMemoryNodeData();
  const read = (nodeId: string): DesiredStateRecord | undefined => {
    const text = data.desired.get(nodeId);
    return text === undefined ? undefined : decodeDesired(nodeId, text);
  };
  /** One write, applied synchronously (like one step of the Lua script). */
  const write = (cmd: PutDesiredCommand): DesiredStateRecord => {
    const assignments = checkPutDesired(cmd);
    const current = read(cmd.nodeId)?.revision ?? 0;
    if (cmd.expectedRevision !== undefined && cmd.expectedRevision !== current)
      throw desiredConflict(cmd.nodeId, cmd.expectedRevision, current);
    const revision = nextRevision(current, cmd.minRevision);
    if (revision > MAX_DESIRED_REVISION) throw revisionExhausted(cmd.nodeId);
    data.desired.set(cmd.nodeId, spliceRevision(revision, encodeDesiredBody(assignments, cmd.now)));
    return { nodeId: cmd.nodeId, revision, assignments, updatedAt: cmd.now };
  };
  return {
    get: async (nodeId) => read(nodeId),
    loadAll: async () => [...data.desired.keys()].map((id) => read(id) as DesiredStateRecord),
    revisions: async () => {
      const out = new Map<string, number>();
      for (const id of data.desired.keys()) out.set(id, (read(id) as DesiredStateRecord).revision);
      return out;
    },
    put: async (cmd) => write(cmd),
    putMany: async (cmds) =>
      cmds.map((cmd): PutDesiredResult => {
        try {
          return { ok: true, record: write(cmd) };
        } catch (err) {
          return { ok: false, error: EdgeplaneError.from(err) };
        }
      }),
    close: async () => {},
  };
}
