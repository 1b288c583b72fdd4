/** `@edgeplane/control-plane`: the service layer, gRPC and REST adapters, and the composition root. */

export type { ControlPlane, ControlPlaneOptions } from "./control-plane.js";
export { parseHostPort, startControlPlane } from "./control-plane.js";
export { READINESS_SERVICE } from "./grpc/health-service.js";
export type { ReadinessProbe, ReadinessReport, ServingState } from "./health.js";
export { Health } from "./health.js";
export { MAX_BODY_BYTES, Router } from "./http/router.js";
