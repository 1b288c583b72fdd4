/**
 * Counting and logging of dropped agent messages. A bad message is counted by reason and dropped;
 * it is logged once per (reason, node), so a misbehaving agent cannot flood the log.
 */
import type { OutboundKind } from "@edgeplane/bus";
import type { Logger } from "@edgeplane/core";
import { BoundedSet } from "./bounded-set.js";

/** Why a message was dropped, one line per reason. */
export const DROP_REASONS = [
  /** The body names another node than the subject it arrived on (identity is the subject). */
  "mismatched_identity",
  /** Not a valid encoding of the message, or a required field is missing or out of bounds. */
  "malformed",
  /** Larger than the size limit (checked before decoding). */
  "oversized",
  /** From a node that never registered (the agent re-registers on reconnect). */
  "unknown_node",
] as const;

/** A drop reason. */
export type DropReason = (typeof DROP_REASONS)[number];

/** Counts and logs dropped messages. */
export class DropCounter {
  readonly counts: Record<DropReason, number> = {
    mismatched_identity: 0,
    malformed: 0,
    oversized: 0,
    unknown_node: 0,
  };
  readonly #logged = new BoundedSet(10_000);
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Counts a drop and logs it the first time this (reason, node) pair is seen. */
  drop(reason: DropReason, kind: OutboundKind | "unknown", node: string, detail: string): void {
    this.counts[reason]++;
    if (!this.#logged.add(`${reason}\0${node}`)) return;
    this.#log.warn("dropped an agent message (logged once per node and reason)", {
      reason,
      kind,
      node,
      detail,
    });
  }
}
