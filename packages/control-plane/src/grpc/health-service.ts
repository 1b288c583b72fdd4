/**
 * The standard gRPC health service (grpc.health.v1.Health) over {@link Health}: service "" is
 * liveness, "edgeplane.v1" is readiness (dependencies answer).
 */
import { create } from "@bufbuild/protobuf";
import {
  type HealthCheckResponse,
  HealthCheckResponseSchema,
  type Health as HealthService,
  type ServiceImpl,
  HealthCheckResponse_ServingStatus as Status,
} from "@edgeplane/api";
import { EdgeplaneError } from "@edgeplane/core";
import type { Health } from "../health.js";

/** The readiness service name of the control plane. */
export const READINESS_SERVICE = "edgeplane.v1";

async function statusOf(health: Health, service: string): Promise<Status> {
  if (service === "") return health.serving === "SERVING" ? Status.SERVING : Status.NOT_SERVING;
  if (service === READINESS_SERVICE)
    return (await health.check()).ready ? Status.SERVING : Status.NOT_SERVING;
  return Status.SERVICE_UNKNOWN;
}

/** The implementation of grpc.health.v1.Health. */
export function createHealthService(health: Health): ServiceImpl<typeof HealthService> {
  return {
    async check(request) {
      const status = await statusOf(health, request.service);
      if (status === Status.SERVICE_UNKNOWN) {
        throw new EdgeplaneError(
          "not_found",
          `unknown service "${request.service}"; use "" or "${READINESS_SERVICE}"`,
        );
      }
      return { status };
    },
    async list() {
      return {
        statuses: {
          "": create(HealthCheckResponseSchema, { status: await statusOf(health, "") }),
          [READINESS_SERVICE]: create(HealthCheckResponseSchema, {
            status: await statusOf(health, READINESS_SERVICE),
          }),
        },
      };
    },
    async *watch(request, ctx) {
      // Sends the current status, then every change, until the client goes away.
      let last: Status | undefined;
      let wake: (() => void) | undefined;
      const off = health.onChange(() => wake?.());
      const onAbort = (): void => wake?.();
      ctx.signal.addEventListener("abort", onAbort);
      try {
        while (!ctx.signal.aborted) {
          const status = await statusOf(health, request.service);
          if (status !== last) {
            last = status;
            yield { status } satisfies Partial<HealthCheckResponse>;
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
            // Readiness depends on probes, not only on state changes: re-check every few seconds.
            setTimeout(resolve, 5000).unref();
          });
        }
      } finally {
        off();
        ctx.signal.removeEventListener("abort", onAbort);
      }
    },
  };
}
