/**
 * The generic grpc-js adapter of @edgeplane/api over a real grpc-js server on loopback: every
 * method kind, errors mapped once both ways, deadlines and AbortSignal reaching the handler.
 */
import { create, createFileRegistry, type DescService } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  file_google_protobuf_wrappers,
  type StringValue,
  StringValueSchema,
} from "@bufbuild/protobuf/wkt";
import {
  adaptService,
  type Client,
  createClient,
  createServiceDefinition,
  Health,
  type ServiceImpl,
  HealthCheckResponse_ServingStatus as Status,
  SystemService,
} from "@edgeplane/api";
import { EdgeplaneError, fromGrpcStatus, isEdgeplaneError, toGrpcStatus } from "@edgeplane/core";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";

const servers: grpc.Server[] = [];
const clients: Array<{ close(): void }> = [];

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) s.forceShutdown();
});

async function serve(add: (server: grpc.Server) => void): Promise<string> {
  const server = new grpc.Server();
  add(server);
  servers.push(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return `127.0.0.1:${port}`;
}

function client<S extends DescService>(service: S, address: string): Client<S> {
  const c = createClient(service, address, { fromStatus: fromGrpcStatus });
  clients.push(c);
  return c;
}

function register<S extends DescService>(server: grpc.Server, service: S, impl: ServiceImpl<S>): void {
  server.addService(
    createServiceDefinition(service),
    adaptService(service, impl, { toStatus: toGrpcStatus }),
  );
}

/** Resolves when the signal aborts, with the abort reason's name. */
function aborted(signal: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    const done = (): void => resolve((signal.reason as Error | undefined)?.name ?? "aborted");
    if (signal.aborted) done();
    else signal.addEventListener("abort", done, { once: true });
  });
}

describe("createServiceDefinition", () => {
  it("derives paths, stream flags and codecs from the descriptor", () => {
    const def = createServiceDefinition(Health);
    expect(Object.keys(def).sort()).toEqual(["check", "list", "watch"]);
    expect(def.check?.path).toBe("/grpc.health.v1.Health/Check");
    expect(def.watch?.responseStream).toBe(true);
    expect(def.watch?.requestStream).toBe(false);
    const bytes = def.check?.requestSerialize({ service: "x" });
    expect(def.check?.requestDeserialize(bytes as Buffer)).toMatchObject({ service: "x" });
  });
});

describe("unary calls", () => {
  it("calls a handler and returns the typed response", async () => {
    const address = await serve((s) =>
      register(s, SystemService, {
        async getVersion() {
          return { version: "9.9.9", apiVersion: "edgeplane.v1", store: "memory" };
        },
      }),
    );
    const v = await client(SystemService, address).getVersion({});
    expect(v.version).toBe("9.9.9");
    expect(v.store).toBe("memory");
  });

  it("maps an EdgeplaneError to its gRPC code and back, details included", async () => {
    const address = await serve((s) =>
      register(s, SystemService, {
        async getVersion() {
          throw new EdgeplaneError("invalid_argument", "spec.name: must not be empty — give the job a name", {
            details: [{ field: "spec.name", description: "must not be empty" }],
            metadata: { current_version: 3 },
          });
        },
      }),
    );
    const err = await client(SystemService, address)
      .getVersion({})
      .catch((e: unknown) => e);
    expect(isEdgeplaneError(err)).toBe(true);
    const e = err as EdgeplaneError;
    expect(e.code).toBe("invalid_argument");
    expect(e.grpcCode).toBe(grpc.status.INVALID_ARGUMENT);
    expect(e.message).toContain("give the job a name");
    expect(e.details).toEqual([{ field: "spec.name", description: "must not be empty" }]);
    expect(e.metadata).toEqual({ current_version: 3 });
  });

  it("maps a non-EdgeplaneError to INTERNAL", async () => {
    const address = await serve((s) =>
      register(s, SystemService, {
        async getVersion() {
          throw new TypeError("boom");
        },
      }),
    );
    const err = (await client(SystemService, address)
      .getVersion({})
      .catch((e: unknown) => e)) as EdgeplaneError;
    expect(err.code).toBe("internal");
  });

  it("passes a deadline to the handler, whose signal aborts when it passes", async () => {
    let handlerSaw: Promise<string> | undefined;
    let deadlineSeen: Date | undefined;
    const address = await serve((s) =>
      register(s, SystemService, {
        getVersion(_req, ctx) {
          deadlineSeen = ctx.deadline;
          handlerSaw = aborted(ctx.signal);
          return handlerSaw.then(() => ({}));
        },
      }),
    );
    const started = Date.now();
    const err = (await client(SystemService, address)
      .getVersion({}, { timeoutMs: 200 })
      .catch((e: unknown) => e)) as EdgeplaneError;
    expect(err.code).toBe("deadline_exceeded");
    expect(Date.now() - started).toBeLessThan(5000);
    expect(deadlineSeen).toBeInstanceOf(Date);
    await expect(handlerSaw).resolves.toMatch(/TimeoutError|AbortError/);
  });

  it("cancels the call when the client's AbortSignal fires", async () => {
    let handlerSaw: Promise<string> | undefined;
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => {
      entered = r;
    });
    const address = await serve((s) =>
      register(s, SystemService, {
        getVersion(_req, ctx) {
          handlerSaw = aborted(ctx.signal);
          entered();
          return handlerSaw.then(() => ({}));
        },
      }),
    );
    const controller = new AbortController();
    const call = client(SystemService, address).getVersion({}, { signal: controller.signal });
    await inHandler;
    controller.abort();
    await expect(call).rejects.toMatchObject({ name: "AbortError" });
    await expect(handlerSaw).resolves.toBe("AbortError");
  });

  it("gives an aborted signal to a handler that first looks after the client cancelled", async () => {
    let cancelledSeen!: () => void;
    const cancelled = new Promise<void>((r) => {
      cancelledSeen = r;
    });
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => {
      entered = r;
    });
    let handlerSaw: Promise<string> | undefined;
    const address = await serve((s) =>
      register(s, SystemService, {
        async getVersion(_req, ctx) {
          entered();
          await cancelled;
          handlerSaw = aborted(ctx.signal);
          return {};
        },
      }),
    );
    const controller = new AbortController();
    const call = client(SystemService, address).getVersion({}, { signal: controller.signal });
    await inHandler;
    controller.abort();
    await expect(call).rejects.toMatchObject({ name: "AbortError" });
    // The server learns of the cancel (RST_STREAM) a little after the client gives up.
    await new Promise((r) => setTimeout(r, 100));
    cancelledSeen();
    await expect.poll(() => handlerSaw).toBeDefined();
    await expect(handlerSaw).resolves.toBe("AbortError");
  });

  it("rejects at once with an already-aborted signal", async () => {
    const address = await serve((s) => register(s, SystemService, { getVersion: async () => ({}) }));
    await expect(
      client(SystemService, address).getVersion({}, { signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ name: "AbortError" });
  });
});

describe("server streaming", () => {
  const impl = (count: number, onEnd?: (signal: AbortSignal) => void): ServiceImpl<typeof Health> => ({
    check: async () => ({ status: Status.SERVING }),
    list: async () => ({}),
    async *watch(_req, ctx) {
      try {
        for (let i = 0; i < count && !ctx.signal.aborted; i++) {
          yield { status: i % 2 === 0 ? Status.SERVING : Status.NOT_SERVING };
          await new Promise((r) => setTimeout(r, 1));
        }
      } finally {
        onEnd?.(ctx.signal);
      }
    },
  });

  it("streams every message in order and ends", async () => {
    const address = await serve((s) => register(s, Health, impl(50)));
    const seen: Status[] = [];
    for await (const m of client(Health, address).watch({ service: "" })) seen.push(m.status);
    expect(seen).toHaveLength(50);
    expect(seen[1]).toBe(Status.NOT_SERVING);
  });

  it("cancels the server side when the consumer stops early", async () => {
    let ended!: (aborted: boolean) => void;
    const serverEnded = new Promise<boolean>((r) => {
      ended = r;
    });
    const address = await serve((s) =>
      register(
        s,
        Health,
        impl(1_000_000, (signal) => ended(signal.aborted)),
      ),
    );
    let n = 0;
    for await (const _ of client(Health, address).watch({ service: "" })) {
      if (++n === 3) break;
    }
    await expect(serverEnded).resolves.toBe(true);
  });

  it("delivers an error thrown mid-stream as an EdgeplaneError", async () => {
    const address = await serve((s) =>
      register(s, Health, {
        check: async () => ({}),
        list: async () => ({}),
        async *watch() {
          yield { status: Status.SERVING };
          throw new EdgeplaneError("unavailable", "redis is down; retry later");
        },
      }),
    );
    const seen: Status[] = [];
    const err = await (async () => {
      for await (const m of client(Health, address).watch({ service: "" })) seen.push(m.status);
    })().catch((e: unknown) => e);
    expect(seen).toEqual([Status.SERVING]);
    expect((err as EdgeplaneError).code).toBe("unavailable");
  });
});

describe("client streaming and bidi", () => {
  // A service built at run time from a descriptor, to cover the two streaming-request kinds that
  // no edgeplane.v1 service uses yet.
  const registry = createFileRegistry(
    create(FileDescriptorProtoSchema, {
      name: "test/echo.proto",
      package: "test.v1",
      dependency: ["google/protobuf/wrappers.proto"],
      syntax: "proto3",
      service: [
        {
          name: "EchoService",
          method: [
            {
              name: "Collect",
              inputType: ".google.protobuf.StringValue",
              outputType: ".google.protobuf.StringValue",
              clientStreaming: true,
            },
            {
              name: "Chat",
              inputType: ".google.protobuf.StringValue",
              outputType: ".google.protobuf.StringValue",
              clientStreaming: true,
              serverStreaming: true,
            },
          ],
        },
      ],
    }),
    (name) => (name === "google/protobuf/wrappers.proto" ? file_google_protobuf_wrappers : undefined),
  );
  const Echo = registry.getService("test.v1.EchoService") as DescService;

  async function* words(...ws: string[]): AsyncIterable<StringValue> {
    for (const value of ws) yield create(StringValueSchema, { value });
  }

  it("collects a client stream and answers bidi streams", async () => {
    const impl = {
      async collect(requests: AsyncIterable<StringValue>) {
        const all: string[] = [];
        for await (const r of requests) all.push(r.value);
        return create(StringValueSchema, { value: all.join(" ") });
      },
      async *chat(requests: AsyncIterable<StringValue>) {
        for await (const r of requests) yield create(StringValueSchema, { value: r.value.toUpperCase() });
      },
    };
    const address = await serve((s) => register(s, Echo, impl as unknown as ServiceImpl<DescService>));
    const c = client(Echo, address) as unknown as {
      collect(r: AsyncIterable<StringValue>): Promise<StringValue>;
      chat(r: AsyncIterable<StringValue>): AsyncIterable<StringValue>;
    };
    expect((await c.collect(words("edge", "plane"))).value).toBe("edge plane");
    const out: string[] = [];
    for await (const m of c.chat(words("a", "b", "c"))) out.push(m.value);
    expect(out).toEqual(["A", "B", "C"]);
  });
});
