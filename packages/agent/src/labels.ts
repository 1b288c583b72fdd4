/**
 * Node labels: the operator's (agent.yaml `labels`, `--labels k=v,...`) and the ones the agent
 * discovers under `edgeplane.io/`, which neither operators nor jobs can set or overwrite.
 */
import { hostname } from "node:os";
import {
  EDGEPLANE_VERSION,
  EdgeplaneError,
  type ErrorDetail,
  MAX_VALUE_BYTES,
  validateLabelKey,
  validateLabelValue,
} from "@edgeplane/core";

/** The prefix of the labels the agent discovers (and the only place they may come from). */
export const DISCOVERED_LABEL_PREFIX = "edgeplane.io/";

/** The discovered label keys. */
export const DISCOVERED_LABELS = {
  os: "edgeplane.io/os",
  arch: "edgeplane.io/arch",
  hostname: "edgeplane.io/hostname",
  agentVersion: "edgeplane.io/agent-version",
} as const;

/** Whether `key` is reserved for the system: prefix `edgeplane.io` or a subdomain of it. */
export function isReservedLabelKey(key: string): boolean {
  const slash = key.indexOf("/");
  if (slash === -1) return false;
  const prefix = key.slice(0, slash);
  return prefix === "edgeplane.io" || prefix.endsWith(".edgeplane.io");
}

/**
 * Turns any text into a valid label value: characters other than letters, digits, `-`, `_`, `.`
 * become `-`, the value is cut at 63 bytes, and leading/trailing non-alphanumerics are trimmed.
 *
 * @example sanitizeLabelValue("My Box (lab)") // "My-Box--lab"
 */
export function sanitizeLabelValue(text: string): string {
  let out = "";
  for (const ch of text) out += /^[A-Za-z0-9._-]$/.test(ch) ? ch : "-";
  out = out.slice(0, MAX_VALUE_BYTES);
  return out.replace(/^[^A-Za-z0-9]+/, "").replace(/[^A-Za-z0-9]+$/, "");
}

/** Facts about the machine that discovered labels come from (injectable for tests). */
export interface HostFacts {
  readonly platform?: string;
  readonly arch?: string;
  readonly hostname?: string;
}

/** The labels the agent adds: os, arch, hostname (sanitized) and agent version. */
export function discoveredLabels(facts: HostFacts = {}): Record<string, string> {
  return {
    [DISCOVERED_LABELS.os]: sanitizeLabelValue(facts.platform ?? process.platform),
    [DISCOVERED_LABELS.arch]: sanitizeLabelValue(facts.arch ?? process.arch),
    [DISCOVERED_LABELS.hostname]: sanitizeLabelValue(facts.hostname ?? hostname()),
    [DISCOVERED_LABELS.agentVersion]: sanitizeLabelValue(EDGEPLANE_VERSION),
  };
}

/**
 * Problems of operator labels, one detail per label, fields named `<where>.<key>`: invalid keys or
 * values, and keys under `edgeplane.io/` (reserved for discovered labels).
 */
export function labelProblems(labels: Readonly<Record<string, string>>, where: string): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  for (const [key, value] of Object.entries(labels)) {
    const field = `${where}.${key}`;
    const keyProblem = validateLabelKey(key);
    if (keyProblem) out.push({ field, description: `key ${keyProblem}` });
    else if (isReservedLabelKey(key)) {
      out.push({
        field,
        description: `keys under "${DISCOVERED_LABEL_PREFIX}" are set by the agent itself (os, arch, hostname, agent-version) and cannot be set by operators; use another prefix such as "example.com/"`,
      });
    }
    if (typeof value !== "string") {
      out.push({ field, description: "value must be a string" });
      continue;
    }
    const valueProblem = validateLabelValue(value);
    if (valueProblem) out.push({ field, description: `value ${valueProblem}` });
  }
  return out;
}

/**
 * Parses `--labels` values (`k=v,k2=v2`, the flag may repeat); later keys win. Throws
 * `invalid_argument` naming the bad entry.
 */
export function parseLabelFlags(values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const value of values) {
    for (const part of value.split(",")) {
      const entry = part.trim();
      if (entry === "") continue;
      const eq = entry.indexOf("=");
      if (eq <= 0) {
        throw new EdgeplaneError(
          "invalid_argument",
          `--labels: ${JSON.stringify(entry)} is not key=value (write --labels site=berlin,tier=edge)`,
          { details: [{ field: "--labels", description: `${JSON.stringify(entry)} is not key=value` }] },
        );
      }
      labels[entry.slice(0, eq).trim()] = entry.slice(eq + 1).trim();
    }
  }
  return labels;
}

/** Throws `invalid_argument` listing every problem of operator labels. */
export function assertLabels(labels: Readonly<Record<string, string>>, where: string): void {
  const details = labelProblems(labels, where);
  const first = details[0];
  if (!first) return;
  const more = details.length > 1 ? ` (and ${details.length - 1} more)` : "";
  throw new EdgeplaneError("invalid_argument", `${first.field}: ${first.description}${more}`, { details });
}
