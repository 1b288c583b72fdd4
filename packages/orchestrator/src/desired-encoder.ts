/**
 * The `DesiredState` pushes of a fan-out, encoded without building a protobuf message per node.
 *
 * The assignments of one job version on many nodes differ only in their execution id (field 1
 * of `Assignment`). Protobuf writes fields in field-number order and leaves out empty strings, so
 * an assignment's encoding is exactly `field 1 (execution id)` followed by the encoding of the same
 * assignment without an execution id: that tail (the "template", which holds the config `Struct`,
 * the costly part) is encoded once per job version and reused for every node. The `DesiredState`
 * around the assignments (node id, revision, the assignments, generated_at) is written by hand.
 * The bytes are identical to `toBinary(DesiredStateSchema, desiredStateMessage(...))` (a unit
 * test compares them). Config objects are taken as immutable (as every record handed around is).
 */
import { toBinary } from "@bufbuild/protobuf";
import { AssignmentSchema, DesiredStateSchema } from "@edgeplane/api";
import { encode } from "@edgeplane/bus";
import { type AssignmentRecord, AssignmentTemplates } from "@edgeplane/store";
import { assignmentToMessage, desiredStateMessage } from "./desired-message.js";

const utf8 = new TextEncoder();

/** Bytes of the varint of a non-negative integer below 2^53. */
function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Writes the varint of a non-negative integer below 2^53 at `at`; returns the next offset. */
function writeVarint(out: Uint8Array, at: number, n: number): number {
  while (n >= 128) {
    out[at++] = (n % 128) | 128;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}

/** The UTF-8 length of a string (lone surrogates count 3 bytes: U+FFFD, as TextEncoder writes them). */
function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 2; // a pair: 2 UTF-16 units, 4 bytes
        i++;
      } else n += 2;
    } else n += 2;
  }
  return n;
}

/** Writes a string field (tag, length, UTF-8) at `at`; `bytes` is its UTF-8 length. */
function writeString(out: Uint8Array, at: number, tag: number, s: string, bytes: number): number {
  out[at++] = tag;
  at = writeVarint(out, at, bytes);
  if (bytes === s.length) {
    for (let i = 0; i < s.length; i++) out[at + i] = s.charCodeAt(i);
  } else utf8.encodeInto(s, out.subarray(at, at + bytes));
  return at + bytes;
}

/** The size of a length-delimited field of `length` bytes (one-byte tag). */
function fieldSize(length: number): number {
  return 1 + varintSize(length) + length;
}

/** Encodes `DesiredState` messages, reusing each job version's assignment encoding. */
export class DesiredStateEncoder {
  /** Per job version: the assignment's encoding without its execution id. */
  readonly #templates = new AssignmentTemplates((a) =>
    toBinary(AssignmentSchema, assignmentToMessage({ ...a, executionId: "" })),
  );

  /** The encoded `DesiredState` of a node (what `encode(DesiredStateSchema, desiredStateMessage(...))` gives). */
  encode(
    nodeId: string,
    revision: number,
    assignments: readonly AssignmentRecord[],
    now: number,
  ): Uint8Array {
    if (
      !Number.isSafeInteger(now) ||
      now < 0 ||
      !Number.isInteger(revision) ||
      revision < 0 ||
      revision > 0xffffffff
    )
      return encode(DesiredStateSchema, desiredStateMessage(nodeId, revision, assignments, now));
    const nodeBytes = utf8Length(nodeId);
    const n = assignments.length;
    // Per assignment: its execution id's UTF-8 length and its tail (the template).
    const idBytes = new Array<number>(n);
    const tails = new Array<Uint8Array>(n);
    let size = nodeBytes > 0 ? fieldSize(nodeBytes) : 0;
    if (revision > 0) size += 1 + varintSize(revision);
    for (let i = 0; i < n; i++) {
      const a = assignments[i] as AssignmentRecord;
      const id = utf8Length(a.executionId);
      const tail = this.#templates.get(a);
      idBytes[i] = id;
      tails[i] = tail;
      size += fieldSize((id > 0 ? fieldSize(id) : 0) + tail.length);
    }
    const seconds = Math.floor(now / 1000);
    const nanos = (now - seconds * 1000) * 1_000_000;
    const timestamp = (seconds > 0 ? 1 + varintSize(seconds) : 0) + (nanos > 0 ? 1 + varintSize(nanos) : 0);
    size += fieldSize(timestamp);

    const out = new Uint8Array(size);
    let at = 0;
    if (nodeBytes > 0) at = writeString(out, at, 0x0a, nodeId, nodeBytes);
    if (revision > 0) {
      out[at++] = 0x10;
      at = writeVarint(out, at, revision);
    }
    for (let i = 0; i < n; i++) {
      const id = idBytes[i] as number;
      const tail = tails[i] as Uint8Array;
      out[at++] = 0x1a;
      at = writeVarint(out, at, (id > 0 ? fieldSize(id) : 0) + tail.length);
      if (id > 0) at = writeString(out, at, 0x0a, (assignments[i] as AssignmentRecord).executionId, id);
      out.set(tail, at);
      at += tail.length;
    }
    out[at++] = 0x22;
    at = writeVarint(out, at, timestamp);
    if (seconds > 0) {
      out[at++] = 0x08;
      at = writeVarint(out, at, seconds);
    }
    if (nanos > 0) {
      out[at++] = 0x10;
      at = writeVarint(out, at, nanos);
    }
    return out;
  }
}
