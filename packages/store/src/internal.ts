/**
 * `@edgeplane/store/internal`: the Redis store's encoding, for tools that must write or read the
 * exact structures the Lua scripts write (the list benchmark's bulk loader, data inspection).
 * Not a stable API: it changes with the key layout.
 */

export type { IndexKind, JobStoreKeys } from "./redis/keys.js";
export { indexMember, jobStoreKeys, nameMember, timeMember, versionField } from "./redis/keys.js";
export type { RecordField, RecordMeta } from "./redis/record-codec.js";
export {
  decodeMeta,
  decodeRecord,
  decodeVersion,
  encodeRecord,
  labelsSlot,
  RECORD_FIELDS,
} from "./redis/record-codec.js";
export type { ScriptName } from "./redis/scripts.js";
export { SCRIPTS, scriptSource } from "./redis/scripts.js";
export { specDigest, submittedMessage } from "./semantics.js";
