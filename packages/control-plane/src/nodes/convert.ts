/**
 * Registry views → the `Node` message and its REST JSON (proto field names), so REST and gRPC
 * can never disagree on a shape.
 */
import { create, type JsonValue, toJson } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type Node, NodeSchema } from "@edgeplane/api";
import type { NodeView } from "@edgeplane/orchestrator";

const JSON_OPTIONS = { useProtoFieldName: true } as const;

/** A node view as the proto message. */
export function nodeToMessage(n: NodeView): Node {
  return create(NodeSchema, {
    id: n.id,
    labels: { ...n.labels },
    state: n.state,
    lastHeartbeat: n.lastHeartbeat > 0 ? timestampFromMs(n.lastHeartbeat) : undefined,
    agentVersion: n.agentVersion,
    registeredAt: n.registeredAt > 0 ? timestampFromMs(n.registeredAt) : undefined,
    desiredRevision: n.desiredRevision,
    appliedRevision: n.appliedRevision,
    executions: n.executions.map((e) => e.executionId),
    operatorLabels: { ...n.operatorLabels },
    executors: [...n.executors],
    message: n.message,
  });
}

/** A node view in its REST JSON form. */
export function nodeToJson(n: NodeView): JsonValue {
  return toJson(NodeSchema, nodeToMessage(n), JSON_OPTIONS);
}
