/**
 * The memory execution and log stores against their conformance suite (the Redis stores run the
 * same suite in test/integration/executions-store.test.ts).
 */
import { describeExecutionStoreConformance } from "./conformance/execution-store-suite.js";
import { createMemoryExecutionData, createMemoryExecutionStore, createMemoryLogStore } from "./memory.js";

describeExecutionStoreConformance("memory", async ({ logBounds }) => {
  const data = createMemoryExecutionData();
  const logData = new Map<string, unknown>();
  return {
    executions: createMemoryExecutionStore({ data }),
    logs: createMemoryLogStore({ ...logBounds, data: logData }),
    reopen: async () => ({
      executions: createMemoryExecutionStore({ data }),
      logs: createMemoryLogStore({ ...logBounds, data: logData }),
    }),
    close: async () => {},
  };
});
