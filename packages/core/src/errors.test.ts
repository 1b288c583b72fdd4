import { describe, expect, it } from "vitest";
import {
  EdgeplaneError,
  ERROR_CODES,
  ERROR_METADATA_KEY,
  type ErrorCode,
  fromGrpcStatus,
  invalidArgument,
  isEdgeplaneError,
  toGrpcStatus,
} from "./errors.js";

const codes = Object.keys(ERROR_CODES) as ErrorCode[];

describe("EdgeplaneError", () => {
  it("maps every code to a distinct gRPC status and a sensible HTTP status", () => {
    const grpc = codes.map((c) => ERROR_CODES[c].grpc);
    expect(new Set(grpc).size).toBe(codes.length);
    for (const c of codes) {
      const { http } = ERROR_CODES[c];
      expect(http).toBeGreaterThanOrEqual(400);
      expect(http).toBeLessThan(600);
    }
    expect(new EdgeplaneError("aborted", "x").httpStatus).toBe(409);
    expect(new EdgeplaneError("resource_exhausted", "x").grpcCode).toBe(8);
    expect(new EdgeplaneError("not_found", "x").httpStatus).toBe(404);
  });

  it("round-trips every code through a gRPC status, details and metadata included", () => {
    for (const code of codes) {
      const original = new EdgeplaneError(code, `ünïcödé message for ${code}`, {
        details: [{ field: "spec.name", description: "must not be empty — name it" }],
        metadata: { current_version: 7, retry: true },
      });
      const status = toGrpcStatus(original);
      expect(status.code).toBe(ERROR_CODES[code].grpc);
      // gRPC metadata values must be printable ASCII.
      expect(status.metadata[ERROR_METADATA_KEY]).toMatch(/^[\x20-\x7e]*$/);
      const back = fromGrpcStatus(status);
      expect(back.code).toBe(code);
      expect(back.message).toBe(original.message);
      expect(back.details).toEqual(original.details);
      expect(back.metadata).toEqual(original.metadata);
    }
  });

  it("falls back to the status code when the trailer is missing or unreadable", () => {
    expect(fromGrpcStatus({ code: 5, message: "gone" }).code).toBe("not_found");
    expect(fromGrpcStatus({ code: 14, message: "connect failed" }).message).toContain("EDGEPLANE_SERVER");
    expect(
      fromGrpcStatus({ code: 3, message: "x", metadata: { [ERROR_METADATA_KEY]: "{not json" } }).code,
    ).toBe("invalid_argument");
    expect(fromGrpcStatus({ code: 2, message: "unknown" }).code).toBe("internal");
  });

  it("wraps foreign errors: AbortError → canceled, TimeoutError → deadline_exceeded, others → internal", () => {
    expect(EdgeplaneError.from(new DOMException("x", "AbortError")).code).toBe("canceled");
    expect(EdgeplaneError.from(new DOMException("x", "TimeoutError")).code).toBe("deadline_exceeded");
    const plain = EdgeplaneError.from(new TypeError("bad"));
    expect(plain.code).toBe("internal");
    expect(plain.cause).toBeInstanceOf(TypeError);
    expect(EdgeplaneError.from("a string").message).toBe("a string");
    const e = new EdgeplaneError("not_found", "x");
    expect(EdgeplaneError.from(e)).toBe(e);
  });

  it("renders the REST error body", () => {
    const e = invalidArgument("spec.type", 'must be one of pipeline, query, update, config (got "batch")');
    expect(e.toJSON()).toEqual({
      error: {
        code: "invalid_argument",
        message: 'spec.type: must be one of pipeline, query, update, config (got "batch")',
        details: [
          { field: "spec.type", description: 'must be one of pipeline, query, update, config (got "batch")' },
        ],
      },
    });
    expect(isEdgeplaneError(e)).toBe(true);
    expect(isEdgeplaneError(new Error("x"))).toBe(false);
    expect(e.retryable).toBe(false);
    expect(new EdgeplaneError("unavailable", "x").retryable).toBe(true);
  });
});
