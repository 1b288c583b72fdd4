/**
 * Property tests: the real planner over random fleets, strategies, health timelines, controls and
 * supersessions, driven in virtual time by the fleet engine; invariants checked at every step.
 */

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { failureBudget } from "./budget.js";
import { nodeOf } from "./context.js";
import { checkControl } from "./controls.js";
import { type FleetModel, type FleetStep, runFleet, type VersionBehavior } from "./fleet.js";
import { plan } from "./plan.js";
import { formatTimeline, simulate } from "./simulate.js";
import {
  CONTROLS,
  canNodeTransition,
  canTransition,
  type DeploymentState,
  isTerminalDeployment,
} from "./states.js";
import { countersOf } from "./summary.js";
import { makeSpec } from "./test-fixtures.js";
import type { DeploymentRecord } from "./types.js";
import { rolloutWaveSize } from "./waves.js";

const S = 1000;
const LIVE: ReadonlySet<DeploymentState> = new Set(["pending", "running", "paused", "awaiting_promotion"]);

// ---------------------------------------------------------------------------------------------
// Generators

const specArb = fc
  .record({
    strategy: fc.constantFrom("immediate", "rolling", "canary"),
    type: fc.constantFrom("pipeline", "pipeline", "update"),
    maxParallel: fc.integer({ min: 0, max: 5 }),
    maxParallelPercent: fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }),
    canaryCount: fc.integer({ min: 0, max: 4 }),
    canaryPercent: fc.integer({ min: 1, max: 50 }),
    autoPromote: fc.boolean(),
    deadlineS: fc.integer({ min: 30, max: 600 }),
    minHealthyFraction: fc.double({ min: 0, max: 0.95, noNaN: true }),
    immediateDeadline: fc.boolean(),
    maxErrorRate: fc.constantFrom(0, 0.1, 0.6),
    maxFailedNodes: fc.integer({ min: 0, max: 6 }),
    maxFailedNodesPercent: fc.constantFrom(0, 5, 10, 25, 50, 100),
    noAutoRollback: fc.boolean(),
  })
  .map((g) => {
    const minHealthyS = Math.floor(g.deadlineS * g.minHealthyFraction);
    const deployment: Record<string, unknown> = {
      strategy: g.strategy,
      max_parallel: g.maxParallel,
      ...(g.maxParallelPercent !== undefined ? { max_parallel_percent: g.maxParallelPercent } : {}),
      max_failed_nodes: g.maxFailedNodes,
      max_failed_nodes_percent: g.maxFailedNodesPercent,
      no_auto_rollback: g.noAutoRollback,
      health_check: {
        ...(g.strategy !== "immediate" || g.immediateDeadline ? { deadline: `${g.deadlineS}s` } : {}),
        min_healthy_time: `${minHealthyS}s`,
        max_error_rate: g.maxErrorRate,
      },
    };
    if (g.strategy === "canary") {
      if (g.canaryCount > 0) deployment.canary_count = g.canaryCount;
      else deployment.canary_percent = g.canaryPercent;
      deployment.auto_promote = g.autoPromote;
    }
    return makeSpec(deployment, { type: g.type });
  });

/** `arb` with probability 1/(1 + absentWeight), else undefined. */
const sometimes = <T>(arb: fc.Arbitrary<T>, absentWeight: number) =>
  fc.oneof({ arbitrary: fc.constant(undefined), weight: absentWeight }, { arbitrary: arb, weight: 1 });

const behaviorArb: fc.Arbitrary<VersionBehavior> = fc.record({
  startDelayMs: fc.integer({ min: 0, max: 120 }).map((x) => x * S),
  outcome: fc.constantFrom(
    "healthy",
    "healthy",
    "healthy",
    "healthy",
    "healthy",
    "healthy",
    "unhealthy",
    "error",
  ),
  blips: fc.array(
    fc
      .tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 90 }))
      .map(([a, l]) => [a * S, (a + l) * S] as const),
    { maxLength: 2 },
  ),
  runMs: fc.integer({ min: 1, max: 200 }).map((x) => x * S),
});

const nodeArb = fc.record({
  offlineUntil: sometimes(
    fc.integer({ min: 1, max: 1200 }).map((x) => x * S),
    4,
  ),
  lostAt: sometimes(
    fc.integer({ min: 0, max: 1800 }).map((x) => x * S),
    12,
  ),
  fresh: behaviorArb,
  rollback: behaviorArb,
});

const fleetArb = fc.array(nodeArb, { minLength: 0, maxLength: 20 }).map((nodes): FleetModel => {
  const nodeIds = nodes.map((_, i) => `n${String(i).padStart(2, "0")}`);
  const byId = new Map(nodeIds.map((id, i) => [id, nodes[i]]));
  return {
    nodeIds,
    node: (id) => {
      const n = byId.get(id);
      return {
        ...(n?.offlineUntil !== undefined ? { offlineUntil: n.offlineUntil } : {}),
        ...(n?.lostAt !== undefined ? { lostAt: n.lostAt } : {}),
      };
    },
    version: (id, _v, role) => {
      const n = byId.get(id);
      if (n === undefined) throw new Error(id);
      return role === "new" ? n.fresh : n.rollback;
    },
  };
});

const scenarioArb = fc.record({
  spec: specArb,
  fleet: fleetArb,
  stable: sometimes(fc.record({ version: fc.constant(1), specEqualsCurrent: fc.boolean() }), 1),
  controls: fc.array(
    fc.record({
      at: fc.integer({ min: 0, max: 1500 }).map((x) => x * S),
      control: fc.constantFrom(...CONTROLS),
    }),
    { maxLength: 2 },
  ),
  promoteAfterMs: sometimes(
    fc.integer({ min: 0, max: 600 }).map((x) => x * S),
    1,
  ),
  supersedeAt: sometimes(
    fc.integer({ min: 0, max: 1500 }).map((x) => x * S),
    6,
  ),
});

// ---------------------------------------------------------------------------------------------
// Invariants

interface Memo {
  /** Deployments that halted or ended (no dispatch may follow). */
  readonly stopped: Set<string>;
  readonly rollbacks: Map<string, number>;
  readonly violations: string[];
}

function failedCount(d: DeploymentRecord): number {
  return d.targets.filter((id) => nodeOf(d, id)?.state === "failed").length;
}

function cap(d: DeploymentRecord): number {
  if (d.strategy === "immediate") return d.targets.length;
  if (d.strategy === "canary" && !d.promoted && d.canaries.length > 0) return d.canaries.length;
  return rolloutWaveSize({ ...d.rollout, strategy: d.strategy }, d.targets.length);
}

function checkStep(step: FleetStep, memo: Memo): void {
  const { snapshot, plan: p } = step;
  const before = snapshot.deployment;
  const after = p.deployment;
  const bad = (what: string) => memo.violations.push(`${after.id} @${step.now}: ${what}`);

  // Only moves the table allows.
  if (before.state !== after.state && !canTransition(before.state, after.state)) {
    bad(`illegal transition ${before.state} → ${after.state}`);
  }
  // Nodes only move forward, and are judged once (never done and failed).
  for (const id of after.targets) {
    const b = nodeOf(before, id)?.state;
    const a = nodeOf(after, id)?.state;
    if (b === undefined || a === undefined) bad(`node ${id} missing`);
    else if (a !== b && !canNodeTransition(b, a)) bad(`node ${id} moved ${b} → ${a}`);
  }
  // Dispatch: only while running, never after a halt, only to pending nodes.
  const assigned = p.actions.flatMap((a) => (a.kind === "assign" ? a.nodeIds : []));
  if (assigned.length > 0) {
    if (after.state !== "running") bad(`assigned while ${after.state}`);
    if (memo.stopped.has(after.id)) bad("assigned after a halt or end");
    for (const id of assigned) if (nodeOf(before, id)?.state !== "pending") bad(`assigned non-pending ${id}`);
  }
  // The wave cap, undelivered (pending) assignments included.
  if (LIVE.has(after.state)) {
    const inFlight = after.targets.filter((id) => nodeOf(after, id)?.state === "assigned").length;
    if (inFlight > cap(after)) bad(`${inFlight} nodes updating > cap ${cap(after)}`);
  }
  // Canaries first: no other node is assigned until every canary is done.
  if (after.strategy === "canary" && after.canaries.length > 0) {
    const canaries = new Set(after.canaries);
    const othersStarted = after.targets.some(
      (id) => !canaries.has(id) && nodeOf(after, id)?.assignedAt !== undefined,
    );
    const allDone = after.canaries.every((id) => nodeOf(after, id)?.state === "done");
    if (othersStarted && !allDone) bad("a non-canary node was assigned before every canary was done");
    if (after.promoted && !allDone) bad("promoted before every canary was done");
    if (after.state === "awaiting_promotion" && !allDone)
      bad("awaiting promotion before every canary was done");
  }
  // Failure budget: exact in both directions.
  const failed = failedCount(after);
  const budget = failureBudget(after.targets.length, after.rollout);
  const canaryFailed =
    after.strategy === "canary" && after.canaries.some((id) => nodeOf(after, id)?.state === "failed");
  if (LIVE.has(after.state) && (failed > budget || canaryFailed)) {
    bad(`still ${after.state} with ${failed} failed > budget ${budget} (or a failed canary)`);
  }
  const halted = p.events.some((e) => e.kind === "halted");
  if (halted && !(failed > budget || canaryFailed)) bad(`halted with ${failed} failed ≤ budget ${budget}`);
  // Rollbacks: at most one per deployment, never from a rollback, never to an identical spec.
  for (const a of p.actions) {
    if (a.kind !== "rollback") continue;
    memo.rollbacks.set(after.id, (memo.rollbacks.get(after.id) ?? 0) + 1);
    if ((memo.rollbacks.get(after.id) ?? 0) > 1) bad("second rollback");
    if (before.isRollback) bad("a rollback deployment rolled back");
    const st = snapshot.stable;
    if (st === undefined || st.specEqualsCurrent || st.version === after.jobVersion)
      bad("rollback to nothing or to an identical spec");
    if (a.toVersion !== st?.version) bad("rollback to a version other than the stable one");
    if (!a.manual && after.rollout.no_auto_rollback) bad("auto-rollback despite no_auto_rollback");
  }
  // Controls: refused exactly when checkControl refuses (unless superseded first).
  if (snapshot.requested !== undefined && snapshot.supersededBy === undefined) {
    const refusal = checkControl(before, snapshot.requested, snapshot.stable);
    if ((refusal === undefined) !== (p.rejected === undefined))
      bad(`control ${snapshot.requested}: ${refusal} vs ${p.rejected?.reason}`);
  }
  // What the API shows is consistent.
  if (after.progress < 0 || after.progress > 1) bad(`progress ${after.progress}`);
  if (after.counters.failed !== failed) bad("counters.failed disagrees with the nodes");
  // The planner's index (kept current change by change, and reused by the next sync) agrees with
  // a walk of the table; and planning a fresh copy of the snapshot (no index to reuse) gives the
  // same plan.
  const walked = countersOf(after, after.counters.unhealthy);
  if (JSON.stringify(walked) !== JSON.stringify(after.counters))
    bad(`counters ${JSON.stringify(after.counters)} but the table says ${JSON.stringify(walked)}`);
  const fresh = plan(structuredClone(snapshot), step.now);
  if (JSON.stringify(fresh) !== JSON.stringify(p)) bad("a fresh copy of the snapshot plans differently");
  if (p.requeueAfterMs !== undefined && !(p.requeueAfterMs > 0)) bad(`requeue ${p.requeueAfterMs}`);
  if (isTerminalDeployment(after.state) && after.nextSteps.some((c) => c !== "rollback"))
    bad("terminal with next steps");
  // Requeue is exact enough: with nothing observed, nothing changes before the requeue instant
  // (and, without a requeue, never).
  if (LIVE.has(after.state)) {
    const { requested: _r, ...rest } = snapshot;
    const quietUntil =
      p.requeueAfterMs === undefined ? step.now + 10 * 365 * 86_400_000 : step.now + p.requeueAfterMs - 1;
    if (quietUntil > step.now && plan({ ...rest, deployment: after }, quietUntil).changed) {
      bad(`changed on its own before the requeue (${p.requeueAfterMs})`);
    }
  }
  if (!LIVE.has(after.state)) memo.stopped.add(after.id);
}

// ---------------------------------------------------------------------------------------------

describe("planner properties over random fleets", () => {
  it("keeps every invariant at every step, and every deployment ends (or awaits a person)", () => {
    fc.assert(
      fc.property(scenarioArb, (sc) => {
        const memo: Memo = { stopped: new Set(), rollbacks: new Map(), violations: [] };
        const result = runFleet({
          spec: sc.spec,
          fleet: sc.fleet,
          ...(sc.stable ? { stable: sc.stable } : {}),
          controls: sc.controls,
          ...(sc.promoteAfterMs !== undefined ? { promoteAfterMs: sc.promoteAfterMs } : {}),
          ...(sc.supersedeAt !== undefined ? { supersedeAt: sc.supersedeAt } : {}),
          onStep: (step) => checkStep(step, memo),
        });
        expect(memo.violations).toEqual([]);
        expect(result.stalled).toBe(false);
        expect(result.truncated).toBe(false);
        const pausedByAPerson = sc.controls.some((c) => c.control === "pause");
        for (const d of result.deployments) {
          const ended = isTerminalDeployment(d.state);
          const awaiting = d.state === "awaiting_promotion";
          const paused = d.state === "paused" && pausedByAPerson;
          expect(ended || awaiting || paused, `${d.id} ended ${d.state}\n${formatTimeline(result)}`).toBe(
            true,
          );
        }
        // One rollback at most in the whole run: the primary's (a rollback is never rolled back).
        expect(result.deployments.length).toBeLessThanOrEqual(2);
      }),
      { numRuns: 300 },
    );
  });

  it("failure budget boundary: k lost nodes fail the deployment iff k > the budget", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.nat(),
        fc.integer({ min: 0, max: 8 }),
        fc.constantFrom(0, 3.5, 10, 20, 33, 100),
        fc.constantFrom("immediate", "rolling"),
        (n, kSeed, maxFailed, pct, strategy) => {
          const k = kSeed % (n + 1);
          const spec = makeSpec({
            strategy,
            max_failed_nodes: maxFailed,
            max_failed_nodes_percent: pct,
            no_auto_rollback: true,
            health_check: { deadline: "5m", min_healthy_time: "10s" },
          });
          const nodeIds = Array.from({ length: n }, (_, i) => `n${i}`);
          const healthyRun: VersionBehavior = { startDelayMs: 1000, outcome: "healthy", runMs: 1000 };
          const result = runFleet({
            spec,
            fleet: {
              nodeIds,
              node: (id) => (Number(id.slice(1)) < k ? { lostAt: 0 } : {}),
              version: () => healthyRun,
            },
          });
          const primary = result.deployments[0];
          const shouldFail = k > failureBudget(n, spec.deployment);
          expect(primary?.state).toBe(shouldFail ? "failed" : "succeeded");
        },
      ),
      { numRuns: 300 },
    );
  });

  it("canaries: without auto_promote, a deployment whose canaries are healthy always waits for a person", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 25 }), fc.integer({ min: 1, max: 5 }), (n, c) => {
        const spec = makeSpec({
          strategy: "canary",
          canary_count: Math.min(c, n - 1),
          max_parallel: 2,
          health_check: { deadline: "5m", min_healthy_time: "30s" },
        });
        const result = runFleet({
          spec,
          fleet: {
            nodeIds: Array.from({ length: n }, (_, i) => `n${i}`),
            node: () => ({}),
            version: () => ({ startDelayMs: 5000, outcome: "healthy", runMs: 1000 }),
          },
        });
        const d = result.deployments[0];
        expect(d?.state).toBe("awaiting_promotion");
        expect(d?.nextSteps).toEqual(["promote"]);
        expect(d?.counters.updated).toBe(d?.canaries.length);
      }),
    );
  });
});

describe("simulate", () => {
  it("is deterministic per seed and always ends", () => {
    fc.assert(
      fc.property(
        specArb,
        fc.integer({ min: 0, max: 40 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer(),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        (spec, nodes, failRate, seed, offlineRate) => {
          const options = { spec, nodes, failRate, seed, offlineRate, lostRate: 0.05, stableVersion: 1 };
          const a = simulate(options);
          const b = simulate(options);
          expect(formatTimeline(a)).toBe(formatTimeline(b));
          expect(a.stalled).toBe(false);
          expect(a.truncated).toBe(false);
        },
      ),
      { numRuns: 60 },
    );
  });
});
