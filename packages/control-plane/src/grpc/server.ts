/**
 * The gRPC side of the control plane: a grpc-js server whose services are all registered through
 * the generic descriptor adapter of `@edgeplane/api`, with errors mapped once by
 * `toGrpcStatus` of `@edgeplane/core`.
 */
import type { DescService } from "@bufbuild/protobuf";
import { adaptService, createServiceDefinition, type ServiceImpl } from "@edgeplane/api";
import { isEdgeplaneError, type Logger, toGrpcStatus } from "@edgeplane/core";
import * as grpc from "@grpc/grpc-js";

/** Limits that also protect the server from oversized requests (RESOURCE_EXHAUSTED past them). */
export const GRPC_MAX_RECEIVE_BYTES = 1024 * 1024;

/** A grpc-js server with typed service registration and graceful shutdown. */
export class GrpcServer {
  readonly server: grpc.Server;
  readonly #log: Logger;
  #port = 0;

  constructor(log: Logger) {
    this.#log = log;
    this.server = new grpc.Server({
      "grpc.max_receive_message_length": GRPC_MAX_RECEIVE_BYTES,
      "grpc.keepalive_time_ms": 60_000,
      "grpc.keepalive_permit_without_calls": 1,
    });
  }

  /** Registers one service implementation. */
  add<S extends DescService>(service: S, impl: ServiceImpl<S>): void {
    this.server.addService(
      createServiceDefinition(service),
      adaptService(service, impl, {
        toStatus: (err) => {
          const status = toGrpcStatus(err);
          if (!isEdgeplaneError(err)) this.#log.error("unexpected error in a gRPC handler", { err });
          return status;
        },
      }),
    );
  }

  /** Binds `host:port` (port 0 picks a free one) and resolves the bound port. */
  listen(address: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
        if (err) {
          reject(err);
          return;
        }
        this.#port = port;
        resolve(port);
      });
    });
  }

  get port(): number {
    return this.#port;
  }

  /** Stops accepting calls, lets running ones finish for up to `graceMs`, then cuts the rest. */
  async stop(graceMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
