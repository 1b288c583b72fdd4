/**
 * `@edgeplane/bus`: NATS subjects (built only in `subjects.ts`), the protobuf codec, and the
 * {@link Bus} seam with a NATS implementation and an in-process one.
 */
export type { Bus, BusEvent, BusMessage, RequestOptions } from "./bus.js";
export { decode, encode, MAX_MESSAGE_BYTES } from "./codec.js";
export { MemoryBroker, subjectMatches } from "./memory-bus.js";
export type { NatsBusOptions } from "./nats-bus.js";
export { authenticatorFromFile, connectNatsBus } from "./nats-bus.js";
export type { OutboundKind } from "./subjects.js";
export {
  assertNodeId,
  nodeIdProblem,
  OUTBOUND_KINDS,
  parseOutbound,
  SUBJECT_ROOT,
  subjects,
} from "./subjects.js";
