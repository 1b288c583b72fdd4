/**
 * The Redis {@link DeploymentStore}, {@link NodeVersionStore} and {@link LeaderLease}
 * (production). Keys come from `keys.ts`; every write is one Lua script from `lua.ts`.
 */
import { EdgeplaneError, invalidArgument, isEdgeplaneError } from "@edgeplane/core";
import { Redis } from "ioredis";
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
  fencedWrite,
} from "./codec.js";
import type {
  DeploymentChange,
  DeploymentGuard,
  DeploymentStore,
  DeploymentSummary,
  DeploymentWrite,
  LeaderLease,
  LeaseHolder,
  NodeVersion,
  NodeVersionStore,
  StoredDeployment,
  VersionAssignment,
} from "./deployment-store.js";
import {
  DEFAULT_DEPLOYMENT_PREFIX,
  type DeploymentStoreKeys,
  deploymentMember,
  deploymentStoreKeys,
} from "./keys.js";
import {
  acquireLeaseLua,
  assignVersionsLua,
  clearControlLua,
  createDeploymentLua,
  DEPLOYMENT_FAILURES,
  dropVersionsLua,
  readSummariesLua,
  releaseLeaseLua,
  requestControlLua,
  unassignVersionsLua,
  updateDeploymentLua,
} from "./lua.js";

/** Options of the Redis deployment stores. */
export interface RedisDeploymentStoreOptions {
  /**
   * A connected ioredis client (the caller keeps owning it: `close()` leaves it open), or a URL
   * (the store connects, and `close()` quits). Do not set ioredis' `keyPrefix`; use `prefix`.
   */
  readonly redis: Redis | string;
  /** Prefix of every key (default `ep:`); tests use a random one. */
  readonly prefix?: string;
  /** Approximate cap of the change stream, default 10000. */
  readonly changesMaxLen?: number;
}

/** The Redis deployment store, with its keys and client. */
export interface RedisDeploymentStore extends DeploymentStore {
  readonly keys: DeploymentStoreKeys;
  readonly redis: Redis;
}

const SCRIPTS = {
  edgeplaneCreateDeployment: { keys: 7, lua: createDeploymentLua },
  edgeplaneUpdateDeployment: { keys: 6, lua: updateDeploymentLua },
  edgeplaneRequestControl: { keys: 2, lua: requestControlLua },
  edgeplaneClearControl: { keys: 1, lua: clearControlLua },
  edgeplaneAssignVersions: { keys: 2, lua: assignVersionsLua },
  edgeplaneUnassignVersions: { keys: 2, lua: unassignVersionsLua },
  edgeplaneDropVersions: { keys: 2, lua: dropVersionsLua },
  edgeplaneAcquireLease: { keys: 2, lua: acquireLeaseLua },
  edgeplaneReleaseLease: { keys: 1, lua: releaseLeaseLua },
  // Any number of keys: the runner passes their count first.
  edgeplaneReadSummaries: { keys: undefined, lua: readSummariesLua },
} as const;
type ScriptName = keyof typeof SCRIPTS;

function clientOf(redis: Redis | string): { client: Redis; owned: boolean } {
  if (typeof redis !== "string") {
    if (redis.options.keyPrefix)
      throw invalidArgument("redis", "the client must not set keyPrefix; pass `prefix` to the store instead");
    return { client: redis, owned: false };
  }
  return { client: new Redis(redis, { maxRetriesPerRequest: null }), owned: true };
}

function defineScripts(redis: Redis): void {
  for (const [name, def] of Object.entries(SCRIPTS)) {
    if (typeof (redis as unknown as Record<string, unknown>)[name] === "function") continue;
    // defineCommand sends EVALSHA and falls back to EVAL, so a Redis restart that forgot it is fine.
    redis.defineCommand(
      name,
      def.keys === undefined ? { lua: def.lua } : { numberOfKeys: def.keys, lua: def.lua },
    );
  }
}

/** Anything Redis throws, as an EdgeplaneError (connection problems are `unavailable`). */
function storeError(err: unknown, what: string): EdgeplaneError {
  if (isEdgeplaneError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new EdgeplaneError("unavailable", `${what}: ${message}`, { cause: err });
}

function scriptRunner(redis: Redis) {
  defineScripts(redis);
  return async (
    name: ScriptName,
    keys: readonly string[],
    args: ReadonlyArray<string | number>,
    what: string,
  ): Promise<unknown[]> => {
    const fn = (redis as unknown as Record<string, (a: Array<string | number>) => Promise<unknown>>)[name];
    if (fn === undefined) throw new EdgeplaneError("internal", `script ${name} is not registered`);
    try {
      // One array argument (ioredis flattens it), not spread: a write of 100,000 node entries
      // has 200,000 arguments, more than a JavaScript call takes.
      const counted = SCRIPTS[name].keys === undefined ? [keys.length, ...keys] : keys;
      return (await fn.call(redis, [...counted, ...args])) as unknown[];
    } catch (err) {
      throw storeError(err, what);
    }
  };
}

/** Maps a coded refusal to its error, or returns when the reply is a success. */
function failure(
  reply: unknown[],
  ctx: { id?: string; expected?: number; target?: string; allowed?: readonly string[]; epoch?: number },
): void {
  const code = reply[0];
  if (typeof code !== "number" || code >= 0) return;
  switch (code) {
    case DEPLOYMENT_FAILURES.NOT_FOUND:
      throw deploymentNotFound(ctx.id ?? "");
    case DEPLOYMENT_FAILURES.REVISION_CONFLICT:
      throw deploymentConflict(ctx.id ?? "", ctx.expected ?? 0, Number(reply[1]));
    case DEPLOYMENT_FAILURES.ILLEGAL_STATE:
      throw deploymentStateRefused(ctx.id ?? "", String(reply[1]), ctx.target ?? "", ctx.allowed ?? []);
    case DEPLOYMENT_FAILURES.FENCED:
      throw fencedWrite(ctx.epoch ?? 0, reply[1] === "" || reply[1] === null ? undefined : String(reply[1]));
    default:
      throw new EdgeplaneError("internal", `unknown deployment store script failure ${code}`);
  }
}

function changeOf(id: string, fields: string[]): DeploymentChange {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
  return {
    id,
    deploymentId: f.dep ?? "",
    jobId: f.job ?? "",
    kind: (f.kind ?? "updated") as DeploymentChange["kind"],
    revision: Number(f.rev ?? 0),
    state: f.state ?? "",
  };
}

/** The hash fields every read of a deployment takes after its body (`rec` or `sum`), in order. */
const HEAD_FIELDS = ["rev", "state", "job", "created", "updated", "control", "control_reason"] as const;

/** The head of a stored deployment from the values of {@link HEAD_FIELDS}. */
function headOf(
  id: string,
  v: ReadonlyArray<string | null | undefined>,
): Omit<StoredDeployment, "record" | "nodes" | "targets"> {
  const [rev, state, job, created, updated, control, controlReason] = v;
  return {
    id,
    jobId: job ?? "",
    state: state ?? "",
    revision: Number(rev),
    createdAt: Number(created),
    updatedAt: Number(updated),
    ...(control ? { control } : {}),
    ...(control && controlReason ? { controlReason } : {}),
  };
}

/** Creates the Redis {@link DeploymentStore}. */
export function createRedisDeploymentStore(options: RedisDeploymentStoreOptions): RedisDeploymentStore {
  const { client: redis, owned } = clientOf(options.redis);
  const keys = deploymentStoreKeys(options.prefix ?? DEFAULT_DEPLOYMENT_PREFIX);
  const maxLen = options.changesMaxLen ?? 10_000;
  const run = scriptRunner(redis);

  /** Summaries of `ids` (unknown ones left out), in order: one script call (`readSummariesLua`). */
  async function summaries(ids: readonly string[]): Promise<DeploymentSummary[]> {
    if (ids.length === 0) return [];
    const rows = (await run(
      "edgeplaneReadSummaries",
      ids.map((id) => keys.deployment(id)),
      [],
      "reading deployments",
    )) as Array<Array<string | null>>;
    const out: DeploymentSummary[] = [];
    ids.forEach((id, i) => {
      const [body, ...head] = rows[i] ?? [];
      if (body === null || body === undefined || head[0] === null || head[0] === undefined) return;
      out.push({ ...headOf(id, head), summary: decodeBody(id, "summary", body) });
    });
    return out;
  }

  /** `update`, assigning versions in the same script when `assign` is given. */
  async function update(
    write: DeploymentWrite,
    guard: DeploymentGuard,
    assign: VersionAssignment | undefined,
  ): Promise<{ revision: number; assigned: string[] }> {
    checkDeploymentWrite(write, "update");
    checkGuard(guard);
    if (assign !== undefined) checkVersionAssignment(assign);
    const assignIds = assign?.nodeIds ?? [];
    const reply = await run(
      "edgeplaneUpdateDeployment",
      [
        keys.deployment(write.id),
        keys.active,
        keys.changes,
        keys.lease,
        keys.deploymentNodes(write.id),
        keys.versions(write.jobId),
      ],
      [
        write.id,
        write.jobId,
        write.state,
        write.active ? "1" : "0",
        write.now,
        encodeBody(write.record),
        write.summary === undefined ? "" : encodeBody(write.summary),
        guard.expectedRevision,
        guard.allowedFrom === undefined ? "*" : guard.allowedFrom.join(","),
        guard.fence?.epoch ?? "",
        maxLen,
        assign === undefined ? "" : assign.version,
        assignIds.length,
        ...assignIds,
        ...encodeNodeEntries(write.nodes),
      ],
      `writing deployment ${write.id}`,
    );
    failure(reply, {
      id: write.id,
      expected: guard.expectedRevision,
      target: write.state,
      allowed: guard.allowedFrom,
      epoch: guard.fence?.epoch,
    });
    return { revision: Number(reply[1]), assigned: (reply[2] as string[] | undefined) ?? [] };
  }

  return {
    keys,
    redis,
    async create(write, fence) {
      checkDeploymentWrite(write, "create");
      checkFence(fence);
      const reply = await run(
        "edgeplaneCreateDeployment",
        [
          keys.deployment(write.id),
          keys.jobIndex(write.jobId),
          keys.all,
          keys.active,
          keys.changes,
          keys.lease,
          keys.deploymentNodes(write.id),
        ],
        [
          write.id,
          write.jobId,
          write.state,
          write.active ? "1" : "0",
          write.createdAt,
          write.now,
          encodeBody(write.record),
          write.summary === undefined ? "" : encodeBody(write.summary),
          deploymentMember(write.createdAt, write.id),
          fence?.epoch ?? "",
          maxLen,
          write.targets === undefined ? "" : JSON.stringify(write.targets),
          ...encodeNodeEntries(write.nodes),
        ],
        `creating deployment ${write.id}`,
      );
      failure(reply, { id: write.id, epoch: fence?.epoch });
      if (reply[0] === 1) {
        return {
          created: true,
          deployment: {
            id: write.id,
            jobId: write.jobId,
            state: write.state,
            revision: 1,
            createdAt: write.createdAt,
            updatedAt: write.now,
            record: { ...write.record, revision: 1 },
            nodes: Object.fromEntries(write.nodes ?? []),
            ...(write.targets !== undefined ? { targets: [...write.targets] } : {}),
          },
        };
      }
      const existing = await this.get(write.id);
      if (existing === undefined) throw deploymentNotFound(write.id);
      return { created: false, deployment: existing };
    },
    async update(write, guard) {
      return (await update(write, guard, undefined)).revision;
    },
    updateAssigning(write, guard, assign) {
      return update(write, guard, assign);
    },
    async get(id) {
      // MULTI: the record and its node table as of one moment (no update in between).
      let results: Array<[Error | null, unknown]> | null;
      try {
        results = await redis
          .multi()
          .hmget(keys.deployment(id), "rec", "tgt", ...HEAD_FIELDS)
          .hgetall(keys.deploymentNodes(id))
          .exec();
      } catch (err) {
        throw storeError(err, `reading deployment ${id}`);
      }
      const [[headErr, v] = [null, null], [nodesErr, table] = [null, null]] = results ?? [];
      if (headErr || nodesErr) throw storeError(headErr ?? nodesErr, `reading deployment ${id}`);
      const [rec, tgt, ...head] = (v as Array<string | null> | null) ?? [];
      if (rec === null || rec === undefined) return undefined;
      return {
        ...headOf(id, head),
        record: decodeBody(id, "record", rec),
        nodes: decodeNodeTable(id, Object.entries((table as Record<string, string> | null) ?? {})),
        ...(tgt ? { targets: decodeTargets(id, tgt) } : {}),
      };
    },
    async getSummary(id) {
      return (await summaries([id]))[0];
    },
    async list(query) {
      const limit = Math.max(1, Math.min(1000, Math.floor(query.limit)));
      const key = query.jobId ? keys.jobIndex(query.jobId) : keys.all;
      const max = query.cursor ? `(${deploymentMember(query.cursor.createdAt, query.cursor.id)}` : "+";
      let members: string[];
      try {
        members = await redis.zrevrangebylex(key, max, "-", "LIMIT", 0, limit + 1);
      } catch (err) {
        throw storeError(err, "listing deployments");
      }
      const page = members.slice(0, limit);
      const items = await summaries(page.map((m) => m.slice(12)));
      const last = page[page.length - 1];
      return members.length > limit && last !== undefined
        ? { items, next: { createdAt: Number.parseInt(last.slice(0, 12), 16), id: last.slice(12) } }
        : { items };
    },
    async listActive() {
      try {
        return (await redis.smembers(keys.active)).sort();
      } catch (err) {
        throw storeError(err, "listing active deployments");
      }
    },
    async requestControl(id, control, now, reason) {
      checkControlRequest(control, reason);
      const reply = await run(
        "edgeplaneRequestControl",
        [keys.deployment(id), keys.changes],
        [id, control, now, maxLen, reason ?? ""],
        `requesting ${control} of deployment ${id}`,
      );
      failure(reply, { id });
    },
    async clearControl(id, control) {
      await run("edgeplaneClearControl", [keys.deployment(id)], [control], `clearing ${control} of ${id}`);
    },
    async readChanges(after, count) {
      if (!/^\d+(-\d+)?$/.test(after))
        throw invalidArgument("after", `not a position of this stream: ${JSON.stringify(after)}`);
      if (!Number.isSafeInteger(count) || count < 1) return [];
      const start = after === "0" ? "-" : `(${after}`;
      let entries: Array<[string, string[]]>;
      try {
        entries = (await redis.xrange(keys.changes, start, "+", "COUNT", count)) as Array<[string, string[]]>;
      } catch (err) {
        throw storeError(err, "reading deployment changes");
      }
      return entries.map(([id, fields]) => changeOf(id, fields));
    },
    async lastChange() {
      let entries: Array<[string, string[]]>;
      try {
        entries = (await redis.xrevrange(keys.changes, "+", "-", "COUNT", 1)) as Array<[string, string[]]>;
      } catch (err) {
        throw storeError(err, "reading deployment changes");
      }
      return entries[0]?.[0] ?? "0";
    },
    close: async () => {
      if (owned) await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** The Redis versions-per-node map, with its keys and client. */
export interface RedisNodeVersionStore extends NodeVersionStore {
  readonly keys: DeploymentStoreKeys;
  readonly redis: Redis;
}

/** Node ids per script call (bounds one script's run time and argument list). */
const VERSION_CHUNK = 5000;

/** Creates the Redis {@link NodeVersionStore}. */
export function createRedisNodeVersionStore(options: RedisDeploymentStoreOptions): RedisNodeVersionStore {
  const { client: redis, owned } = clientOf(options.redis);
  const keys = deploymentStoreKeys(options.prefix ?? DEFAULT_DEPLOYMENT_PREFIX);
  const run = scriptRunner(redis);

  async function chunked(
    name: "edgeplaneAssignVersions" | "edgeplaneUnassignVersions",
    jobId: string,
    head: Array<string | number>,
    nodeIds: readonly string[],
    epoch: number | undefined,
  ): Promise<string[]> {
    const changed: string[] = [];
    for (let i = 0; i < nodeIds.length; i += VERSION_CHUNK) {
      const reply = await run(
        name,
        [keys.versions(jobId), keys.lease],
        [epoch ?? "", ...head, ...nodeIds.slice(i, i + VERSION_CHUNK)],
        `writing node versions of job ${jobId}`,
      );
      failure(reply, { epoch });
      changed.push(...((reply[1] as string[] | undefined) ?? []));
    }
    return changed;
  }

  return {
    keys,
    redis,
    async assign(cmd) {
      checkVersionCommand(cmd);
      checkNodeIds(cmd.nodeIds);
      if (/[|\s]/.test(cmd.deploymentId)) throw invalidArgument("deployment_id", "must not contain '|'");
      return chunked(
        "edgeplaneAssignVersions",
        cmd.jobId,
        [cmd.version, cmd.deploymentId],
        cmd.nodeIds,
        cmd.fence?.epoch,
      );
    },
    async unassign(cmd) {
      checkVersionCommand(cmd);
      checkNodeIds(cmd.nodeIds);
      return chunked("edgeplaneUnassignVersions", cmd.jobId, [cmd.version], cmd.nodeIds, cmd.fence?.epoch);
    },
    async load(jobId) {
      const out = new Map<string, NodeVersion>();
      let cursor = "0";
      try {
        do {
          const [next, flat] = await redis.hscan(keys.versions(jobId), cursor, "COUNT", 2000);
          for (let i = 0; i + 1 < flat.length; i += 2) {
            const v = decodeNodeVersion(flat[i + 1] as string);
            if (v !== undefined) out.set(flat[i] as string, v);
          }
          cursor = next;
        } while (cursor !== "0");
      } catch (err) {
        throw storeError(err, `reading node versions of job ${jobId}`);
      }
      return out;
    },
    async drop(jobId, fence) {
      checkFence(fence);
      const reply = await run(
        "edgeplaneDropVersions",
        [keys.versions(jobId), keys.lease],
        [fence?.epoch ?? ""],
        `dropping node versions of job ${jobId}`,
      );
      failure(reply, { epoch: fence?.epoch });
    },
    close: async () => {
      if (owned) await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** The Redis lease, with its keys and client. */
export interface RedisLeaderLease extends LeaderLease {
  readonly keys: DeploymentStoreKeys;
  readonly redis: Redis;
}

/** Creates the Redis {@link LeaderLease}. */
export function createRedisLeaderLease(options: RedisDeploymentStoreOptions): RedisLeaderLease {
  const { client: redis, owned } = clientOf(options.redis);
  const keys = deploymentStoreKeys(options.prefix ?? DEFAULT_DEPLOYMENT_PREFIX);
  const run = scriptRunner(redis);
  const checkHolder = (holder: string) => {
    if (typeof holder !== "string" || holder.length === 0 || holder.length > 200 || holder.includes("|"))
      throw invalidArgument("holder", "must be 1-200 characters without '|'");
  };
  return {
    keys,
    redis,
    async acquire(holder, ttlMs) {
      checkHolder(holder);
      checkPositive("ttl_ms", ttlMs);
      const reply = await run(
        "edgeplaneAcquireLease",
        [keys.lease, keys.epoch],
        [holder, ttlMs],
        "the lease",
      );
      if (reply[0] === 1) return { held: true, epoch: Number(reply[1]), fresh: reply[2] === 1 };
      return {
        held: false,
        holder: { epoch: Number(reply[1]), holder: String(reply[2]), ttlMs: Number(reply[3]) },
      };
    },
    async release(holder, epoch) {
      checkHolder(holder);
      await run("edgeplaneReleaseLease", [keys.lease], [`${epoch}|${holder}`], "releasing the lease");
    },
    async current(): Promise<LeaseHolder | undefined> {
      let value: string | null;
      let ttl: number;
      try {
        [value, ttl] = await Promise.all([redis.get(keys.lease), redis.pttl(keys.lease)]);
      } catch (err) {
        throw storeError(err, "reading the lease");
      }
      if (value === null) return undefined;
      const bar = value.indexOf("|");
      return { epoch: Number(value.slice(0, bar)), holder: value.slice(bar + 1), ttlMs: Math.max(0, ttl) };
    },
    close: async () => {
      if (owned) await redis.quit().catch(() => redis.disconnect());
    },
  };
}
