/**
 * The Deployments API as the rollout tests drive it over REST: submit a job spec, read a
 * deployment, find the deployment of a version, wait for a state.
 */
import { waitFor } from "@edgeplane/testkit";
import { expect } from "vitest";
import type { Stack } from "./stack.js";

export type Json = Record<string, unknown>;

/** A deployment as `GET /api/v1/deployments/{id}` shows it (the fields the tests read). */
export interface DeploymentJson {
  id: string;
  state: string;
  job_version: number;
  strategy: string;
  progress: number;
  next_steps: string[];
  message: string;
  is_rollback: boolean;
  rollback_deployment_id: string;
  rollback_of_deployment_id: string;
  counters: {
    targets: number;
    waves: number;
    current_wave: number;
    updated: number;
    healthy: number;
    unhealthy: number;
    failed: number;
    canaries: number;
  };
  events: Array<{ kind: string; reason: string; nodes: string[]; details: Record<string, string> }>;
}

/**
 * Helpers bound to a stack that a `beforeAll` creates later (hence the getter). `untilTimeoutMs`
 * and `intervalMs` set the defaults of `until`.
 */
export function deploymentApi(
  stackOf: () => Stack,
  defaults: { untilTimeoutMs: number; intervalMs: number },
) {
  const submit = async (body: Json): Promise<{ id: string; version: number }> => {
    const res = await stackOf().api("POST", "/api/v1/jobs", body);
    expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    const job = res.body.job as { id: string; status: { version: number } };
    return { id: job.id, version: job.status.version };
  };
  const get = async (id: string): Promise<DeploymentJson> => {
    const res = await stackOf().api("GET", `/api/v1/deployments/${id}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body.deployment as DeploymentJson;
  };
  const deploymentOf = (jobId: string, version: number): Promise<DeploymentJson> =>
    waitFor(
      async () => {
        const res = await stackOf().api("GET", `/api/v1/deployments?job_id=${jobId}`);
        return (res.body.items as DeploymentJson[]).find((d) => d.job_version === version);
      },
      { timeoutMs: 10_000, message: `the deployment of version ${version}` },
    );
  const until = (
    id: string,
    states: string[],
    timeoutMs = defaults.untilTimeoutMs,
  ): Promise<DeploymentJson> =>
    waitFor(
      async () => {
        const d = await get(id);
        return states.includes(d.state) ? d : undefined;
      },
      {
        timeoutMs,
        intervalMs: defaults.intervalMs,
        message: `deployment ${id} to become ${states.join(" or ")}`,
      },
    );
  return { submit, get, deploymentOf, until };
}
