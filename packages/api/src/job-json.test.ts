import { readFileSync } from "node:fs";
import { create, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { JobSchema, ListJobsResponseSchema } from "./index.js";

/** The example of the Expanso ListJobs document (shared/seeds/002_…), copied verbatim as JSON. */
const expanso = JSON.parse(
  readFileSync(new URL("./testdata/expanso-list-jobs.json", import.meta.url), "utf8"),
) as { items: JsonValue[]; next_token: string };

const jsonOptions = { useProtoFieldName: true } as const;

describe("the JSON form of Job is the Expanso ListJobs shape", () => {
  it("round-trips the document's example field for field", () => {
    const message = fromJson(ListJobsResponseSchema, expanso as JsonValue);
    expect(toJson(ListJobsResponseSchema, message, jsonOptions)).toEqual(expanso);
  });

  it("writes a Job built in code exactly as the example", () => {
    const job = create(JobSchema, {
      id: "job-abc123xyz",
      spec: {
        config: {
          input: { file: { paths: ["/var/log/app/*.log"] } },
          output: { stdout: {} },
          pipeline: { processors: [{ mapping: "root = this\nroot.processed_at = now()\n" }] },
        },
        description: "Processes application logs from edge nodes",
        labels: { env: "production", region: "us-west" },
        name: "log-processor",
        namespace: "production",
        priority: 50,
        selector: { matchLabels: { env: "production" } },
        type: "pipeline",
      },
      status: {
        createdAt: timestampFromDate(new Date("2025-01-15T10:30:00Z")),
        revision: 3,
        state: { message: "Job running on 5 nodes", stateType: "running" },
        updatedAt: timestampFromDate(new Date("2025-01-15T10:35:00Z")),
        version: 1,
      },
    });
    expect(toJson(JobSchema, job, jsonOptions)).toEqual(expanso.items[0]);
  });

  it("writes the document's numbers as JSON numbers and durations as strings", () => {
    const job = create(JobSchema, {
      spec: {
        deployment: {
          strategy: "canary",
          maxParallel: 5,
          maxParallelPercent: 20,
          canaryCount: 2,
          canaryPercent: 10,
          autoPromote: true,
          maxFailedNodes: 10,
          maxFailedNodesPercent: 10.0,
          noAutoRollback: false,
          healthCheck: { deadline: "5m", minHealthyTime: "30s", maxErrorRate: 0.1 },
        },
        timeouts: { executionTimeout: 60, queueTimeout: 30, totalTimeout: 120 },
        selector: { matchExpressions: ["tier in (premium,standard)", "!debug"], matchIds: ["n1"] },
      },
      status: { version: 4_000_000_000, revision: 4_000_000_001 },
    });
    const json = toJson(JobSchema, job, jsonOptions) as {
      spec: { deployment: Record<string, unknown>; timeouts: Record<string, unknown> };
      status: Record<string, unknown>;
    };
    expect(json.spec.deployment).toEqual({
      strategy: "canary",
      max_parallel: 5,
      max_parallel_percent: 20,
      canary_count: 2,
      canary_percent: 10,
      auto_promote: true,
      max_failed_nodes: 10,
      max_failed_nodes_percent: 10,
      no_auto_rollback: false,
      health_check: { deadline: "5m", min_healthy_time: "30s", max_error_rate: 0.1 },
    });
    expect(json.spec.timeouts).toEqual({ execution_timeout: 60, queue_timeout: 30, total_timeout: 120 });
    expect(json.status.version).toBe(4_000_000_000);
    expect(json.status.revision).toBe(4_000_000_001);
  });
});
