/**
 * `edgectl deployment ...`: rollouts. `simulate` runs the real planner over a simulated fleet in
 * virtual time, on this machine, before anything happens for real.
 */
import { EdgeplaneError, validateJobSpec } from "@edgeplane/core";
import { parseSelector } from "@edgeplane/selector";
import { parseFlags } from "../args.js";
import { readSpecFile } from "./job.js";

export const deploymentHelp = `Usage: edgectl deployment <command> [flags]

Commands:
  simulate -f FILE   run the rollout planner over a simulated fleet in virtual time and print the
                     timeline: --nodes N (default 20), --fail-rate R (0..1, default 0),
                     --offline-rate R, --lost-rate R, --seed S, --stable-version N (enables
                     auto-rollback to that version), --promote-after DURATION (a person promotes
                     a waiting canary after this long), -o json
`;

function numberFlag(
  name: string,
  value: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new EdgeplaneError(
      "invalid_argument",
      `--${name}: must be a number from ${min} to ${max} (got ${value})`,
    );
  }
  return n;
}

export async function deployment(argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "simulate") {
    process.stderr.write(
      sub ? `edgectl deployment: unknown command "${sub}"\n\n${deploymentHelp}` : deploymentHelp,
    );
    return 2;
  }
  const { values } = parseFlags("deployment simulate", rest, {
    file: { type: "string", short: "f" },
    nodes: { type: "string" },
    "fail-rate": { type: "string" },
    "offline-rate": { type: "string" },
    "lost-rate": { type: "string" },
    seed: { type: "string" },
    "stable-version": { type: "string" },
    "promote-after": { type: "string" },
    output: { type: "string", short: "o" },
  });
  if (!values.file)
    throw new EdgeplaneError("invalid_argument", "edgectl deployment simulate: -f FILE is required");
  const spec = validateJobSpec(readSpecFile(values.file), { parseExpression: (e) => parseSelector(e) });
  const { parseDuration } = await import("@edgeplane/core");
  let promoteAfterMs: number | undefined;
  if (values["promote-after"] !== undefined) {
    promoteAfterMs = parseDuration(values["promote-after"]);
    if (promoteAfterMs === undefined) {
      throw new EdgeplaneError(
        "invalid_argument",
        `--promote-after: ${JSON.stringify(values["promote-after"])} is not a duration`,
      );
    }
  }
  // The planner is pure and needs no server; it is loaded only for this command.
  const { rollout } = await import("@edgeplane/orchestrator");
  const { simulate, formatTimeline } = rollout;
  const stable = numberFlag("stable-version", values["stable-version"], 0, 0, 1_000_000);
  const result = simulate({
    spec,
    nodes: Math.round(numberFlag("nodes", values.nodes, 20, 1, 100_000)),
    failRate: numberFlag("fail-rate", values["fail-rate"], 0, 0, 1),
    offlineRate: numberFlag("offline-rate", values["offline-rate"], 0, 0, 1),
    lostRate: numberFlag("lost-rate", values["lost-rate"], 0, 0, 1),
    seed: Math.round(numberFlag("seed", values.seed, 1, 0, 2 ** 31)),
    stableVersion: stable > 0 ? stable : undefined,
    promoteAfterMs,
  });
  if (values.output === "json") process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(formatTimeline(result));
  return 0;
}
