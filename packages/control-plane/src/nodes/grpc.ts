/** The gRPC NodeService over the {@link NodesService}: wire conversion only. */
import type { NodeService, ServiceImpl } from "@edgeplane/api";
import { nodeToMessage } from "./convert.js";
import type { NodesService } from "./service.js";

/** The implementation of edgeplane.v1.NodeService. */
export function createNodeGrpcService(nodes: NodesService): ServiceImpl<typeof NodeService> {
  return {
    async listNodes(req) {
      const page = nodes.list({
        selector: req.selector,
        states: req.states,
        limit: req.limit,
        nextToken: req.nextToken,
      });
      return { items: page.items.map(nodeToMessage), nextToken: page.nextToken };
    },
    async getNode(req) {
      return { node: nodeToMessage(nodes.get(req.id)) };
    },
    async drainNode(req) {
      return { node: nodeToMessage(await nodes.drain(req.id, req.undrain, req.reason)) };
    },
    async setNodeLabels(req) {
      return { node: nodeToMessage(await nodes.setLabels(req.id, req.labels, req.remove)) };
    },
  };
}
