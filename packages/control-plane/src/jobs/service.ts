/**
 * The Jobs service layer: the one place where API requests (REST and gRPC alike) become store
 * commands. It validates at the edge (specs with zod rules via `validateJobSpec`, query
 * parameters here), signs page tokens, and answers with store records; the adapters only convert
 * between their wire forms and these calls.
 */
import {
  allowedFrom,
  type Clock,
  EdgeplaneError,
  JOB_STATES,
  JOB_TYPES,
  type JobSpec,
  type JobStateType,
  type JobType,
  newId,
  validateJobSpec,
} from "@edgeplane/core";
import { parseSelector } from "@edgeplane/selector";
import type {
  JobCursor,
  JobOrderBy,
  JobRecord,
  JobStore,
  JobVersionRecord,
  PutJobResult,
} from "@edgeplane/store";
import type { PageTokens } from "../page-token.js";
import { diffSpecs, type SpecChangeJson } from "./diff.js";

/** The selector grammar, as validateJobSpec needs it. */
export const selectorSyntax = { parseExpression: (expr: string) => parseSelector(expr) };

/** Page size bounds of every list. */
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1000;

/** What PutJob/POST /api/v1/jobs takes besides the spec. */
export interface PutJobOptions {
  readonly expectedVersion?: number;
  readonly expectedRevision?: number;
  readonly idempotencyKey?: string;
}

/** ListJobs parameters as they arrive (REST query strings or gRPC fields), before validation. */
export interface ListJobsParams {
  readonly namespace?: string;
  readonly limit?: number;
  readonly nextToken?: string;
  readonly labels?: string;
  readonly states?: readonly string[];
  readonly types?: readonly string[];
  readonly orderBy?: string;
  readonly order?: string;
  readonly includeDeleted?: boolean;
}

/** The result of PutJob and RevertJob. */
export interface PutOutcome extends PutJobResult {
  readonly message: string;
}

/** Options of {@link JobsService}. */
export interface JobsServiceOptions {
  readonly store: JobStore;
  readonly tokens: PageTokens;
  readonly clock: Clock;
  /** Versions kept per job (default 50). */
  readonly maxVersions?: number;
}

function bad(field: string, description: string): EdgeplaneError {
  return new EdgeplaneError("invalid_argument", `${field}: ${description}`, {
    details: [{ field, description }],
  });
}

function oneOf<T extends string>(field: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw bad(field, `${JSON.stringify(value)} is not one of ${allowed.join(", ")}`);
  }
  return value as T;
}

/** Validates a page size: default when absent, 400 when outside 1..MAX_PAGE_SIZE. */
export function pageSize(limit: number | undefined, field = "limit"): number {
  if (limit === undefined || limit === 0) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw bad(field, `must be an integer from 1 to ${MAX_PAGE_SIZE} (got ${limit})`);
  }
  return limit;
}

/** The Jobs service. */
export class JobsService {
  readonly #store: JobStore;
  readonly #tokens: PageTokens;
  readonly #clock: Clock;
  readonly #maxVersions: number;
  readonly #listeners = new Set<(job: JobRecord) => void>();

  constructor(options: JobsServiceOptions) {
    this.#store = options.store;
    this.#tokens = options.tokens;
    this.#clock = options.clock;
    this.#maxVersions = options.maxVersions ?? 50;
  }

  /**
   * Calls `listener` after every write of this service that changed a job (a put or revert that
   * made a version, a stop, a delete), until the returned function is called. The control plane
   * uses it to have its rollout runtime and placement read the job change stream at once rather
   * than at their next poll (the stream stays the one source: writes by other replicas are seen
   * at the poll).
   */
  onChange(listener: (job: JobRecord) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(job: JobRecord): JobRecord {
    for (const l of this.#listeners) {
      try {
        l(job);
      } catch {
        // A listener's trouble is not the caller's: the write is done (the poll catches up).
      }
    }
    return job;
  }

  /** Validates a spec (throws invalid_argument naming every bad field) and returns it defaulted. */
  validate(input: unknown): JobSpec {
    return validateJobSpec(input, selectorSyntax);
  }

  /** Creates or updates a job from a spec sent by a client. */
  async put(input: unknown, options: PutJobOptions = {}): Promise<PutOutcome> {
    const spec = this.validate(input);
    if (options.idempotencyKey !== undefined && options.idempotencyKey.length > 128) {
      throw bad("idempotency_key", "is longer than 128 characters");
    }
    const now = this.#clock.now();
    const result = await this.#store.putJob({
      namespace: spec.namespace,
      name: spec.name,
      type: spec.type,
      labels: spec.labels ?? {},
      spec: spec as unknown as Record<string, unknown>,
      newId: newId("job", now),
      now,
      expectedVersion: options.expectedVersion,
      expectedRevision: options.expectedRevision,
      idempotencyKey: options.idempotencyKey || undefined,
      maxVersions: this.#maxVersions,
    });
    if (result.changed) this.#changed(result.job);
    return { ...result, message: putMessage(result) };
  }

  /** A job by id, or by name within a namespace (the REST path accepts either). */
  async get(idOrName: string, namespace?: string): Promise<JobRecord> {
    if (idOrName === "") throw bad("id", "is required (a job id, or a name with namespace)");
    const byId = await this.#store.getJob(idOrName);
    if (byId && (namespace === undefined || namespace === "" || byId.namespace === namespace)) return byId;
    const byName = await this.#store.findJob(namespace || "default", idOrName);
    if (byName) return byName;
    throw new EdgeplaneError(
      "not_found",
      `job ${JSON.stringify(idOrName)} not found${namespace ? ` in namespace ${namespace}` : ""}; list jobs with GET /api/v1/jobs?namespace=*`,
    );
  }

  /** One page of jobs. */
  async list(params: ListJobsParams): Promise<{ items: JobRecord[]; nextToken: string }> {
    const namespace = params.namespace || "default";
    const limit = pageSize(params.limit);
    const states = (params.states ?? []).filter(Boolean).map((s) => oneOf("states", s, JOB_STATES));
    const types = (params.types ?? []).filter(Boolean).map((t) => oneOf("types", t, JOB_TYPES));
    const orderBy = oneOf<JobOrderBy>("order_by", params.orderBy || "created_at", [
      "created_at",
      "updated_at",
      "name",
    ]);
    const order = oneOf<"asc" | "desc">("order", params.order || "desc", ["asc", "desc"]);
    const includeDeleted = params.includeDeleted ?? false;
    let labelFilter: ((labels: Readonly<Record<string, string>>) => boolean) | undefined;
    if (params.labels) labelFilter = labelFilterOf("labels", params.labels);
    // The token binds everything that shapes the result, so it cannot be replayed on another query.
    const binding = { namespace, states, types, orderBy, order, includeDeleted, labels: params.labels ?? "" };
    const cursor = params.nextToken ? this.#tokens.open<JobCursor>(params.nextToken, binding) : undefined;
    const page = await this.#store.listJobs({
      namespace,
      limit,
      cursor,
      states: states as JobStateType[],
      types: types as JobType[],
      orderBy,
      order,
      includeDeleted,
      labelFilter,
    });
    return { items: page.items, nextToken: page.next ? this.#tokens.seal(binding, page.next) : "" };
  }

  /** Stops a job. */
  async stop(id: string, reason: string, expectedRevision?: number): Promise<JobRecord> {
    const job = await this.get(id);
    if (job.state === "stopped") return job;
    const stopped = await this.#store.updateStatus(
      job.id,
      {
        state: "stopped",
        message: reason ? `stopped: ${reason}` : "stopped by a user",
        now: this.#clock.now(),
      },
      { expectedRevision, allowedFrom: allowedFrom("stopped") },
    );
    return this.#changed(stopped);
  }

  /** Deletes a job (its name becomes free; the record stays readable by id). */
  async delete(id: string, expectedRevision?: number): Promise<JobRecord> {
    const job = await this.get(id);
    const deleted = await this.#store.deleteJob(job.id, this.#clock.now(), {
      expectedRevision,
      allowedFrom: allowedFrom("deleted"),
    });
    return this.#changed(deleted);
  }

  /** Kept versions, newest first. */
  async versions(
    id: string,
    params: { limit?: number; nextToken?: string },
  ): Promise<{ items: JobVersionRecord[]; nextToken: string }> {
    const job = await this.get(id);
    const limit = pageSize(params.limit);
    const binding = { versionsOf: job.id };
    const beforeVersion = params.nextToken ? this.#tokens.open<number>(params.nextToken, binding) : undefined;
    const page = await this.#store.listVersions(job.id, { limit, beforeVersion });
    return {
      items: page.items,
      nextToken: page.next !== undefined ? this.#tokens.seal(binding, page.next) : "",
    };
  }

  /** One kept version. */
  async version(id: string, version: number): Promise<JobVersionRecord> {
    const job = await this.get(id);
    if (!Number.isInteger(version) || version < 1)
      throw bad("version", `must be a positive integer (got ${version})`);
    const found = await this.#store.getVersion(job.id, version);
    if (!found) {
      throw new EdgeplaneError(
        "not_found",
        version > job.version
          ? `job ${job.id} has no version ${version} yet; its current version is ${job.version}`
          : `version ${version} of job ${job.id} is no longer kept (the last ${this.#maxVersions} versions are)`,
      );
    }
    return found;
  }

  /** The changes between two versions (defaults: the previous and the current one). */
  async diff(
    id: string,
    from?: number,
    to?: number,
  ): Promise<{ from: number; to: number; changes: SpecChangeJson[] }> {
    const job = await this.get(id);
    const toVersion = to || job.version;
    const fromVersion = from || Math.max(1, toVersion - 1);
    const [a, b] = await Promise.all([this.version(job.id, fromVersion), this.version(job.id, toVersion)]);
    return { from: fromVersion, to: toVersion, changes: diffSpecs(a.spec, b.spec) };
  }

  /** Writes version n's spec as a new version (a no-op with a clear message when identical). */
  async revert(id: string, version: number, expectedRevision?: number): Promise<PutOutcome> {
    const job = await this.get(id);
    const target = await this.version(job.id, version);
    const now = this.#clock.now();
    const result = await this.#store.putJob({
      namespace: job.namespace,
      name: job.name,
      type: job.type,
      labels: (target.spec.labels as Record<string, string> | undefined) ?? {},
      spec: target.spec,
      newId: newId("job", now),
      now,
      expectedRevision,
      kind: "revert",
      sourceVersion: version,
      maxVersions: this.#maxVersions,
    });
    if (result.changed) this.#changed(result.job);
    const message = result.changed
      ? `reverted to the spec of version ${version} as version ${result.job.version}`
      : `version ${version} has the same spec as the current version ${result.job.version}; nothing to revert`;
    return { ...result, message };
  }
}

/** Compiles a label selector string from a query parameter; invalid_argument naming the parameter. */
export function labelFilterOf(
  field: string,
  expression: string,
): (labels: Readonly<Record<string, string>>) => boolean {
  try {
    const selector = parseSelector(expression);
    return (labels) => selector.matches(labels);
  } catch (err) {
    throw bad(field, EdgeplaneError.from(err).message);
  }
}

function putMessage(result: PutJobResult): string {
  if (result.created) return `created job ${result.job.id} (version 1)`;
  if (result.changed) return `updated job ${result.job.id} to version ${result.job.version}`;
  return `job ${result.job.id} is unchanged: the spec is identical to version ${result.job.version}`;
}
