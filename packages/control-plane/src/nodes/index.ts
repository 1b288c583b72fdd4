/**
 * The control plane's node side, in one call: the node registry (agents over the bus), simple
 * placement (jobs → desired states), and the Nodes API (REST routes + gRPC NodeService).
 *
 * @example (in control-plane.ts, after the stores, the bus, the router and the gRPC server exist,
 * before the servers listen)
 * ```ts
 * const nodes = await startNodeServices({ bus, jobStore, nodeStore, desiredStore, tokens, router, grpc: grpcServer, clock, logger: log.child("nodes") });
 * closers.push(() => nodes.stop());
 * ```
 */
import type { DescService } from "@bufbuild/protobuf";
import { NodeService, type ServiceImpl } from "@edgeplane/api";
import type { Bus } from "@edgeplane/bus";
import { type Clock, createLogger, type Logger, systemClock } from "@edgeplane/core";
import {
  createNodeRegistry,
  createPlacementController,
  type NodeRegistry,
  type NodeRegistryOptions,
  type PlacementController,
  type PlacementControllerOptions,
} from "@edgeplane/orchestrator";
import type { DesiredStateStore, JobStore, NodeStore } from "@edgeplane/store";
import type { Router } from "../http/router.js";
import type { PageTokens } from "../page-token.js";
import { createNodeGrpcService } from "./grpc.js";
import { registerNodeRoutes } from "./rest.js";
import { NodesService } from "./service.js";

export { nodeToJson, nodeToMessage } from "./convert.js";
export { createNodeGrpcService } from "./grpc.js";
export { registerNodeRoutes } from "./rest.js";
export type { ListNodesParams, NodesRegistry } from "./service.js";
export { NodesService } from "./service.js";

/** Where gRPC services are registered (the control plane's `GrpcServer` fits). */
export interface GrpcRegistrar {
  add<S extends DescService>(service: S, impl: ServiceImpl<S>): void;
}

/** Options of {@link startNodeServices}. */
export interface NodeServicesOptions {
  /** The agents' transport (NATS in production; a `MemoryBroker` bus in single-process dev). */
  readonly bus: Bus;
  readonly jobStore: JobStore;
  readonly nodeStore: NodeStore;
  readonly desiredStore: DesiredStateStore;
  /** The control plane's page-token signer (shared by every replica). */
  readonly tokens: PageTokens;
  readonly router: Router;
  readonly grpc: GrpcRegistrar;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Registry tunables (liveness timings, sweep/flush periods, listeners). */
  readonly registry?: Omit<NodeRegistryOptions, "bus" | "nodeStore" | "desiredStore" | "clock" | "logger">;
  /** Placement tunables (poll period, resync period, concurrency). */
  readonly placement?: Omit<
    PlacementControllerOptions,
    "jobStore" | "desiredStore" | "registry" | "clock" | "logger"
  >;
}

/** The running node side of the control plane. */
export interface NodeServices {
  readonly registry: NodeRegistry;
  readonly placement: PlacementController;
  readonly service: NodesService;
  /** Stops placement, then the registry (which writes what is pending). Leaves bus and stores open. */
  stop(): Promise<void>;
}

/**
 * Registers the Nodes REST routes and gRPC service, then starts the registry (loads nodes,
 * subscribes to agents) and placement (loads jobs, follows the change stream).
 */
export async function startNodeServices(options: NodeServicesOptions): Promise<NodeServices> {
  const log = options.logger ?? createLogger({ component: "control-plane.nodes" });
  const clock = options.clock ?? systemClock;
  const registry = createNodeRegistry({
    ...options.registry,
    bus: options.bus,
    nodeStore: options.nodeStore,
    desiredStore: options.desiredStore,
    clock,
    logger: log.child("registry"),
  });
  const placement = createPlacementController({
    ...options.placement,
    jobStore: options.jobStore,
    desiredStore: options.desiredStore,
    registry,
    clock,
    logger: log.child("placement"),
  });
  const service = new NodesService(registry, options.tokens);
  registerNodeRoutes(options.router, service);
  options.grpc.add(NodeService, createNodeGrpcService(service));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await placement.stop();
      await registry.stop();
    })();
    return stopping;
  };
  try {
    await registry.start();
    await placement.start();
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
  return { registry, placement, service, stop };
}
