/**
 * Protobuf codec of bus messages, with the size limit and the errors that the control plane
 * counts and drops (a malformed or oversized message never throws past the subscriber).
 */
import {
  create,
  type DescMessage,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { EdgeplaneError } from "@edgeplane/core";

/** The largest message accepted from the bus (agents' messages are far smaller). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** Encodes a message. */
export function encode<D extends DescMessage>(
  schema: D,
  message: MessageInitShape<D> | MessageShape<D>,
): Uint8Array {
  return toBinary(schema, create(schema, message as MessageInitShape<D>));
}

/**
 * Decodes a message; `resource_exhausted` when larger than `maxBytes`, `invalid_argument` when it
 * is not a valid encoding of `schema`.
 */
export function decode<D extends DescMessage>(
  schema: D,
  data: Uint8Array,
  maxBytes = MAX_MESSAGE_BYTES,
): MessageShape<D> {
  if (data.byteLength > maxBytes) {
    throw new EdgeplaneError(
      "resource_exhausted",
      `message of ${data.byteLength} bytes exceeds the ${maxBytes}-byte limit`,
    );
  }
  try {
    return fromBinary(schema, data);
  } catch (err) {
    throw new EdgeplaneError("invalid_argument", `malformed ${schema.typeName}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
