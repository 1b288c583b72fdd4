/**
 * Which nodes a deployment covers: the nodes the job's selector matches now that can take an
 * assignment or will receive it when they return (`ready` and `disconnected`); `draining` nodes
 * take no new assignments and `lost` ones would only count as failed.
 */
import { compileNodeSelector, type NodeSelector } from "@edgeplane/selector";
import type { RuntimeRegistry } from "./context.js";

/** A job spec's compiled selector; undefined when it cannot be compiled (it matches no node). */
export function selectorOf(spec: Readonly<Record<string, unknown>>): NodeSelector | undefined {
  const raw = spec.selector;
  try {
    return compileNodeSelector(typeof raw === "object" && raw !== null && !Array.isArray(raw) ? raw : {});
  } catch {
    return undefined;
  }
}

/** The targets a deployment of `spec` starts with now. */
export function deploymentTargets(
  registry: RuntimeRegistry,
  spec: Readonly<Record<string, unknown>>,
): string[] {
  const selector = selectorOf(spec);
  if (selector === undefined) return [];
  return registry.select(selector).filter((id) => {
    const state = registry.stateOf(id);
    return state === "ready" || state === "disconnected";
  });
}
