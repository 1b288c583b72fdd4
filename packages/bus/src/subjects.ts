/**
 * Every NATS subject of edgeplane, built here and nowhere else.
 *
 * Subjects are per node, so NATS permissions can pin each agent's credentials to its own subjects:
 *
 * | subject | direction | payload |
 * |---|---|---|
 * | `ep.node.<id>.in.desired` | control plane → agent (push) | `DesiredState` |
 * | `ep.node.<id>.out.register` | agent → control plane (request/reply) | `AgentRegisterRequest` → `AgentRegisterResponse` |
 * | `ep.node.<id>.out.desired` | agent → control plane (request/reply) | `DesiredStateRequest` → `DesiredState` |
 * | `ep.node.<id>.out.heartbeat` | agent → control plane | `Heartbeat` |
 * | `ep.node.<id>.out.event` | agent → control plane | `ExecutionEvent` |
 * | `ep.node.<id>.out.logs` | agent → control plane | `LogBatch` |
 * | `ep.inbox.<id>.>` | replies to the agent's requests (its own inbox prefix) | |
 *
 * The control plane subscribes to `ep.node.*.out.>` and takes the node id from the subject, never
 * from the message body.
 */
import { EdgeplaneError } from "@edgeplane/core";

/** The root of every subject. */
export const SUBJECT_ROOT = "ep";

/** What an agent sends. */
export const OUTBOUND_KINDS = ["register", "desired", "heartbeat", "event", "logs"] as const;
export type OutboundKind = (typeof OUTBOUND_KINDS)[number];

/**
 * Node ids are single NATS subject tokens: 1–63 characters of letters, digits, `-` and `_`,
 * starting with a letter or digit (no `.`, which would split the subject, and no wildcards).
 */
export function nodeIdProblem(id: string): string | undefined {
  if (id.length === 0 || id.length > 63) return "must be 1-63 characters";
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    if (alnum) continue;
    if (i > 0 && (c === 0x2d || c === 0x5f)) continue;
    return `${JSON.stringify(id[i])} at offset ${i} is not allowed; use letters, digits, "-" and "_" (no dots), starting with a letter or digit`;
  }
  return undefined;
}

/** Throws invalid_argument when `id` cannot be a node id. */
export function assertNodeId(id: string, field = "node_id"): string {
  const problem = nodeIdProblem(id);
  if (problem)
    throw new EdgeplaneError("invalid_argument", `${field}: ${JSON.stringify(id)} ${problem}`, {
      details: [{ field, description: problem }],
    });
  return id;
}

/** Subjects of one node. */
export const subjects = {
  /** Desired state pushed to the node. */
  desired: (nodeId: string) => `${SUBJECT_ROOT}.node.${nodeId}.in.desired`,
  /** Everything a node may receive. */
  nodeInbound: (nodeId: string) => `${SUBJECT_ROOT}.node.${nodeId}.in.>`,
  /** One kind of message a node sends. */
  outbound: (nodeId: string, kind: OutboundKind) => `${SUBJECT_ROOT}.node.${nodeId}.out.${kind}`,
  /** Everything a node may send. */
  nodeOutbound: (nodeId: string) => `${SUBJECT_ROOT}.node.${nodeId}.out.>`,
  /** What the control plane subscribes to: every node's messages of one kind. */
  allOutbound: (kind: OutboundKind | ">") => `${SUBJECT_ROOT}.node.*.out.${kind}`,
  /** The reply-inbox prefix of a node (nats.js `inboxPrefix`). */
  inboxPrefix: (nodeId: string) => `${SUBJECT_ROOT}.inbox.${nodeId}`,
  /** Every reply inbox (what the control plane may publish replies to). */
  allInboxes: () => `${SUBJECT_ROOT}.inbox.>`,
} as const;

/** Parses an outbound subject into node id and kind; undefined when it is not one. */
export function parseOutbound(subject: string): { nodeId: string; kind: OutboundKind } | undefined {
  const parts = subject.split(".");
  if (parts.length !== 5 || parts[0] !== SUBJECT_ROOT || parts[1] !== "node" || parts[3] !== "out")
    return undefined;
  const nodeId = parts[2] as string;
  const kind = parts[4] as OutboundKind;
  if (nodeIdProblem(nodeId) !== undefined || !(OUTBOUND_KINDS as readonly string[]).includes(kind))
    return undefined;
  return { nodeId, kind };
}
