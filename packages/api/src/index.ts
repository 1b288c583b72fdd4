/**
 * `@edgeplane/api`: the generated protobuf-es code of `proto/edgeplane/v1` (never hand-edited;
 * `npm run generate` rewrites `src/gen/`) and the generic grpc-js adapter built from its
 * descriptors.
 */
export * from "./gen/edgeplane/v1/agent_pb.js";
export * from "./gen/edgeplane/v1/deployment_pb.js";
export * from "./gen/edgeplane/v1/deployment_service_pb.js";
export * from "./gen/edgeplane/v1/execution_pb.js";
export * from "./gen/edgeplane/v1/execution_service_pb.js";
export * from "./gen/edgeplane/v1/job_pb.js";
export * from "./gen/edgeplane/v1/job_service_pb.js";
export * from "./gen/edgeplane/v1/node_pb.js";
export * from "./gen/edgeplane/v1/node_service_pb.js";
export * from "./gen/edgeplane/v1/system_service_pb.js";
export * from "./gen/edgeplane/v1/template_pb.js";
export * from "./gen/edgeplane/v1/template_service_pb.js";
export type {
  HealthCheckRequest,
  HealthCheckResponse,
  HealthListRequest,
  HealthListResponse,
} from "./gen/grpc/health/v1/health_pb.js";
export {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
  HealthListRequestSchema,
  HealthListResponseSchema,
} from "./gen/grpc/health/v1/health_pb.js";
export type {
  AdaptServiceOptions,
  CallOptions,
  Client,
  ClientMethod,
  CreateClientOptions,
  GrpcStatusInit,
  GrpcStatusReceived,
  HandlerContext,
  MethodHandler,
  ServiceImpl,
} from "./grpc.js";
export { adaptService, createClient, createServiceDefinition, methodPath } from "./grpc.js";
