/**
 * Controls a person sends (pause, resume, promote, rollback, cancel): whether each is allowed now,
 * and why not. The API calls {@link checkControl} to refuse at once (`failed_precondition` with the
 * reason); the planner calls it again when it applies the request, since the state may have moved.
 */
import { nodeOf } from "./context.js";
import { CONTROL_TARGET, type Control, canTransition, NEXT_STEPS } from "./states.js";
import type { DeploymentRecord, StableVersion } from "./types.js";

type ControlView = Pick<
  DeploymentRecord,
  | "id"
  | "state"
  | "jobVersion"
  | "isRollback"
  | "rollbackOfDeploymentId"
  | "rollbackDeploymentId"
  | "strategy"
> &
  Partial<Pick<DeploymentRecord, "canaries" | "nodes" | "targets">>;

const HINTS: Partial<Record<Control, string>> = {
  pause: "only a running deployment can be paused",
  resume: "only a paused deployment can be resumed",
  promote: "promote applies once every canary is done and the deployment is awaiting_promotion",
  cancel: "only a pending, running or paused deployment can be cancelled",
  rollback: "roll back applies to a running, paused, awaiting_promotion or failed deployment",
};

/** Why rolling back this deployment is impossible, or undefined when it is possible. */
export function rollbackRefusal(d: ControlView, stable: StableVersion | undefined): string | undefined {
  if (d.isRollback) {
    return `deployment ${d.id} is itself a rollback (of ${d.rollbackOfDeploymentId ?? "an earlier deployment"}); a rollback is never rolled back: submit a spec instead`;
  }
  if (d.rollbackDeploymentId !== undefined) {
    return `deployment ${d.id} was already rolled back (rollback deployment ${d.rollbackDeploymentId}); a failure is rolled back at most once`;
  }
  if (stable === undefined) {
    return "there is no stable version to roll back to: no deployment of this job has succeeded yet";
  }
  if (stable.specEqualsCurrent || stable.version === d.jobVersion) {
    return `stable version ${stable.version} has the same spec as version ${d.jobVersion}: rolling back would change nothing`;
  }
  return undefined;
}

/**
 * Why `control` is refused for this deployment now, or undefined when it would be accepted.
 * Reasons name the state and what would be allowed, e.g.
 * `promote is not allowed while the deployment is running (allowed: pause, cancel, rollback): ...`.
 */
export function checkControl(
  d: ControlView,
  control: Control,
  stable: StableVersion | undefined,
): string | undefined {
  const allowed = NEXT_STEPS[d.state] as readonly Control[];
  if (!allowed.includes(control) || !canTransition(d.state, CONTROL_TARGET[control])) {
    const list = allowed.length > 0 ? allowed.join(", ") : "nothing";
    let hint = HINTS[control] ?? "";
    if (control === "promote" && d.strategy !== "canary")
      hint = `a ${d.strategy} deployment has no canaries to promote`;
    else if (control === "promote" && d.canaries && d.nodes && d.state === "running") {
      const { nodes, targets } = d;
      const doneN = targets
        ? d.canaries.filter((id) => nodeOf({ nodes, targets }, id)?.state === "done").length
        : 0;
      hint = `${doneN} of ${d.canaries.length} canaries done; promote applies once every canary is done`;
    } else if (control === "cancel" && d.state === "awaiting_promotion") {
      hint =
        "the canaries already run the new version: promote to finish the rollout or roll back to undo it";
    }
    return `${control} is not allowed while the deployment is ${d.state} (allowed: ${list})${hint ? `: ${hint}` : ""}`;
  }
  if (control === "rollback") return rollbackRefusal(d, stable);
  return undefined;
}

/** What a person can do now: the state's controls that {@link checkControl} would accept. */
export function nextSteps(d: ControlView, stable: StableVersion | undefined): Control[] {
  return (NEXT_STEPS[d.state] as readonly Control[]).filter((c) => checkControl(d, c, stable) === undefined);
}
