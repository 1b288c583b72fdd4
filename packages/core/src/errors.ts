/**
 * The one error type of edgeplane.
 *
 * Every failure that crosses a package boundary is an {@link EdgeplaneError} with a code from a
 * closed list aligned with gRPC status codes. The code decides, in exactly one table
 * ({@link ERROR_CODES}), the gRPC status number and the HTTP status an adapter answers with, and
 * whether a client may retry. Messages say what went wrong and what to do next; `details` name
 * the offending fields so that a UI or a CLI can point at them.
 */

/** The error codes, one line per code: when it is used. */
export const ERROR_CODES = {
  /** The caller's input is malformed or breaks a rule; `details` name the fields. */
  invalid_argument: { grpc: 3, http: 400, retryable: false },
  /** The named object does not exist (or was deleted). */
  not_found: { grpc: 5, http: 404, retryable: false },
  /** An object with that identity exists already. */
  already_exists: { grpc: 6, http: 409, retryable: false },
  /** The caller is not allowed to do this (bad or missing API key, reserved field). */
  permission_denied: { grpc: 7, http: 403, retryable: false },
  /** No credentials, or credentials that cannot be verified. */
  unauthenticated: { grpc: 16, http: 401, retryable: false },
  /** A size or rate limit: request body too large, too many results asked for. */
  resource_exhausted: { grpc: 8, http: 413, retryable: false },
  /** The object is not in a state that allows this (illegal state transition). */
  failed_precondition: { grpc: 9, http: 409, retryable: false },
  /** A check-and-set lost: the expected version/revision did not match; re-read and retry. */
  aborted: { grpc: 10, http: 409, retryable: true },
  /** A value is outside the accepted range (page beyond the end, ...). */
  out_of_range: { grpc: 11, http: 400, retryable: false },
  /** The operation is not supported by this server or this configuration. */
  unimplemented: { grpc: 12, http: 501, retryable: false },
  /** A dependency (Redis, NATS) cannot be reached right now; retry with backoff. */
  unavailable: { grpc: 14, http: 503, retryable: true },
  /** The deadline passed before the operation finished. */
  deadline_exceeded: { grpc: 4, http: 504, retryable: true },
  /** The caller cancelled the operation. */
  canceled: { grpc: 1, http: 499, retryable: false },
  /** A bug or an invariant broken on the server side. */
  internal: { grpc: 13, http: 500, retryable: false },
} as const satisfies Record<string, { grpc: number; http: number; retryable: boolean }>;

/** A closed union of the error codes. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** One structured detail of an error: which field, and what is wrong with it. */
export interface ErrorDetail {
  /** The path of the offending field, such as `spec.deployment.health_check.deadline`. */
  readonly field: string;
  /** What is wrong with it and, where it helps, what is expected. */
  readonly description: string;
}

/** Options of {@link EdgeplaneError}. */
export interface EdgeplaneErrorOptions extends ErrorOptions {
  readonly details?: readonly ErrorDetail[];
  /** Extra machine-readable facts (the current version on a CAS conflict, ...). */
  readonly metadata?: Readonly<Record<string, string | number | boolean>>;
}

const BRAND = Symbol.for("edgeplane.error");

/** The error type every package throws. Never throw strings. */
export class EdgeplaneError extends Error {
  override readonly name = "EdgeplaneError";
  readonly code: ErrorCode;
  readonly details: readonly ErrorDetail[];
  readonly metadata: Readonly<Record<string, string | number | boolean>>;
  readonly [BRAND] = true;

  constructor(code: ErrorCode, message: string, options: EdgeplaneErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? [];
    this.metadata = options.metadata ?? {};
  }

  /** Whether a client may retry the same call (with backoff). */
  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
  }

  /** The gRPC status number of this error. */
  get grpcCode(): number {
    return ERROR_CODES[this.code].grpc;
  }

  /** The HTTP status of this error. */
  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }

  /** The JSON body REST answers with: `{"error": {"code", "message", "details"}}`. */
  toJSON(): { error: { code: ErrorCode; message: string; details: ErrorDetail[]; metadata?: object } } {
    const error: { code: ErrorCode; message: string; details: ErrorDetail[]; metadata?: object } = {
      code: this.code,
      message: this.message,
      details: [...this.details],
    };
    if (Object.keys(this.metadata).length > 0) error.metadata = { ...this.metadata };
    return { error };
  }

  /**
   * Turns anything thrown into an EdgeplaneError: an EdgeplaneError is returned as is, an
   * `AbortError` becomes `canceled`, anything else `internal` (with the original as `cause`).
   */
  static from(err: unknown, fallback: ErrorCode = "internal"): EdgeplaneError {
    if (isEdgeplaneError(err)) return err;
    if (err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError")) {
      return new EdgeplaneError(err.name === "AbortError" ? "canceled" : "deadline_exceeded", err.message, {
        cause: err,
      });
    }
    const message = err instanceof Error ? err.message : String(err);
    return new EdgeplaneError(fallback, message, { cause: err });
  }

  /** The code whose gRPC status number is `grpc`, `internal` when unknown. */
  static codeFromGrpc(grpc: number): ErrorCode {
    for (const [code, row] of Object.entries(ERROR_CODES)) if (row.grpc === grpc) return code as ErrorCode;
    return "internal";
  }
}

/** Type guard that also works across copies of this module (it checks a registered symbol). */
export function isEdgeplaneError(err: unknown): err is EdgeplaneError {
  return typeof err === "object" && err !== null && (err as { [BRAND]?: boolean })[BRAND] === true;
}

/** Shorthand for an `invalid_argument` error about one field. */
export function invalidArgument(field: string, description: string): EdgeplaneError {
  return new EdgeplaneError("invalid_argument", `${field}: ${description}`, {
    details: [{ field, description }],
  });
}

/** A gRPC status as the server sends it and the client receives it (no grpc-js types here). */
export interface GrpcStatusLike {
  readonly code: number;
  readonly message: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

/** The trailing-metadata key that carries the error's JSON body across gRPC. */
export const ERROR_METADATA_KEY = "edgeplane-error";

/** JSON with every non-ASCII character escaped: gRPC metadata values must be printable ASCII. */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * The one mapping of any thrown value to a gRPC status (server side). The code comes from
 * {@link ERROR_CODES}; the full error body travels in the `edgeplane-error` trailer so that
 * clients get the same code, details and metadata as REST callers.
 */
export function toGrpcStatus(err: unknown): Required<GrpcStatusLike> {
  const e = EdgeplaneError.from(err);
  return {
    code: e.grpcCode,
    message: e.message,
    metadata: { [ERROR_METADATA_KEY]: asciiJson(e.toJSON().error) },
  };
}

/** The one mapping of a received gRPC status back to an {@link EdgeplaneError} (client side). */
export function fromGrpcStatus(status: GrpcStatusLike): EdgeplaneError {
  const raw = status.metadata?.[ERROR_METADATA_KEY];
  if (raw) {
    try {
      const body = JSON.parse(raw) as {
        code?: string;
        message?: string;
        details?: ErrorDetail[];
        metadata?: Record<string, string | number | boolean>;
      };
      if (body.code && body.code in ERROR_CODES) {
        return new EdgeplaneError(body.code as ErrorCode, body.message ?? status.message, {
          details: Array.isArray(body.details) ? body.details : [],
          metadata: body.metadata ?? {},
        });
      }
    } catch {
      // A trailer we cannot read: fall back to the status code alone.
    }
  }
  const code = EdgeplaneError.codeFromGrpc(status.code);
  const hint =
    code === "unavailable" ? " (is the control plane running? check --server / EDGEPLANE_SERVER)" : "";
  return new EdgeplaneError(code, `${status.message}${hint}`);
}
