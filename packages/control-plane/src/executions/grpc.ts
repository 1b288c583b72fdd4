/** The gRPC ExecutionService over the {@link ExecutionsService}: wire conversion only. */
import type { ExecutionService, ServiceImpl } from "@edgeplane/api";
import { executionToMessage, logLineToMessage } from "./convert.js";
import type { ExecutionsService } from "./service.js";

/** The implementation of edgeplane.v1.ExecutionService. */
export function createExecutionGrpcService(
  executions: ExecutionsService,
): ServiceImpl<typeof ExecutionService> {
  return {
    async listExecutions(req) {
      const page = await executions.list(
        req.jobId,
        {
          states: req.states,
          nodeId: req.nodeId,
          includeArchived: req.includeArchived,
          limit: req.limit,
          nextToken: req.nextToken,
        },
        "states",
      );
      return { items: page.items.map(executionToMessage), nextToken: page.nextToken };
    },
    async getExecution(req) {
      return { execution: executionToMessage(await executions.get(req.id)) };
    },
    async *getExecutionLogs(req, ctx) {
      if (!req.follow) {
        const read = await executions.logs(req.id, { tail: req.tail });
        yield { lines: read.lines.map(logLineToMessage), dropped: BigInt(read.dropped) };
        return;
      }
      let first = true;
      let dropped = -1;
      // Quiet ticks are not sent: HTTP/2 keepalive pings hold the stream open.
      for await (const chunk of executions.follow(req.id, { tail: req.tail, signal: ctx.signal })) {
        if (first || chunk.lines.length > 0 || chunk.dropped !== dropped)
          yield { lines: chunk.lines.map(logLineToMessage), dropped: BigInt(chunk.dropped) };
        first = false;
        dropped = chunk.dropped;
      }
    },
    async cancelExecution(req) {
      return { execution: executionToMessage(await executions.cancel(req.id, req.reason)) };
    },
  };
}
