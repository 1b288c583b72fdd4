import { describe, expect, it } from "vitest";
import {
  CONTROL_TARGET,
  CONTROLS,
  canNodeTransition,
  canTransition,
  DEPLOYMENT_STATES,
  DEPLOYMENT_TRANSITIONS,
  type DeploymentState,
  deploymentAllowedFrom,
  isActiveDeployment,
  isControl,
  isDeploymentState,
  isSettledNode,
  isTerminalDeployment,
  NEXT_STEPS,
  NODE_ROLLOUT_STATES,
  NODE_ROLLOUT_TRANSITIONS,
} from "./states.js";

describe("deployment state table", () => {
  it("answers every pair from the table, and never moves a state to itself", () => {
    for (const from of DEPLOYMENT_STATES) {
      for (const to of DEPLOYMENT_STATES) {
        expect(canTransition(from, to)).toBe(
          (DEPLOYMENT_TRANSITIONS[from] as readonly string[]).includes(to),
        );
      }
      expect(canTransition(from, from)).toBe(false);
    }
  });

  it("has exactly these terminal states; only failed can move again (by a manual rollback)", () => {
    expect(DEPLOYMENT_STATES.filter(isTerminalDeployment)).toEqual([
      "succeeded",
      "failed",
      "rolled_back",
      "cancelled",
      "superseded",
    ]);
    for (const s of DEPLOYMENT_STATES) {
      expect(isActiveDeployment(s)).toBe(!isTerminalDeployment(s));
      if (isTerminalDeployment(s)) {
        expect(DEPLOYMENT_TRANSITIONS[s]).toEqual(s === "failed" ? ["rolling_back"] : []);
      }
    }
  });

  it("reaches a terminal state from every state, and superseded from every active one", () => {
    for (const s of DEPLOYMENT_STATES) {
      const seen = new Set<DeploymentState>([s]);
      const queue: DeploymentState[] = [s];
      while (queue.length > 0) {
        const cur = queue.shift() as DeploymentState;
        for (const next of DEPLOYMENT_TRANSITIONS[cur]) {
          if (!seen.has(next)) {
            seen.add(next);
            queue.push(next);
          }
        }
      }
      expect([...seen].some(isTerminalDeployment)).toBe(true);
      if (isActiveDeployment(s)) expect(canTransition(s, "superseded")).toBe(true);
    }
  });

  it("derives the guard of a state write", () => {
    expect(deploymentAllowedFrom("awaiting_promotion")).toEqual(["running", "paused"]);
    expect(deploymentAllowedFrom("rolled_back")).toEqual(["rolling_back"]);
    expect(deploymentAllowedFrom("rolling_back")).toEqual([
      "pending",
      "running",
      "paused",
      "awaiting_promotion",
      "failed",
    ]);
    expect(deploymentAllowedFrom("pending")).toEqual([]);
  });

  it("guards strings", () => {
    expect(isDeploymentState("awaiting_promotion")).toBe(true);
    expect(isDeploymentState("done")).toBe(false);
    expect(isControl("promote")).toBe(true);
    expect(isControl("restart")).toBe(false);
  });
});

describe("next steps and controls", () => {
  it("lists the documented steps per state", () => {
    expect(NEXT_STEPS.running).toEqual(["pause", "cancel", "rollback"]);
    expect(NEXT_STEPS.paused).toEqual(["resume", "cancel", "rollback"]);
    expect(NEXT_STEPS.awaiting_promotion).toEqual(["promote", "rollback"]);
    for (const s of DEPLOYMENT_STATES) {
      if (isTerminalDeployment(s) && s !== "failed") expect(NEXT_STEPS[s]).toEqual([]);
    }
  });

  it("only lists controls whose target state the table allows", () => {
    for (const s of DEPLOYMENT_STATES) {
      for (const c of CONTROLS) {
        const listed = (NEXT_STEPS[s] as readonly string[]).includes(c);
        if (listed) expect(canTransition(s, CONTROL_TARGET[c])).toBe(true);
      }
    }
  });
});

describe("node rollout table", () => {
  it("answers every pair; done and failed are final; a node is judged once", () => {
    for (const from of NODE_ROLLOUT_STATES) {
      for (const to of NODE_ROLLOUT_STATES) {
        expect(canNodeTransition(from, to)).toBe(
          (NODE_ROLLOUT_TRANSITIONS[from] as readonly string[]).includes(to),
        );
      }
    }
    expect(NODE_ROLLOUT_STATES.filter(isSettledNode)).toEqual(["done", "failed"]);
    expect(canNodeTransition("done", "failed")).toBe(false);
    expect(canNodeTransition("failed", "done")).toBe(false);
    expect(canNodeTransition("pending", "done")).toBe(false);
  });
});
