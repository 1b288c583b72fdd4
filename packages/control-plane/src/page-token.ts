/**
 * Opaque, signed page tokens.
 *
 * A token carries the keyset cursor (sort key + id of the last item) and a digest of the query it
 * belongs to (namespace, filters, order), signed with HMAC-SHA256. A tampered token, or a token
 * reused with different filters, is refused with `invalid_argument`. Every replica must share the
 * secret: with the Redis store it is created once and kept in Redis.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { EdgeplaneError } from "@edgeplane/core";

/** Signs and opens page tokens. */
export class PageTokens {
  readonly #secret: Buffer;

  constructor(secret: Buffer | string = randomBytes(32)) {
    this.#secret = typeof secret === "string" ? Buffer.from(secret, "utf8") : secret;
  }

  /** A token for `cursor` within the query described by `binding`. */
  seal(binding: unknown, cursor: unknown): string {
    const payload = Buffer.from(JSON.stringify({ q: digest(binding), c: cursor }), "utf8").toString(
      "base64url",
    );
    return `${payload}.${this.#mac(payload)}`;
  }

  /** The cursor of a token issued for the same `binding`; `invalid_argument` otherwise. */
  open<T>(token: string, binding: unknown, field = "next_token"): T {
    const dot = token.lastIndexOf(".");
    const payload = dot > 0 ? token.slice(0, dot) : "";
    const mac = dot > 0 ? token.slice(dot + 1) : "";
    const expected = this.#mac(payload);
    if (
      payload === "" ||
      mac.length !== expected.length ||
      !timingSafeEqual(Buffer.from(mac), Buffer.from(expected))
    ) {
      throw bad(
        field,
        "is not a token this server issued (it was changed, truncated or signed by another cluster)",
      );
    }
    let body: { q?: string; c?: T };
    try {
      body = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { q?: string; c?: T };
    } catch {
      throw bad(field, "cannot be read");
    }
    if (body.q !== digest(binding)) {
      throw bad(
        field,
        "belongs to a different query: keep namespace, filters and order the same while paging, or start again without next_token",
      );
    }
    return body.c as T;
  }

  #mac(payload: string): string {
    return createHmac("sha256", this.#secret).update(payload).digest("base64url").slice(0, 32);
  }
}

function digest(binding: unknown): string {
  return createHash("sha256").update(JSON.stringify(binding)).digest("base64url").slice(0, 16);
}

function bad(field: string, description: string): EdgeplaneError {
  return new EdgeplaneError("invalid_argument", `${field}: ${description}`, {
    details: [{ field, description }],
  });
}
