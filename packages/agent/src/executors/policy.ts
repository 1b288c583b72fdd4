/**
 * What agent.yaml allows, as pure decisions (plus one PATH lookup at start): which command a job
 * may run with which arguments, which environment variables it may set, which NATS data subjects
 * a pipeline may use. Every refusal is a sentence naming the agent.yaml rule, e.g.
 * `command "rm" is not allowed by agent.yaml executors.exec.allow (allowed: uname, df)`.
 */
import { accessSync, constants, statSync } from "node:fs";
import { basename, delimiter, isAbsolute, join } from "node:path";
import { EdgeplaneError } from "@edgeplane/core";
import type { ArgsRule, CommandRule } from "../config.js";

/** A {@link CommandRule} with its program resolved to an absolute path at agent start. */
export interface ResolvedCommandRule extends CommandRule {
  /** The absolute path that is run (never looked up again). */
  readonly path: string;
}

/** The absolute path of an executable file `name` on `pathEnv` (a PATH value); undefined if none. */
export function findOnPath(name: string, pathEnv: string | undefined): string | undefined {
  for (const dir of (pathEnv ?? "").split(delimiter)) {
    if (!dir || !isAbsolute(dir)) continue; // a relative PATH entry would depend on the cwd
    const candidate = join(dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Resolves the rules of an allow list once, at agent start: absolute commands stay as they are,
 * bare names are looked up on `pathEnv`. Throws `invalid_argument` naming the rule when a bare
 * name is not found (a typo must not silently disable a rule).
 */
export function resolveCommandRules(
  rules: readonly CommandRule[],
  field: string,
  pathEnv: string | undefined,
): ResolvedCommandRule[] {
  return rules.map((r, i) => {
    if (isAbsolute(r.command)) return { ...r, path: r.command };
    const path = findOnPath(r.command, pathEnv);
    if (!path) {
      const description = `${JSON.stringify(r.command)} is not an executable on the agent's PATH (${pathEnv ?? "unset"}); write its absolute path`;
      throw new EdgeplaneError("invalid_argument", `agent.yaml: ${field}[${i}].command: ${description}`, {
        details: [{ field: `${field}[${i}].command`, description }],
      });
    }
    return { ...r, path };
  });
}

/** Whether `args` satisfies an {@link ArgsRule}. */
export function argsAllowed(rule: ArgsRule, args: readonly string[]): boolean {
  if (rule === "any") return true;
  if (Array.isArray(rule)) return rule.length === args.length && rule.every((a, i) => a === args[i]);
  const prefix = (rule as { prefix: readonly string[] }).prefix;
  return prefix.length <= args.length && prefix.every((a, i) => a === args[i]);
}

function describeArgs(rule: ArgsRule): string {
  if (rule === "any") return "any arguments";
  if (Array.isArray(rule)) return rule.length === 0 ? "no arguments" : JSON.stringify(rule);
  return `arguments starting with ${JSON.stringify((rule as { prefix: readonly string[] }).prefix)}`;
}

/** How a rule reads in a refusal: `uname [-a]`, `/usr/bin/df (any arguments)`. */
export function describeRule(rule: CommandRule): string {
  return `${rule.command} (${describeArgs(rule.args)})`;
}

/** The verdict on a command a job asks for. */
export type CommandVerdict =
  | { readonly ok: true; readonly path: string; readonly rule: ResolvedCommandRule }
  | { readonly ok: false; readonly message: string };

/**
 * Finds the rule of `rules` (agent.yaml `field`) that allows `command` with `args`. A bare
 * `command` matches rules of the same name (as written, or by the resolved path's file name); an
 * absolute one matches rules whose resolved path it is. What runs is the rule's resolved path.
 */
export function matchCommand(
  rules: readonly ResolvedCommandRule[],
  field: string,
  command: string,
  args: readonly string[],
): CommandVerdict {
  const named = rules.filter((r) =>
    isAbsolute(command)
      ? r.path === command || r.command === command
      : r.command === command || basename(r.path) === command,
  );
  const names = [...new Set(rules.map((r) => r.command))];
  const allowed = names.length > 0 ? names.join(", ") : "none";
  if (named.length === 0) {
    return {
      ok: false,
      message: `command ${JSON.stringify(command)} is not allowed by agent.yaml ${field} (allowed: ${allowed})`,
    };
  }
  const rule = named.find((r) => argsAllowed(r.args, args));
  if (!rule) {
    return {
      ok: false,
      message: `command ${JSON.stringify(command)} with arguments ${JSON.stringify(args)} is not allowed by agent.yaml ${field} (allowed for ${command}: ${named.map((r) => describeArgs(r.args)).join("; ")})`,
    };
  }
  return { ok: true, path: rule.path, rule };
}

/** Whether environment variable `name` matches an `env_allow` entry (a name, or a prefix ending in `*`). */
export function envNameAllowed(envAllow: readonly string[], name: string): boolean {
  return envAllow.some((e) => (e.endsWith("*") ? name.startsWith(e.slice(0, -1)) : e === name));
}

/** The refusal for the first variable of `env` that `env_allow` does not allow; undefined when all are. */
export function envProblem(
  envAllow: readonly string[],
  env: Readonly<Record<string, string>>,
): string | undefined {
  const bad = Object.keys(env).filter((k) => !envNameAllowed(envAllow, k));
  if (bad.length === 0) return undefined;
  const list = bad.map((b) => JSON.stringify(b)).join(", ");
  return `environment variable${bad.length > 1 ? "s" : ""} ${list} ${bad.length > 1 ? "are" : "is"} not allowed by agent.yaml executors.exec.env_allow (allowed: ${envAllow.length > 0 ? envAllow.join(", ") : "none"})`;
}

/** Variables of the agent's own environment a command inherits (nothing else leaks through). */
export const INHERITED_ENV = ["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"] as const;

/** The environment of a command: {@link INHERITED_ENV} from `base`, then the job's (allowed) variables. */
export function commandEnv(
  base: NodeJS.ProcessEnv,
  env: Readonly<Record<string, string>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of INHERITED_ENV) {
    const v = base[k];
    if (v !== undefined) out[k] = v;
  }
  return { ...out, ...env };
}

/**
 * Whether NATS subject pattern `subject` (a pipeline's, possibly with wildcards) only ever matches
 * subjects that `pattern` (an agent.yaml `nats_subjects_allowed` entry) matches.
 */
export function subjectCovered(subject: string, pattern: string): boolean {
  const s = subject.split(".");
  const p = pattern.split(".");
  for (let i = 0; i < p.length; i++) {
    const pt = p[i] as string;
    if (pt === ">") return i < s.length; // ">" needs at least one more token
    const st = s[i];
    if (st === undefined) return false;
    if (st === ">") return false; // the subject reaches further than a finite pattern
    if (pt === "*") continue; // one token, literal or "*"
    if (st !== pt) return false;
  }
  return s.length === p.length;
}

/** The refusal when no `nats_subjects_allowed` pattern covers `subject`; undefined when one does. */
export function subjectProblem(
  allowed: readonly string[],
  subject: string,
  field: string,
): string | undefined {
  if (allowed.some((p) => subjectCovered(subject, p))) return undefined;
  return `${field} ${JSON.stringify(subject)} is not allowed by agent.yaml executors.pipeline.nats_subjects_allowed (allowed: ${allowed.length > 0 ? allowed.join(", ") : "none"})`;
}
