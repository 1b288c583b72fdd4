import { describeNodeStoreConformance } from "./conformance/node-store-suite.js";
import { createMemoryDesiredStateStore, createMemoryNodeData, createMemoryNodeStore } from "./memory.js";

describeNodeStoreConformance("memory", async ({ onCorrupt }) => {
  const data = createMemoryNodeData();
  return {
    nodes: createMemoryNodeStore({ data, onCorrupt }),
    desired: createMemoryDesiredStateStore({ data }),
    reopen: async () => ({
      nodes: createMemoryNodeStore({ data, onCorrupt }),
      desired: createMemoryDesiredStateStore({ data }),
    }),
    corruptNode: async (id, text) => {
      data.nodes.set(id, text);
    },
    close: async () => {},
  };
});
