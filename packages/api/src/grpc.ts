/**
 * grpc-js from protobuf-es descriptors.
 *
 * protobuf-es v2 generates message schemas and service descriptors but no grpc-js stubs. This file
 * turns any generated `DescService` into a grpc-js `ServiceDefinition` (serialize with `toBinary`,
 * parse with `fromBinary`), adapts a typed implementation to grpc-js handlers, and builds a typed
 * client, so no method is ever wired by hand. Every method kind is supported: unary, server
 * streaming, client streaming and bidi.
 *
 * Cancellation: a handler gets an `AbortSignal` that fires when the client cancels or its deadline
 * passes; a client call takes `signal` and `timeoutMs`/`deadline`, which are passed to grpc-js.
 * Errors: the package is independent of the error model; the server option `toStatus` and the
 * client option `fromStatus` let the caller map errors once (see `@edgeplane/core`).
 */
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  isMessage,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

type In<M extends Pick<DescMethod, "input">> = M["input"];
type Out<M extends Pick<DescMethod, "output">> = M["output"];

/** What a handler knows about its call. */
export interface HandlerContext {
  /** Aborted when the client cancels, disconnects, or its deadline passes. */
  readonly signal: AbortSignal;
  /** The call's deadline, when the client set one. */
  readonly deadline: Date | undefined;
  /** Request metadata (headers), lower-cased keys, string values only. */
  readonly metadata: Readonly<Record<string, string>>;
  /** The peer address. */
  readonly peer: string;
}

/** The handler of one method, by method kind. */
export type MethodHandler<M extends Pick<DescMethod, "input" | "output" | "methodKind">> =
  M["methodKind"] extends "unary"
    ? (request: MessageShape<In<M>>, ctx: HandlerContext) => Promise<MessageInitShape<Out<M>>>
    : M["methodKind"] extends "server_streaming"
      ? (request: MessageShape<In<M>>, ctx: HandlerContext) => AsyncIterable<MessageInitShape<Out<M>>>
      : M["methodKind"] extends "client_streaming"
        ? (
            requests: AsyncIterable<MessageShape<In<M>>>,
            ctx: HandlerContext,
          ) => Promise<MessageInitShape<Out<M>>>
        : (
            requests: AsyncIterable<MessageShape<In<M>>>,
            ctx: HandlerContext,
          ) => AsyncIterable<MessageInitShape<Out<M>>>;

/** A typed implementation of a whole service: one handler per method, keyed by local name. */
export type ServiceImpl<S extends DescService> = {
  [K in keyof S["method"]]: MethodHandler<S["method"][K]>;
};

/** A gRPC status an error maps to. */
export interface GrpcStatusInit {
  readonly code: number;
  readonly message: string;
  /** Trailing metadata (string values; keys ending in -bin are not used). */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** Options of {@link adaptService}. */
export interface AdaptServiceOptions {
  /** Maps anything a handler throws to a gRPC status. Default: INTERNAL with the error message. */
  readonly toStatus?: (err: unknown) => GrpcStatusInit;
}

function serializer<D extends DescMessage>(schema: D): grpc.serialize<MessageInitShape<D> | MessageShape<D>> {
  return (value) => {
    const message = isMessage(value, schema)
      ? (value as MessageShape<D>)
      : create(schema, value as MessageInitShape<D>);
    const bytes = toBinary(schema, message);
    // A Buffer view of the encoded bytes, not a copy of them.
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer<D extends DescMessage>(schema: D): grpc.deserialize<MessageShape<D>> {
  return (bytes) => fromBinary(schema, bytes);
}

/** The grpc-js path of a method: `/edgeplane.v1.JobService/PutJob`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/**
 * Builds the grpc-js `ServiceDefinition` of a generated service. Keys are the methods' local
 * names (`putJob`), which are also the keys of {@link ServiceImpl} and of the typed client.
 */
export function createServiceDefinition<S extends DescService>(service: S): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: methodPath(method),
      originalName: method.name,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: serializer(method.input) as grpc.serialize<unknown>,
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output) as grpc.serialize<unknown>,
      responseDeserialize: deserializer(method.output),
    };
  }
  return definition;
}

function metadataToRecord(metadata: grpc.Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata.getMap())) {
    if (typeof value === "string") out[key] = value;
  }
  return out;
}

function recordToMetadata(record: Readonly<Record<string, string>> | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (record) for (const [key, value] of Object.entries(record)) metadata.set(key, value);
  return metadata;
}

/** The part of every grpc-js server call that {@link CallContext} uses. */
interface AnyCall {
  /** Set by grpc-js (before it emits "cancelled") when the client cancels or disconnects. */
  readonly cancelled: boolean;
  on(event: "cancelled", listener: () => void): unknown;
  removeListener(event: "cancelled", listener: () => void): unknown;
  getDeadline(): grpc.Deadline;
  getPeer(): string;
  readonly metadata: grpc.Metadata;
}

function deadlineOf(raw: grpc.Deadline): Date | undefined {
  if (raw instanceof Date) return raw;
  return Number.isFinite(raw) ? new Date(raw) : undefined;
}

/**
 * The context of one server call; the signal aborts on cancel, disconnect or deadline.
 *
 * Lazy: most unary handlers never look at the signal or the metadata, so the AbortController
 * (with its "cancelled" listener and deadline timer) and the metadata record are made on first
 * use, from the call's state at that moment (already cancelled, or past its deadline: the new
 * signal is aborted at once). After {@link done} the signal never aborts.
 */
class CallContext implements HandlerContext {
  readonly deadline: Date | undefined;
  /** Read at once: after a disconnect grpc-js can only say "unknown". */
  readonly peer: string;
  readonly #call: AnyCall;
  #controller: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #metadata: Readonly<Record<string, string>> | undefined;
  #done = false;

  constructor(call: AnyCall) {
    this.#call = call;
    this.deadline = deadlineOf(call.getDeadline());
    this.peer = call.getPeer();
  }

  get signal(): AbortSignal {
    if (this.#controller !== undefined) return this.#controller.signal;
    const controller = new AbortController();
    this.#controller = controller;
    if (this.#done) return controller.signal;
    if (this.#call.cancelled) {
      this.#cancel();
      return controller.signal;
    }
    this.#call.on("cancelled", this.#cancel);
    if (this.deadline) {
      this.#timer = setTimeout(
        () => controller.abort(new DOMException("the call's deadline passed", "TimeoutError")),
        Math.max(0, this.deadline.getTime() - Date.now()),
      );
      this.#timer.unref();
    }
    return controller.signal;
  }

  get metadata(): Readonly<Record<string, string>> {
    this.#metadata ??= metadataToRecord(this.#call.metadata);
    return this.#metadata;
  }

  readonly #cancel = (): void => {
    this.#controller?.abort(new DOMException("the call was cancelled", "AbortError"));
  };

  /** The call ended: no more aborts. */
  done(): void {
    this.#done = true;
    if (this.#controller === undefined) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#call.removeListener("cancelled", this.#cancel);
  }
}

function toServiceError(err: unknown, options: AdaptServiceOptions): grpc.ServerErrorResponse {
  const status = options.toStatus
    ? options.toStatus(err)
    : { code: grpc.status.INTERNAL, message: err instanceof Error ? err.message : String(err) };
  return Object.assign(new Error(status.message), {
    code: status.code,
    details: status.message,
    metadata: recordToMetadata(status.metadata),
  });
}

async function writeAll(
  call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  responses: AsyncIterable<unknown>,
  signal: AbortSignal,
): Promise<void> {
  for await (const response of responses) {
    if (signal.aborted) return;
    // Respect the transport's backpressure: wait for "drain" when the buffer is full.
    if (!call.write(response)) {
      await new Promise<void>((resolve) => {
        const onDone = (): void => {
          call.removeListener("drain", onDone);
          signal.removeEventListener("abort", onDone);
          resolve();
        };
        call.once("drain", onDone);
        signal.addEventListener("abort", onDone, { once: true });
      });
    }
  }
}

/**
 * The request stream of a server call as an async iterable. `destroyOnReturn: false` matters for
 * bidi calls: Node's default iterator destroys the whole duplex once the requests end, which
 * would also kill the response side before the handler has written its answers.
 */
function requestsOf(
  call: grpc.ServerReadableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
) {
  return call.iterator({ destroyOnReturn: false }) as AsyncIterable<unknown>;
}

/**
 * Adapts a typed implementation to the untyped grpc-js handler object that
 * `server.addService(createServiceDefinition(service), adaptService(service, impl))` expects.
 */
export function adaptService<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  options: AdaptServiceOptions = {},
): grpc.UntypedServiceImplementation {
  const handlers: grpc.UntypedServiceImplementation = {};
  const table = impl as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const method of service.methods) {
    const fn = table[method.localName];
    if (typeof fn !== "function") {
      throw new TypeError(`${service.typeName}.${method.name}: no handler named "${method.localName}"`);
    }
    const handler = fn.bind(impl);
    switch (method.methodKind) {
      case "unary":
        handlers[method.localName] = (
          call: grpc.ServerUnaryCall<unknown, unknown>,
          callback: grpc.sendUnaryData<unknown>,
        ) => {
          const ctx = new CallContext(call);
          (handler(call.request, ctx) as Promise<unknown>).then(
            (response) => {
              ctx.done();
              callback(null, response);
            },
            (err: unknown) => {
              ctx.done();
              callback(toServiceError(err, options));
            },
          );
        };
        break;
      case "server_streaming":
        handlers[method.localName] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
          const ctx = new CallContext(call);
          writeAll(call, handler(call.request, ctx) as AsyncIterable<unknown>, ctx.signal).then(
            () => {
              ctx.done();
              call.end();
            },
            (err: unknown) => {
              ctx.done();
              call.emit("error", toServiceError(err, options));
            },
          );
        };
        break;
      case "client_streaming":
        handlers[method.localName] = (
          call: grpc.ServerReadableStream<unknown, unknown>,
          callback: grpc.sendUnaryData<unknown>,
        ) => {
          const ctx = new CallContext(call);
          (handler(requestsOf(call), ctx) as Promise<unknown>).then(
            (response) => {
              ctx.done();
              callback(null, response);
            },
            (err: unknown) => {
              ctx.done();
              callback(toServiceError(err, options));
            },
          );
        };
        break;
      case "bidi_streaming":
        handlers[method.localName] = (call: grpc.ServerDuplexStream<unknown, unknown>) => {
          const ctx = new CallContext(call);
          writeAll(call, handler(requestsOf(call), ctx) as AsyncIterable<unknown>, ctx.signal).then(
            () => {
              ctx.done();
              call.end();
            },
            (err: unknown) => {
              ctx.done();
              call.emit("error", toServiceError(err, options));
            },
          );
        };
        break;
    }
  }
  return handlers;
}

/** Options of one client call. */
export interface CallOptions {
  /** Cancels the call when aborted. */
  readonly signal?: AbortSignal;
  /** Relative deadline in milliseconds. */
  readonly timeoutMs?: number;
  /** Absolute deadline (wins over timeoutMs). */
  readonly deadline?: Date;
  /** Request metadata. */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** A typed client method, by method kind. */
export type ClientMethod<M extends Pick<DescMethod, "input" | "output" | "methodKind">> =
  M["methodKind"] extends "unary"
    ? (request: MessageInitShape<In<M>>, options?: CallOptions) => Promise<MessageShape<Out<M>>>
    : M["methodKind"] extends "server_streaming"
      ? (request: MessageInitShape<In<M>>, options?: CallOptions) => AsyncIterable<MessageShape<Out<M>>>
      : M["methodKind"] extends "client_streaming"
        ? (
            requests: AsyncIterable<MessageInitShape<In<M>>>,
            options?: CallOptions,
          ) => Promise<MessageShape<Out<M>>>
        : (
            requests: AsyncIterable<MessageInitShape<In<M>>>,
            options?: CallOptions,
          ) => AsyncIterable<MessageShape<Out<M>>>;

/** A typed client of a whole service, plus `close()`. */
export type Client<S extends DescService> = {
  [K in keyof S["method"]]: ClientMethod<S["method"][K]>;
} & {
  /** Closes the underlying channel. */
  close(): void;
  /** The raw grpc-js client (for waitForReady, channel state). */
  readonly grpcClient: grpc.Client;
};

/** The status of a failed call, as the client received it. */
export interface GrpcStatusReceived {
  readonly code: number;
  readonly message: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** Options of {@link createClient}. */
export interface CreateClientOptions {
  /** Default: insecure credentials (loopback and development). */
  readonly credentials?: grpc.ChannelCredentials;
  readonly channelOptions?: grpc.ChannelOptions;
  /** Maps a failed call's status to the error the client throws. Default: a plain Error. */
  readonly fromStatus?: (status: GrpcStatusReceived) => Error;
  /** Default per-call timeout in milliseconds when a call gives none. */
  readonly defaultTimeoutMs?: number;
}

function callOptionsOf(
  options: CallOptions | undefined,
  defaultTimeoutMs: number | undefined,
): grpc.CallOptions {
  const deadline =
    options?.deadline ??
    (options?.timeoutMs !== undefined
      ? new Date(Date.now() + options.timeoutMs)
      : defaultTimeoutMs !== undefined
        ? new Date(Date.now() + defaultTimeoutMs)
        : undefined);
  return deadline ? { deadline } : {};
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error
    ? signal.reason
    : new DOMException("the call was aborted", "AbortError");
}

/**
 * Builds a typed client of a generated service, sharing one channel for every method.
 * `address` is `host:port`.
 */
export function createClient<S extends DescService>(
  service: S,
  address: string,
  options: CreateClientOptions = {},
): Client<S> {
  const Ctor = grpc.makeGenericClientConstructor(createServiceDefinition(service), service.typeName);
  const raw = new Ctor(
    address,
    options.credentials ?? grpc.credentials.createInsecure(),
    options.channelOptions,
  );
  const rawMethods = raw as unknown as Record<string, (...args: unknown[]) => unknown>;
  const mapError = (err: unknown): Error => {
    const e = err as Partial<grpc.ServiceError>;
    if (typeof e.code !== "number") return err instanceof Error ? err : new Error(String(err));
    const status: GrpcStatusReceived = {
      code: e.code,
      message: e.details ?? e.message ?? "",
      metadata: e.metadata ? metadataToRecord(e.metadata) : {},
    };
    if (options.fromStatus) return options.fromStatus(status);
    return Object.assign(new Error(status.message), status);
  };
  const client: Record<string, unknown> = {
    close: () => raw.close(),
    grpcClient: raw,
  };
  for (const method of service.methods) {
    const name = method.localName;
    const call = rawMethods[name];
    if (!call) throw new TypeError(`grpc-js client has no method ${name}`);
    switch (method.methodKind) {
      case "unary":
        client[name] = (request: unknown, callOpts?: CallOptions) =>
          new Promise((resolve, reject) => {
            const signal = callOpts?.signal;
            if (signal?.aborted) return reject(abortError(signal));
            const c = call.call(
              raw,
              request,
              recordToMetadata(callOpts?.metadata),
              callOptionsOf(callOpts, options.defaultTimeoutMs),
              (err: grpc.ServiceError | null, response: unknown) => {
                signal?.removeEventListener("abort", onAbort);
                if (err) {
                  reject(signal?.aborted ? abortError(signal) : mapError(err));
                } else resolve(response);
              },
            ) as grpc.ClientUnaryCall;
            const onAbort = (): void => c.cancel();
            signal?.addEventListener("abort", onAbort, { once: true });
          });
        break;
      case "server_streaming":
        client[name] = (request: unknown, callOpts?: CallOptions) =>
          readStream(
            () =>
              call.call(
                raw,
                request,
                recordToMetadata(callOpts?.metadata),
                callOptionsOf(callOpts, options.defaultTimeoutMs),
              ) as grpc.ClientReadableStream<unknown>,
            callOpts?.signal,
            mapError,
          );
        break;
      case "client_streaming":
        client[name] = (requests: AsyncIterable<unknown>, callOpts?: CallOptions) =>
          new Promise((resolve, reject) => {
            const signal = callOpts?.signal;
            if (signal?.aborted) return reject(abortError(signal));
            const c = call.call(
              raw,
              recordToMetadata(callOpts?.metadata),
              callOptionsOf(callOpts, options.defaultTimeoutMs),
              (err: grpc.ServiceError | null, response: unknown) => {
                signal?.removeEventListener("abort", onAbort);
                if (err) reject(signal?.aborted ? abortError(signal) : mapError(err));
                else resolve(response);
              },
            ) as grpc.ClientWritableStream<unknown>;
            const onAbort = (): void => c.cancel();
            signal?.addEventListener("abort", onAbort, { once: true });
            pump(requests, c).catch((err: unknown) => {
              c.cancel();
              reject(err);
            });
          });
        break;
      case "bidi_streaming":
        client[name] = (requests: AsyncIterable<unknown>, callOpts?: CallOptions) =>
          readStream(
            () => {
              const c = call.call(
                raw,
                recordToMetadata(callOpts?.metadata),
                callOptionsOf(callOpts, options.defaultTimeoutMs),
              ) as grpc.ClientDuplexStream<unknown, unknown>;
              pump(requests, c).catch(() => c.cancel());
              return c;
            },
            callOpts?.signal,
            mapError,
          );
        break;
    }
  }
  return client as Client<S>;
}

async function pump(
  requests: AsyncIterable<unknown>,
  stream: grpc.ClientWritableStream<unknown>,
): Promise<void> {
  for await (const request of requests) {
    if (!stream.write(request)) await new Promise<void>((resolve) => stream.once("drain", resolve));
  }
  stream.end();
}

async function* readStream(
  start: () => grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>,
  signal: AbortSignal | undefined,
  mapError: (err: unknown) => Error,
): AsyncGenerator<unknown> {
  if (signal?.aborted) throw abortError(signal);
  const stream = start();
  const onAbort = (): void => stream.cancel();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const message of stream) yield message;
  } catch (err) {
    if (signal?.aborted) throw abortError(signal);
    throw mapError(err);
  } finally {
    signal?.removeEventListener("abort", onAbort);
    // A consumer that stops early (break) cancels the call instead of leaving it open.
    stream.cancel();
  }
}
