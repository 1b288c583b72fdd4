/**
 * Every Redis key of the rollout orchestrator's persistence (deployments, the versions-per-node
 * map, the leader lease), built here and only here (the Lua scripts get them through KEYS).
 *
 * Layout (default prefix `ep:`; tests use a random prefix to isolate themselves):
 *
 * | key                        | type   | holds                                                              |
 * |----------------------------|--------|--------------------------------------------------------------------|
 * | `ep:deploy:d:<id>`         | hash   | `rec` record, `sum` summary, `tgt` targets, `rev`, `state`, `job`, `created`, `updated`, `control`… |
 * | `ep:deploy:n:<id>`         | hash   | the node table: node id → entry JSON (upserted by create and update) |
 * | `ep:deploy:job:<job id>`   | zset   | one job's deployments: `<12 hex digits of created ms><id>`, score 0 |
 * | `ep:deploy:all`            | zset   | every deployment, same members                                     |
 * | `ep:deploy:active`         | set    | ids written with `active: true` last (what a new leader resumes)   |
 * | `ep:deploy:changes`        | stream | created / updated / control entries, MAXLEN ~ 10000                |
 * | `ep:deploy:ver:<job id>`   | hash   | node id → `version\|deployment\|previous version\|previous deployment` |
 * | `ep:leader`                | string | `<epoch>\|<holder>`, with the lease TTL                            |
 * | `ep:leader:epoch`          | string | the fencing epoch counter (INCR on every fresh acquisition)        |
 *
 * In the deployment hash: `rec` and `sum` are JSON objects with `revision` first; `sum` is absent
 * when the last write gave no summary (then `rec` is the summary). `tgt` is the frozen target list
 * (a JSON array of node ids), written by create only and absent when it gave none. `control`,
 * `control_at` and `control_reason` describe a pending control. Deployments written before the
 * node table had its own key keep it inside `rec` and have no `ep:deploy:n:<id>`.
 *
 * Index members are lexicographic (every score 0), as in the job store: "newest first, strictly
 * before a cursor" is one `ZREVRANGEBYLEX key (member - LIMIT 0 n`. For Redis Cluster, give a
 * prefix with a hash tag (`{ep}:`): the scripts touch several keys, and every fenced write reads
 * the lease key, so all keys must live in one slot.
 */

/** The default key prefix (shared with the other stores). */
export const DEFAULT_DEPLOYMENT_PREFIX = "ep:";

/** The keys of one deployment store (one prefix). */
export interface DeploymentStoreKeys {
  readonly prefix: string;
  /** Hash: one deployment. */
  deployment(id: string): string;
  /** Hash: one deployment's node table (node id → entry JSON). */
  deploymentNodes(id: string): string;
  /** Sorted set: one job's deployments. */
  jobIndex(jobId: string): string;
  /** Sorted set: every deployment. */
  readonly all: string;
  /** Set: active deployment ids. */
  readonly active: string;
  /** Stream: changes. */
  readonly changes: string;
  /** Hash: one job's versions-per-node map. */
  versions(jobId: string): string;
  /** String: the lease. */
  readonly lease: string;
  /** String: the epoch counter. */
  readonly epoch: string;
}

/** Builds the keys of a deployment store with this prefix. */
export function deploymentStoreKeys(prefix: string = DEFAULT_DEPLOYMENT_PREFIX): DeploymentStoreKeys {
  return {
    prefix,
    deployment: (id) => `${prefix}deploy:d:${id}`,
    deploymentNodes: (id) => `${prefix}deploy:n:${id}`,
    jobIndex: (jobId) => `${prefix}deploy:job:${jobId}`,
    all: `${prefix}deploy:all`,
    active: `${prefix}deploy:active`,
    changes: `${prefix}deploy:changes`,
    versions: (jobId) => `${prefix}deploy:ver:${jobId}`,
    lease: `${prefix}leader`,
    epoch: `${prefix}leader:epoch`,
  };
}

/** The index member of a deployment: 12 hex digits of its creation time, then its id. */
export function deploymentMember(createdAt: number, id: string): string {
  return createdAt.toString(16).padStart(12, "0") + id;
}
