import { defineConfig } from "vitest/config";

/**
 * One config, three projects:
 * - unit: `packages/*\/src/**\/*.test.ts`, pure logic, no servers, milliseconds each;
 * - integration: `test/integration/**`, real nats-server and redis-server started by testkit;
 * - e2e: `test/e2e/**`, fleets of agents and control-plane processes (rollouts, kill -9, leases);
 * - faults: `test/faults/**`, long kill/restart/soak runs, only via `npm run test:faults`.
 *
 * The "source" export condition makes `@edgeplane/*` imports resolve to the TypeScript sources,
 * so tests never run against a stale dist/.
 */
const resolve = { conditions: ["source", "import", "module", "node", "default"] };

export default defineConfig({
  resolve,
  ssr: { resolve: { conditions: resolve.conditions, externalConditions: ["source"] } },
  test: {
    reporters: ["default", "json"],
    outputFile: { json: ".vitest-report.json" },
    projects: [
      {
        resolve,
        ssr: { resolve: { conditions: resolve.conditions } },
        test: { name: "unit", include: ["packages/*/src/**/*.test.ts"], environment: "node" },
      },
      {
        resolve,
        ssr: { resolve: { conditions: resolve.conditions } },
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 60_000,
          globalSetup: ["test/setup/global-setup.ts"],
        },
      },
      {
        resolve,
        ssr: { resolve: { conditions: resolve.conditions } },
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 180_000,
          hookTimeout: 120_000,
          // Each file runs a fleet of agents and control-plane processes: one at a time on 2 cores.
          fileParallelism: false,
          globalSetup: ["test/setup/global-setup.ts"],
        },
      },
      {
        resolve,
        ssr: { resolve: { conditions: resolve.conditions } },
        test: {
          name: "faults",
          include: ["test/faults/**/*.test.ts"],
          environment: "node",
          testTimeout: 600_000,
          hookTimeout: 120_000,
          globalSetup: ["test/setup/global-setup.ts"],
        },
      },
    ],
  },
});
