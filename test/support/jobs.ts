/** Jobs written straight to a store, as the Jobs API would after validating them. */
import { randomUUID } from "node:crypto";
import { validateJobSpec } from "@edgeplane/core";
import { parseSelector } from "@edgeplane/selector";
import type { JobRecord, JobStore } from "@edgeplane/store";

/**
 * Validates a small pipeline job (a generator printing to stdout, plus `extra` such as a
 * selector) as `PutJob` does and stores it under a new id; resolves the stored job.
 */
export async function putPipelineJob(
  jobStore: JobStore,
  namespace: string,
  name: string,
  extra: Record<string, unknown> = {},
): Promise<JobRecord> {
  const spec = validateJobSpec(
    {
      name,
      namespace,
      type: "pipeline",
      config: { input: { generate: { interval: "1s", message: {} } }, output: { stdout: {} } },
      ...extra,
    },
    { parseExpression: (e: string) => parseSelector(e) },
  );
  const { job } = await jobStore.putJob({
    namespace: spec.namespace,
    name: spec.name,
    type: spec.type,
    labels: {},
    spec: spec as unknown as Record<string, unknown>,
    newId: `job-${randomUUID()}`,
    now: Date.now(),
  });
  return job;
}
