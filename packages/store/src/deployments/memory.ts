/**
 * The in-memory {@link DeploymentStore}, {@link NodeVersionStore} and {@link LeaderLease}: the dev
 * default and the reference the Redis ones are compared with. They keep the same text as Redis
 * (records handed out are always fresh copies) and apply each write synchronously before its
 * promise settles, like a Lua script. Share one {@link MemoryDeploymentData} between instances to
 * model several control planes (or a restart) over one "Redis"; the lease expires by `clock`.
 */
import { type Clock, invalidArgument, systemClock } from "@edgeplane/core";
import {
  checkControlRequest,
  checkDeploymentWrite,
  checkFence,
  checkGuard,
  checkNodeIds,
  checkPositive,
  checkVersionAssignment,
  checkVersionCommand,
  decodeBody,
  decodeNodeTable,
  decodeNodeVersion,
  decodeTargets,
  deploymentConflict,
  deploymentNotFound,
  deploymentStateRefused,
  encodeBody,
  encodeNodeEntries,
  encodeNodeVersion,
  fencedWrite,
  spliceRevision,
} from "./codec.js";
import type {
  DeploymentChange,
  DeploymentGuard,
  DeploymentStore,
  DeploymentSummary,
  DeploymentWrite,
  Fence,
  LeaderLease,
  NodeVersion,
  NodeVersionStore,
  StoredDeployment,
  VersionAssignment,
} from "./deployment-store.js";
import { deploymentMember } from "./keys.js";

interface Row {
  rec: string;
  /** Absent when the last write gave no summary (then `rec` is the summary). */
  sum?: string;
  /** The frozen target list's JSON, when created with one. */
  tgt?: string;
  /** The node table: node id → entry JSON. */
  nodes: Map<string, string>;
  rev: number;
  state: string;
  job: string;
  created: number;
  updated: number;
  control?: string;
  controlReason?: string;
}

/** What the memory stores keep. */
export interface MemoryDeploymentData {
  readonly deployments: Map<string, Row>;
  readonly active: Set<string>;
  readonly changes: DeploymentChange[];
  /** job id → node id → stored version entry. */
  readonly versions: Map<string, Map<string, string>>;
  lease: { value: string; expiresAt: number } | undefined;
  epoch: number;
  seq: number;
  /** Where time comes from for the lease TTL. */
  clock: Clock;
}

/** Fresh, empty data (the lease expires by `clock`, default the wall clock). */
export function createMemoryDeploymentData(clock: Clock = systemClock): MemoryDeploymentData {
  return {
    deployments: new Map(),
    active: new Set(),
    changes: [],
    versions: new Map(),
    lease: undefined,
    epoch: 0,
    seq: 0,
    clock,
  };
}

/** Options of the memory stores. */
export interface MemoryDeploymentStoreOptions {
  readonly data?: MemoryDeploymentData;
  /** Changes kept (oldest dropped), default 10000. */
  readonly changesMaxLen?: number;
}

function liveLease(data: MemoryDeploymentData): { value: string; expiresAt: number } | undefined {
  if (data.lease !== undefined && data.lease.expiresAt <= data.clock.now()) data.lease = undefined;
  return data.lease;
}

/**
 * The fence check of the memory stores, for a memory job store's `fencing` option: throws the
 * fencing error unless the lease in `data` is held with `fence.epoch`.
 */
export function memoryFencing(data: MemoryDeploymentData): (fence: Fence) => void {
  return (fence) => checkFenceOf(data, fence);
}

function checkFenceOf(data: MemoryDeploymentData, fence: Fence | undefined): void {
  if (fence === undefined) return;
  const lease = liveLease(data);
  const current = lease === undefined ? undefined : lease.value.slice(0, lease.value.indexOf("|"));
  if (current !== String(fence.epoch)) throw fencedWrite(fence.epoch, current);
}

function append(data: MemoryDeploymentData, max: number, change: Omit<DeploymentChange, "id">): void {
  data.seq++;
  data.changes.push({ id: String(data.seq), ...change });
  if (data.changes.length > max) data.changes.splice(0, data.changes.length - max);
}

/** What every read of a row shows besides its body (`record` or `summary`). */
function headOf(id: string, row: Row): Omit<StoredDeployment, "record" | "nodes" | "targets"> {
  return {
    id,
    jobId: row.job,
    state: row.state,
    revision: row.rev,
    createdAt: row.created,
    updatedAt: row.updated,
    ...(row.control !== undefined ? { control: row.control } : {}),
    ...(row.control !== undefined && row.controlReason !== undefined
      ? { controlReason: row.controlReason }
      : {}),
  };
}

function summaryOf(id: string, row: Row): DeploymentSummary {
  return { ...headOf(id, row), summary: decodeBody(id, "summary", row.sum ?? row.rec) };
}

function storedOf(id: string, row: Row): StoredDeployment {
  return {
    ...headOf(id, row),
    record: decodeBody(id, "record", row.rec),
    nodes: decodeNodeTable(id, row.nodes),
    ...(row.tgt !== undefined ? { targets: decodeTargets(id, row.tgt) } : {}),
  };
}

/** Upserts a write's node entries (stored as text, like Redis; the last of a repeated id wins). */
function writeNodes(row: Row, entries: string[]): void {
  for (let i = 0; i + 1 < entries.length; i += 2)
    row.nodes.set(entries[i] as string, entries[i + 1] as string);
}

/** The versions map of one job (created empty when it has none). */
function versionsOf(data: MemoryDeploymentData, jobId: string): Map<string, string> {
  let m = data.versions.get(jobId);
  if (m === undefined) {
    m = new Map();
    data.versions.set(jobId, m);
  }
  return m;
}

/**
 * For each node whose version of `jobId` is not `version`: remembers the current one as the
 * previous and sets `version`, assigned by `deploymentId`. Returns the nodes that changed.
 */
function assignVersions(
  data: MemoryDeploymentData,
  jobId: string,
  version: number,
  deploymentId: string,
  nodeIds: readonly string[],
): string[] {
  const m = versionsOf(data, jobId);
  const changed: string[] = [];
  for (const node of nodeIds) {
    const cur = decodeNodeVersion(m.get(node) ?? "");
    const cv = cur?.version ?? 0;
    if (cv === version) continue;
    m.set(
      node,
      encodeNodeVersion({
        version,
        deploymentId,
        previousVersion: cv,
        previousDeploymentId: cur?.deploymentId ?? "",
      }),
    );
    changed.push(node);
  }
  return changed;
}

/** Creates the memory {@link DeploymentStore}. */
export function createMemoryDeploymentStore(options: MemoryDeploymentStoreOptions = {}): DeploymentStore {
  const data = options.data ?? createMemoryDeploymentData();
  const max = options.changesMaxLen ?? 10_000;
  const setActive = (id: string, active: boolean) => {
    if (active) data.active.add(id);
    else data.active.delete(id);
  };
  /** `update`, assigning versions in the same step when `assign` is given (like the Lua script). */
  const update = (
    write: DeploymentWrite,
    guard: DeploymentGuard,
    assign: VersionAssignment | undefined,
  ): { revision: number; assigned: string[] } => {
    checkDeploymentWrite(write, "update");
    checkGuard(guard);
    if (assign !== undefined) checkVersionAssignment(assign);
    checkFenceOf(data, guard.fence);
    const row = data.deployments.get(write.id);
    if (row === undefined) throw deploymentNotFound(write.id);
    if (row.rev !== guard.expectedRevision)
      throw deploymentConflict(write.id, guard.expectedRevision, row.rev);
    if (guard.allowedFrom !== undefined && !guard.allowedFrom.includes(row.state))
      throw deploymentStateRefused(write.id, row.state, write.state, guard.allowedFrom);
    // Encoded before the first change: a write that cannot be encoded changes nothing.
    const rev = row.rev + 1;
    const rec = spliceRevision(rev, encodeBody(write.record));
    const sum = write.summary === undefined ? undefined : spliceRevision(rev, encodeBody(write.summary));
    const entries = encodeNodeEntries(write.nodes);
    row.rec = rec;
    if (sum === undefined) delete row.sum;
    else row.sum = sum;
    writeNodes(row, entries);
    row.rev = rev;
    row.state = write.state;
    row.updated = write.now;
    const assigned =
      assign === undefined ? [] : assignVersions(data, write.jobId, assign.version, write.id, assign.nodeIds);
    setActive(write.id, write.active);
    append(data, max, {
      deploymentId: write.id,
      jobId: row.job,
      kind: "updated",
      revision: rev,
      state: write.state,
    });
    return { revision: rev, assigned };
  };
  return {
    async create(write, fence) {
      checkDeploymentWrite(write, "create");
      checkFence(fence);
      checkFenceOf(data, fence);
      const existing = data.deployments.get(write.id);
      if (existing !== undefined) return { created: false, deployment: storedOf(write.id, existing) };
      const row: Row = {
        rec: spliceRevision(1, encodeBody(write.record)),
        ...(write.summary !== undefined ? { sum: spliceRevision(1, encodeBody(write.summary)) } : {}),
        ...(write.targets !== undefined ? { tgt: JSON.stringify(write.targets) } : {}),
        nodes: new Map(),
        rev: 1,
        state: write.state,
        job: write.jobId,
        created: write.createdAt,
        updated: write.now,
      };
      writeNodes(row, encodeNodeEntries(write.nodes));
      data.deployments.set(write.id, row);
      setActive(write.id, write.active);
      append(data, max, {
        deploymentId: write.id,
        jobId: write.jobId,
        kind: "created",
        revision: 1,
        state: write.state,
      });
      return { created: true, deployment: storedOf(write.id, row) };
    },
    async update(write, guard) {
      return update(write, guard, undefined).revision;
    },
    async updateAssigning(write, guard, assign) {
      return update(write, guard, assign);
    },
    async get(id) {
      const row = data.deployments.get(id);
      return row === undefined ? undefined : storedOf(id, row);
    },
    async getSummary(id) {
      const row = data.deployments.get(id);
      return row === undefined ? undefined : summaryOf(id, row);
    },
    async list(query) {
      const limit = Math.max(1, Math.min(1000, Math.floor(query.limit)));
      const after = query.cursor ? deploymentMember(query.cursor.createdAt, query.cursor.id) : undefined;
      const members: Array<{ member: string; id: string; row: Row }> = [];
      for (const [id, row] of data.deployments) {
        if (query.jobId && row.job !== query.jobId) continue;
        const member = deploymentMember(row.created, id);
        if (after !== undefined && member >= after) continue;
        members.push({ member, id, row });
      }
      members.sort((a, b) => (a.member < b.member ? 1 : a.member > b.member ? -1 : 0));
      const page = members.slice(0, limit);
      const items = page.map((m) => summaryOf(m.id, m.row));
      const last = page[page.length - 1];
      return members.length > limit && last !== undefined
        ? { items, next: { createdAt: last.row.created, id: last.id } }
        : { items };
    },
    async listActive() {
      return [...data.active].sort();
    },
    async requestControl(id, control, _now, reason) {
      checkControlRequest(control, reason);
      const row = data.deployments.get(id);
      if (row === undefined) throw deploymentNotFound(id);
      row.control = control;
      if (reason) row.controlReason = reason;
      else delete row.controlReason;
      append(data, max, {
        deploymentId: id,
        jobId: row.job,
        kind: "control",
        revision: row.rev,
        state: row.state,
      });
    },
    async clearControl(id, control) {
      const row = data.deployments.get(id);
      if (row?.control === control) {
        delete row.control;
        delete row.controlReason;
      }
    },
    async readChanges(after, count) {
      if (!/^\d+$/.test(after))
        throw invalidArgument("after", `not a position of this stream: ${JSON.stringify(after)}`);
      const from = Number(after);
      return data.changes.filter((c) => Number(c.id) > from).slice(0, Math.max(0, count));
    },
    async lastChange() {
      return data.changes[data.changes.length - 1]?.id ?? "0";
    },
    close: async () => {},
  };
}

/** Creates the memory {@link NodeVersionStore}. */
export function createMemoryNodeVersionStore(options: MemoryDeploymentStoreOptions = {}): NodeVersionStore {
  const data = options.data ?? createMemoryDeploymentData();
  return {
    async assign(cmd) {
      checkVersionCommand(cmd);
      checkNodeIds(cmd.nodeIds);
      if (/[|\s]/.test(cmd.deploymentId)) throw invalidArgument("deployment_id", "must not contain '|'");
      checkFenceOf(data, cmd.fence);
      return assignVersions(data, cmd.jobId, cmd.version, cmd.deploymentId, cmd.nodeIds);
    },
    async unassign(cmd) {
      checkVersionCommand(cmd);
      checkNodeIds(cmd.nodeIds);
      checkFenceOf(data, cmd.fence);
      const m = versionsOf(data, cmd.jobId);
      const changed: string[] = [];
      for (const node of cmd.nodeIds) {
        const cur = decodeNodeVersion(m.get(node) ?? "");
        if (cur === undefined || cur.version !== cmd.version) continue;
        if (cur.previousVersion === 0) m.delete(node);
        else
          m.set(
            node,
            encodeNodeVersion({
              version: cur.previousVersion,
              deploymentId: cur.previousDeploymentId,
              previousVersion: 0,
              previousDeploymentId: "",
            }),
          );
        changed.push(node);
      }
      return changed;
    },
    async load(jobId) {
      const out = new Map<string, NodeVersion>();
      for (const [node, text] of data.versions.get(jobId) ?? []) {
        const v = decodeNodeVersion(text);
        if (v !== undefined) out.set(node, v);
      }
      return out;
    },
    async drop(jobId, fence) {
      checkFence(fence);
      checkFenceOf(data, fence);
      data.versions.delete(jobId);
    },
    close: async () => {},
  };
}

/** Creates the memory {@link LeaderLease}. */
export function createMemoryLeaderLease(options: MemoryDeploymentStoreOptions = {}): LeaderLease {
  const data = options.data ?? createMemoryDeploymentData();
  const checkHolder = (holder: string) => {
    if (typeof holder !== "string" || holder.length === 0 || holder.length > 200 || holder.includes("|"))
      throw invalidArgument("holder", "must be 1-200 characters without '|'");
  };
  return {
    async acquire(holder, ttlMs) {
      checkHolder(holder);
      checkPositive("ttl_ms", ttlMs);
      const now = data.clock.now();
      const lease = liveLease(data);
      if (lease !== undefined) {
        const bar = lease.value.indexOf("|");
        const epoch = Number(lease.value.slice(0, bar));
        const h = lease.value.slice(bar + 1);
        if (h === holder) {
          lease.expiresAt = now + ttlMs;
          return { held: true, epoch, fresh: false };
        }
        return { held: false, holder: { holder: h, epoch, ttlMs: lease.expiresAt - now } };
      }
      data.epoch++;
      data.lease = { value: `${data.epoch}|${holder}`, expiresAt: now + ttlMs };
      return { held: true, epoch: data.epoch, fresh: true };
    },
    async release(holder, epoch) {
      checkHolder(holder);
      if (liveLease(data)?.value === `${epoch}|${holder}`) data.lease = undefined;
    },
    async current() {
      const lease = liveLease(data);
      if (lease === undefined) return undefined;
      const bar = lease.value.indexOf("|");
      return {
        epoch: Number(lease.value.slice(0, bar)),
        holder: lease.value.slice(bar + 1),
        ttlMs: lease.expiresAt - data.clock.now(),
      };
    },
    close: async () => {},
  };
}
