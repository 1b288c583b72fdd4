import { describeDeploymentStoreConformance } from "./conformance/deployment-store-suite.js";
import {
  createMemoryDeploymentData,
  createMemoryDeploymentStore,
  createMemoryLeaderLease,
  createMemoryNodeVersionStore,
} from "./memory.js";

describeDeploymentStoreConformance("memory", async () => {
  let now = Date.UTC(2026, 0, 1);
  const data = createMemoryDeploymentData({ now: () => now });
  return {
    store: createMemoryDeploymentStore({ data }),
    versions: createMemoryNodeVersionStore({ data }),
    lease: createMemoryLeaderLease({ data }),
    expireLease: async () => {
      now += 60_000;
    },
    close: async () => {},
  };
});
