/** Stored desired state → the `DesiredState` message pushed to agents. */
import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type Assignment, AssignmentSchema, type DesiredState, DesiredStateSchema } from "@edgeplane/api";
import type { AssignmentRecord } from "@edgeplane/store";

/** An assignment record as the proto message. */
export function assignmentToMessage(a: AssignmentRecord): Assignment {
  return create(AssignmentSchema, {
    executionId: a.executionId,
    jobId: a.jobId,
    jobVersion: a.jobVersion,
    namespace: a.namespace,
    jobName: a.jobName,
    type: a.type,
    config: a.config as JsonObject,
    desiredState: a.desiredState,
    timeouts: {
      executionTimeout: a.timeouts.executionTimeout,
      queueTimeout: a.timeouts.queueTimeout,
      totalTimeout: a.timeouts.totalTimeout,
    },
    restartPolicy: a.restartPolicy,
    maxErrorRate: a.maxErrorRate,
    deploymentId: a.deploymentId,
  });
}

/** A node's desired state as the proto message (`revision` 0 and no assignments when none is stored). */
export function desiredStateMessage(
  nodeId: string,
  revision: number,
  assignments: readonly AssignmentRecord[],
  now: number,
): DesiredState {
  return create(DesiredStateSchema, {
    nodeId,
    revision,
    assignments: assignments.map(assignmentToMessage),
    generatedAt: timestampFromMs(now),
  });
}
