/**
 * The Nodes service layer: API requests (REST and gRPC alike) become registry calls. Validates at
 * the edge (selector grammar, states, page size, bodies), signs page tokens; the adapters only
 * convert wire forms.
 */
import { EdgeplaneError, invalidArgument } from "@edgeplane/core";
import type { NodeRegistry, NodeView } from "@edgeplane/orchestrator";
import { parseSelector, type Selector } from "@edgeplane/selector";
import { isNodeState, NODE_STATES, type NodeStateType } from "@edgeplane/store";
import { pageSize } from "../jobs/service.js";
import type { PageTokens } from "../page-token.js";

/** ListNodes parameters as they arrive (REST query or gRPC fields), before validation. */
export interface ListNodesParams {
  readonly selector?: string;
  readonly states?: readonly string[];
  readonly limit?: number;
  readonly nextToken?: string;
}

/** What the service needs from the registry. */
export type NodesRegistry = Pick<NodeRegistry, "get" | "list" | "drain" | "setLabels">;

/** The Nodes service. */
export class NodesService {
  readonly #registry: NodesRegistry;
  readonly #tokens: PageTokens;

  constructor(registry: NodesRegistry, tokens: PageTokens) {
    this.#registry = registry;
    this.#tokens = tokens;
  }

  /** One page of nodes in id order (keyset pages; the token binds selector and states). */
  list(params: ListNodesParams, stateField = "states"): { items: NodeView[]; nextToken: string } {
    const limit = pageSize(params.limit);
    const expression = (params.selector ?? "").trim();
    let selector: Selector | undefined;
    if (expression !== "") selector = parseSelector(expression, { field: "selector", allowEmpty: true });
    const states = [...new Set((params.states ?? []).map((s) => s.trim()).filter(Boolean))].sort();
    for (const s of states) {
      if (!isNodeState(s))
        throw invalidArgument(stateField, `${JSON.stringify(s)} is not one of ${NODE_STATES.join(", ")}`);
    }
    const binding = { list: "nodes", selector: selector?.toString() ?? "", states };
    const after = params.nextToken ? this.#tokens.open<string>(params.nextToken, binding) : undefined;
    if (after !== undefined && typeof after !== "string")
      throw invalidArgument("next_token", "cannot be read");
    const page = this.#registry.list({ selector, states: states as NodeStateType[], after, limit });
    return {
      items: page.items,
      nextToken: page.next !== undefined ? this.#tokens.seal(binding, page.next) : "",
    };
  }

  /** One node; `not_found` when unknown. */
  get(id: string): NodeView {
    if (id === "") throw invalidArgument("id", "is required");
    const node = this.#registry.get(id);
    if (node === undefined) {
      throw new EdgeplaneError(
        "not_found",
        `node ${JSON.stringify(id)} not found; list nodes with GET /api/v1/nodes`,
        {
          metadata: { node_id: id },
        },
      );
    }
    return node;
  }

  /** Drains (or undrains) a node. */
  drain(id: string, undrain: boolean, reason: string): Promise<NodeView> {
    if (id === "") throw invalidArgument("id", "is required");
    if (reason.length > 256) throw invalidArgument("reason", "is longer than 256 characters");
    return this.#registry.drain(id, { undrain, reason });
  }

  /** Merges operator labels (an empty value removes one), removes those in `remove`. */
  setLabels(
    id: string,
    labels: Readonly<Record<string, unknown>>,
    remove: readonly unknown[],
  ): Promise<NodeView> {
    if (id === "") throw invalidArgument("id", "is required");
    return this.#registry.setLabels(id, { labels, remove });
  }
}
