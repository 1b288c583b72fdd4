/**
 * The Deployments service layer: the one place where API requests (REST and gRPC alike) about
 * rollouts become store reads and control requests, and where the dry run (`PlanJob`) is
 * computed. Controls are checked here first (`checkControl`, the planner's own rules): a refusal
 * is `failed_precondition` (HTTP 409) with the reason; an accepted control is recorded for the
 * leader, which applies it in the deployment's next sync (checking again, since the state may
 * have moved), and the answer shows the deployment once it did (or as it is after a short wait).
 */
import {
  type Clock,
  EdgeplaneError,
  invalidArgument,
  type JobSpec,
  type Logger,
  validateJobSpec,
} from "@edgeplane/core";
import { type NodeRegistry, rollout, selectorOf } from "@edgeplane/orchestrator";
import {
  canonicalJson,
  type DeploymentCursor,
  type DeploymentStore,
  type DeploymentSummary,
  type JobRecord,
  type JobStore,
  MAX_CONTROL_REASON,
  specDigest,
} from "@edgeplane/store";
import { diffSpecs } from "../jobs/diff.js";
import { pageSize, selectorSyntax } from "../jobs/service.js";
import type { PageTokens } from "../page-token.js";
import type { DeploymentView, PlanResult } from "./convert.js";
import type { DeploymentFeed } from "./feed.js";

/** What the service needs from the registry (the dry run's matching nodes). */
export type PlanRegistry = Pick<NodeRegistry, "select" | "stateOf">;

/** Options of {@link DeploymentsService}. */
export interface DeploymentsServiceOptions {
  readonly store: DeploymentStore;
  readonly jobStore: Pick<JobStore, "getJob" | "findJob" | "getVersion">;
  readonly registry: PlanRegistry;
  readonly tokens: PageTokens;
  readonly feed: DeploymentFeed;
  readonly clock: Clock;
  /** The local runtime, told at once about a control (any replica's request reaches the leader anyway). */
  readonly runtime?: { kick(deploymentId: string, withControl?: boolean): void };
  /** How long a control request waits for the leader to apply it before answering; default 3 s. */
  readonly controlWaitMs?: number;
  readonly logger?: Logger;
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The Deployments service. */
export class DeploymentsService {
  readonly #store: DeploymentStore;
  readonly #jobs: DeploymentsServiceOptions["jobStore"];
  readonly #registry: PlanRegistry;
  readonly #tokens: PageTokens;
  readonly #feed: DeploymentFeed;
  readonly #clock: Clock;
  readonly #runtime: DeploymentsServiceOptions["runtime"];
  readonly #controlWaitMs: number;

  constructor(options: DeploymentsServiceOptions) {
    this.#store = options.store;
    this.#jobs = options.jobStore;
    this.#registry = options.registry;
    this.#tokens = options.tokens;
    this.#feed = options.feed;
    this.#clock = options.clock;
    this.#runtime = options.runtime;
    this.#controlWaitMs = options.controlWaitMs ?? 3000;
  }

  /** A job's deployments (or every deployment), newest first, one page. */
  async list(params: {
    jobId?: string;
    limit?: number;
    nextToken?: string;
  }): Promise<{ items: DeploymentView[]; nextToken: string }> {
    const limit = pageSize(params.limit);
    let jobId = (params.jobId ?? "").trim();
    if (jobId !== "") {
      const job = (await this.#jobs.getJob(jobId)) ?? (await this.#jobs.findJob("default", jobId));
      if (job === undefined)
        throw new EdgeplaneError("not_found", `job ${JSON.stringify(jobId)} not found`, {
          metadata: { job_id: jobId },
        });
      jobId = job.id;
    }
    const binding = { list: "deployments", jobId };
    const cursor = params.nextToken
      ? this.#tokens.open<DeploymentCursor>(params.nextToken, binding)
      : undefined;
    const page = await this.#store.list({ jobId, limit, cursor });
    return {
      items: page.items.map(viewOf),
      nextToken: page.next !== undefined ? this.#tokens.seal(binding, page.next) : "",
    };
  }

  /** One deployment; `not_found` when unknown. */
  async get(id: string): Promise<DeploymentView> {
    return viewOf(await this.#summary(id));
  }

  /**
   * Requests a control. Refused at once (`failed_precondition`, the planner's reason) when the
   * deployment's state does not allow it; otherwise recorded for the leader, and answered with
   * the deployment once the leader applied it (or as it is after `controlWaitMs`).
   */
  async control(id: string, control: string, reason = ""): Promise<DeploymentView> {
    if (!rollout.isControl(control))
      throw invalidArgument("control", `must be one of ${rollout.CONTROLS.join(", ")}`);
    if (reason.length > MAX_CONTROL_REASON)
      throw invalidArgument(
        "reason",
        `must be at most ${MAX_CONTROL_REASON} characters, got ${reason.length}`,
      );
    const s = await this.#summary(id);
    const view = viewOf(s);
    const stable = await this.#stable(view);
    const refusal = rollout.checkControl(view, control, stable);
    if (refusal !== undefined) {
      throw new EdgeplaneError("failed_precondition", refusal, {
        metadata: { deployment_id: id, state: view.state, control },
      });
    }
    await this.#store.requestControl(id, control, this.#clock.now(), reason.trim() || undefined);
    this.#runtime?.kick(id, true);
    const until = Date.now() + this.#controlWaitMs;
    let latest = s;
    while (Date.now() < until) {
      await delay(25);
      latest = await this.#summary(id);
      if (latest.control !== control) break;
    }
    return viewOf(latest);
  }

  /**
   * The deployment now, then every time it changes, until it reaches a terminal state or
   * `signal` aborts.
   */
  async *watch(id: string, signal: AbortSignal): AsyncGenerator<DeploymentView> {
    let dirty = true;
    let wake: (() => void) | undefined;
    const off = this.#feed.subscribe(id, () => {
      dirty = true;
      wake?.();
    });
    let last = -1;
    try {
      while (!signal.aborted) {
        if (dirty) {
          dirty = false;
          const s = await this.#summary(id);
          if (s.revision !== last) {
            last = s.revision;
            const view = viewOf(s);
            yield view;
            if (rollout.isTerminalDeployment(view.state)) return;
          }
        }
        if (dirty) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            dirty = true;
            resolve();
          }, 5000);
          const done = () => {
            clearTimeout(timer);
            signal.removeEventListener("abort", done);
            resolve();
          };
          wake = done;
          signal.addEventListener("abort", done, { once: true });
        });
        wake = undefined;
      }
    } finally {
      off();
    }
  }

  /**
   * The dry run of submitting `input`: the diff against the current version, the nodes the
   * selector matches now, and the canary set and waves the planner would use (`planWaves` over
   * the nodes a deployment would start with).
   */
  async plan(input: unknown): Promise<PlanResult> {
    const spec = validateJobSpec(input, selectorSyntax);
    const existing = await this.#jobs.findJob(spec.namespace, spec.name);
    const specJson = spec as unknown as Record<string, unknown>;
    const changed =
      existing === undefined ||
      specDigest(existing.type, existing.labels, existing.spec) !==
        specDigest(spec.type, spec.labels ?? {}, specJson);
    const changes = diffSpecs(existing?.spec ?? {}, specJson);
    const selector = selectorOf(specJson);
    const matching = selector === undefined ? [] : this.#registry.select(selector).sort();
    const targets = matching.filter((id) => {
      const state = this.#registry.stateOf(id);
      return state === "ready" || state === "disconnected";
    });
    const plan = rollout.planWaves(targets, spec);
    const waves: Array<{ index: number; canary: boolean; nodeIds: string[] }> = [];
    if (plan.canaries.length > 0) waves.push({ index: 0, canary: true, nodeIds: [...plan.canaries] });
    for (const w of plan.waves) waves.push({ index: waves.length, canary: false, nodeIds: [...w] });
    return {
      jobId: existing?.id ?? "",
      currentVersion: existing?.version ?? 0,
      changed,
      changes,
      matchingNodeIds: matching,
      waves,
      warnings: await this.#warnings(spec, existing, changed, matching.length, targets.length, plan),
    };
  }

  async #warnings(
    spec: JobSpec,
    existing: JobRecord | undefined,
    changed: boolean,
    matching: number,
    targets: number,
    plan: rollout.WavePlan,
  ): Promise<string[]> {
    const out: string[] = [];
    if (!changed && existing !== undefined)
      out.push(`the spec is identical to version ${existing.version}: submitting it changes nothing`);
    if (matching === 0) out.push("no node matches the selector: the job would be queued until one does");
    else if (targets < matching)
      out.push(
        `${matching - targets} of ${matching} matching nodes are draining or lost and would not be part of the rollout`,
      );
    if (changed && existing?.deploymentId) {
      const active = await this.#store.getSummary(existing.deploymentId);
      if (active !== undefined && rollout.isActiveDeployment(active.state as rollout.DeploymentState))
        out.push(
          `deployment ${active.id} (version ${(active.summary as { jobVersion?: number }).jobVersion ?? "?"}) is ${active.state}: submitting supersedes it`,
        );
    }
    const d = spec.deployment;
    if (d.strategy === "canary" && plan.canaries.length === 0 && targets > 0)
      out.push("strategy canary without canary_count or canary_percent: no canary set, it runs as rolling");
    if (d.strategy === "canary" && plan.canaries.length > 0 && !d.auto_promote)
      out.push(`after the ${plan.canaries.length} canaries are healthy the rollout waits for promote`);
    if (d.strategy === "immediate" && targets > 1)
      out.push(
        `immediate: all ${targets} nodes get the new version at once; health checks are not waited for`,
      );
    return out;
  }

  async #summary(id: string): Promise<DeploymentSummary> {
    if (id === "") throw invalidArgument("id", "is required");
    const s = await this.#store.getSummary(id);
    if (s === undefined) {
      throw new EdgeplaneError(
        "not_found",
        `deployment ${JSON.stringify(id)} not found; list a job's deployments with GET /api/v1/deployments?job_id=…`,
        { metadata: { deployment_id: id } },
      );
    }
    return s;
  }

  /** The job's stable version as the planner sees it (for the rollback check). */
  async #stable(d: DeploymentView): Promise<rollout.StableVersion | undefined> {
    const job = await this.#jobs.getJob(d.jobId);
    if (job === undefined || job.stableVersion <= 0) return undefined;
    if (job.stableVersion === d.jobVersion) return { version: d.jobVersion, specEqualsCurrent: true };
    const [stable, mine] = await Promise.all([
      this.#jobs.getVersion(job.id, job.stableVersion),
      this.#jobs.getVersion(job.id, d.jobVersion),
    ]);
    if (stable === undefined) return undefined;
    return {
      version: job.stableVersion,
      specEqualsCurrent: mine !== undefined && canonicalJson(stable.spec) === canonicalJson(mine.spec),
    };
  }
}

/** A stored summary as the view (its revision is the store's). */
function viewOf(s: DeploymentSummary): DeploymentView {
  return { ...(s.summary as unknown as DeploymentView), revision: s.revision };
}
