/**
 * The in-memory {@link ExecutionStore} and {@link LogStore}: the dev default and the reference
 * the Redis ones (`scripts.lua.ts`) mirror. They keep the same stored forms as Redis (field maps,
 * line texts), so byte bounds and copies behave identically, and apply each write synchronously
 * before its promise settles, like a Lua script.
 */
import { invalidArgument } from "@edgeplane/core";
import {
  alreadyEnded,
  checkIdentity,
  checkLogLines,
  checkReport,
  decodeExecution,
  decodeLogLine,
  encodeLogLine,
  executionNotFound,
  logBounds,
  numberLogLine,
  observedFields,
  placeholderFields,
  type StoredFields,
} from "./codec.js";
import { isEndedExecutionState, isTerminalExecutionState, reportApplies } from "./execution-state.js";
import type {
  ExecutionIdentity,
  ExecutionRecord,
  ExecutionStore,
  ListExecutionsQuery,
  LogBounds,
  LogStore,
} from "./execution-store.js";
import { executionMember } from "./keys.js";

/** What the memory execution store keeps; share one to model a restart over the same data. */
export interface MemoryExecutionData {
  /** id → stored fields. */
  readonly records: Map<string, StoredFields>;
}

/** Fresh, empty data for the memory execution store. */
export function createMemoryExecutionData(): MemoryExecutionData {
  return { records: new Map() };
}

/** Options of {@link createMemoryExecutionStore}. */
export interface MemoryExecutionStoreOptions {
  readonly data?: MemoryExecutionData;
}

/** The page-size bound every store enforces. */
export const MAX_EXECUTION_PAGE = 1000;

/** Checks a list query's limit and scan bound. */
export function checkListQuery(q: ListExecutionsQuery): { limit: number; maxScan: number } {
  if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > MAX_EXECUTION_PAGE)
    throw invalidArgument("limit", `must be an integer from 1 to ${MAX_EXECUTION_PAGE}`);
  const maxScan = q.maxScan ?? Math.max(1000, 10 * q.limit);
  if (!Number.isInteger(maxScan) || maxScan < 1) throw invalidArgument("max_scan", "must be >= 1");
  if (typeof q.jobId !== "string" || q.jobId === "") throw invalidArgument("job_id", "is required");
  return { limit: q.limit, maxScan };
}

/** Creates the memory {@link ExecutionStore}. */
export function createMemoryExecutionStore(options: MemoryExecutionStoreOptions = {}): ExecutionStore {
  const records = (options.data ?? createMemoryExecutionData()).records;
  const read = (id: string): ExecutionRecord | undefined => {
    const f = records.get(id);
    return f === undefined ? undefined : decodeExecution(f);
  };
  const create = (identity: ExecutionIdentity, now: number): void => {
    records.set(identity.id, placeholderFields(identity, now));
  };
  const ofNode = (nodeId: string): Array<[string, StoredFields]> =>
    [...records].filter(([, f]) => f.node_id === nodeId && f.archived !== "1");

  return {
    observe: async (input, identity) => {
      const r = checkReport(input);
      const ident = identity === undefined ? undefined : checkIdentity(identity);
      if (ident !== undefined && (ident.id !== r.id || ident.nodeId !== r.nodeId))
        throw invalidArgument("create", "must name the report's execution and node");
      let f = records.get(r.id);
      let previous: ExecutionRecord["state"] | undefined;
      if (f === undefined) {
        if (ident === undefined) return { status: "missing" };
        create(ident, r.now);
        f = records.get(r.id) as StoredFields;
      } else {
        const cur = decodeExecution(f);
        if (cur.archived) return { status: "archived", record: cur };
        if (cur.nodeId !== r.nodeId) return { status: "wrong_node", owner: cur.nodeId };
        if (!reportApplies(cur, r)) return { status: "stale", record: cur };
        previous = cur.state;
      }
      Object.assign(f, observedFields(r), {
        state: r.state,
        attempt: String(r.attempt),
        reported_at: String(r.reportedAt),
        updated_at: String(r.now),
      });
      if (isEndedExecutionState(r.state)) {
        if (f.ended_at === "0") f.ended_at = String(r.now);
      } else f.ended_at = "0";
      return { status: "applied", record: decodeExecution(f), previous };
    },
    ensure: async (identities, now) => {
      const checked = identities.map((x, i) => checkIdentity(x, `identities[${i}]`));
      const out: string[] = [];
      for (const x of checked) {
        if (records.has(x.id)) continue;
        create(x, now);
        out.push(x.id);
      }
      return out;
    },
    withdraw: async (nodeId, keep) => {
      const kept = new Set(keep);
      const out: Array<{ id: string; jobId: string }> = [];
      for (const [id, f] of ofNode(nodeId)) {
        if (kept.has(id) || f.reported_at !== "0") continue;
        records.delete(id);
        out.push({ id, jobId: f.job_id ?? "" });
      }
      return out;
    },
    markLost: async (nodeId, now, message) => {
      const out: ExecutionRecord[] = [];
      for (const [, f] of ofNode(nodeId)) {
        if (isEndedExecutionState(f.state ?? "")) continue;
        Object.assign(f, {
          state: "lost",
          exception: message,
          updated_at: String(now),
          ended_at: String(now),
        });
        out.push(decodeExecution(f));
      }
      return out;
    },
    requestStop: async (id, now, reason) => {
      const f = records.get(id);
      if (f === undefined) throw executionNotFound(id);
      const state = f.state ?? "";
      if (isTerminalExecutionState(state)) throw alreadyEnded(id, state);
      if (f.archived === "1") throw alreadyEnded(id, "archived");
      if (f.desired_state === "stopped") return { record: decodeExecution(f), changed: false };
      Object.assign(f, {
        desired_state: "stopped",
        cancel_reason: reason,
        canceled_at: String(now),
        updated_at: String(now),
      });
      return { record: decodeExecution(f), changed: true };
    },
    get: async (id) => read(id),
    list: async (q) => {
      const { limit, maxScan } = checkListQuery(q);
      const states = q.states && q.states.length > 0 ? new Set<string>(q.states) : undefined;
      const after = q.cursor ? executionMember(q.cursor.createdAt, q.cursor.id) : "";
      const candidates: Array<{ member: string; f: StoredFields }> = [];
      for (const f of records.values()) {
        if (f.job_id !== q.jobId || (f.archived === "1" && !q.includeArchived)) continue;
        const member = executionMember(Number(f.created_at), f.id ?? "");
        if (member > after) candidates.push({ member, f });
      }
      candidates.sort((a, b) => (a.member < b.member ? -1 : a.member > b.member ? 1 : 0));
      const items: ExecutionRecord[] = [];
      let examined = 0;
      for (const c of candidates) {
        if (items.length >= limit || examined >= maxScan) {
          const last = candidates[examined - 1] as (typeof candidates)[number];
          return {
            items,
            next: { createdAt: Number(last.f.created_at), id: last.f.id ?? "" },
          };
        }
        examined++;
        if (states && !states.has(c.f.state ?? "")) continue;
        if (q.nodeId && c.f.node_id !== q.nodeId) continue;
        items.push(decodeExecution(c.f));
      }
      return { items };
    },
    archive: async (endedBefore, now, limit) => {
      const due = [...records.values()]
        .filter((f) => f.archived !== "1" && f.ended_at !== "0" && Number(f.ended_at) <= endedBefore)
        .sort((a, b) => Number(a.ended_at) - Number(b.ended_at) || ((a.id ?? "") < (b.id ?? "") ? -1 : 1))
        .slice(0, limit);
      for (const f of due)
        Object.assign(f, { archived: "1", archived_at: String(now), updated_at: String(now) });
      return due.map((f) => f.id ?? "");
    },
    purge: async (archivedBefore, limit) => {
      const due = [...records.values()]
        .filter((f) => f.archived === "1" && Number(f.archived_at) <= archivedBefore)
        .sort(
          (a, b) => Number(a.archived_at) - Number(b.archived_at) || ((a.id ?? "") < (b.id ?? "") ? -1 : 1),
        )
        .slice(0, limit);
      for (const f of due) records.delete(f.id ?? "");
      return due.map((f) => f.id ?? "");
    },
    close: async () => {},
  };
}

/** One execution's log in memory: the stored line texts (oldest first) and the counters. */
interface MemoryLog {
  lines: string[];
  head: number;
  n: number;
  bytes: number;
  dropped: number;
  agentDropped: number;
  lastTime: number;
  lastAgentSeq: number;
}

/** Options of {@link createMemoryLogStore}. */
export interface MemoryLogStoreOptions extends LogBounds {
  /** id → log; share one to model a restart over the same data. */
  readonly data?: Map<string, unknown>;
}

/** Creates the memory {@link LogStore}. */
export function createMemoryLogStore(options: MemoryLogStoreOptions = {}): LogStore {
  const bounds = logBounds(options);
  const logs = (options.data ?? new Map()) as Map<string, MemoryLog>;
  const kept = (l: MemoryLog): number => l.lines.length - l.head;
  return {
    bounds,
    append: async (executionId, input, agentDropped) => {
      const lines = checkLogLines(input);
      let l = logs.get(executionId);
      if (l === undefined) {
        l = {
          lines: [],
          head: 0,
          n: 0,
          bytes: 0,
          dropped: 0,
          agentDropped: 0,
          lastTime: -1,
          lastAgentSeq: -1,
        };
        logs.set(executionId, l);
      }
      let appended = 0;
      for (const line of lines) {
        if (!(line.time > l.lastTime || (line.time === l.lastTime && line.agentSeq > l.lastAgentSeq)))
          continue;
        l.n++;
        const text = numberLogLine(l.n, encodeLogLine(line));
        l.lines.push(text);
        l.bytes += Buffer.byteLength(text);
        l.lastTime = line.time;
        l.lastAgentSeq = line.agentSeq;
        appended++;
      }
      if (appended === 0) return { appended, lastSeq: l.n, dropped: l.dropped + l.agentDropped };
      l.agentDropped += Math.max(0, Math.floor(agentDropped));
      while (kept(l) > 0 && (kept(l) > bounds.maxLines || l.bytes > bounds.maxBytes)) {
        l.bytes -= Buffer.byteLength(l.lines[l.head] as string);
        l.head++;
        l.dropped++;
      }
      if (l.head > 1024 && l.head * 2 > l.lines.length) {
        l.lines = l.lines.slice(l.head);
        l.head = 0;
      }
      return { appended, lastSeq: l.n, dropped: l.dropped + l.agentDropped };
    },
    read: async (executionId, query = {}) => {
      const l = logs.get(executionId);
      if (l === undefined) return { lines: [], dropped: 0, lastSeq: 0 };
      const len = kept(l);
      const limit = Math.min(query.limit ?? bounds.maxLines, bounds.maxLines);
      let start: number;
      if (query.after !== undefined) start = Math.max(0, query.after + 1 - (l.n - len + 1));
      else start = query.tail && query.tail > 0 ? Math.max(0, len - query.tail) : 0;
      const texts = l.lines.slice(l.head + start, l.head + start + Math.max(0, limit));
      return { lines: texts.map(decodeLogLine), dropped: l.dropped + l.agentDropped, lastSeq: l.n };
    },
    delete: async (ids) => {
      for (const id of ids) logs.delete(id);
    },
    close: async () => {},
  };
}
