/**
 * `edgectl deployment ...`: rollouts. `simulate` runs the real planner over a simulated fleet in
 * virtual time, on this machine, before anything happens for real; `list`, `get` and `watch` read
 * rollouts over gRPC (`watch` follows one live: a progress bar per wave, counters, the timeline);
 * `pause`, `resume`, `promote`, `rollback` and `cancel` steer one. `planCommand` is
 * `edgectl job plan -f FILE`: the dry run of a spec (diff, matching nodes, canaries and waves).
 */
import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  type Client,
  createClient,
  type Deployment,
  DeploymentSchema,
  DeploymentService,
  JobService,
  JobSpecSchema,
  PlanJobResponseSchema,
} from "@edgeplane/api";
import { EdgeplaneError, fromGrpcStatus, validateJobSpec } from "@edgeplane/core";
import { parseSelector } from "@edgeplane/selector";
import { parseFlags, serverAddress } from "../args.js";
import { ago, nextPageCommand, outputFormat, printData, table } from "../output.js";
import { readSpecFile } from "./job.js";

export const deploymentHelp = `Usage: edgectl deployment <command> [flags]

Commands:
  list --job ID      a job's deployments, newest first (--limit N, --next-token T; no --job: all)
  get ID             one deployment: state, progress, counters, next steps, the timeline
  watch ID           follow a deployment live until it ends: a progress bar per wave, counters,
                     the latest events (exit code 0 when it succeeded, 1 when it ended otherwise)
  pause ID           stop dispatching (assigned nodes keep their deadlines)
  resume ID          dispatch again
  promote ID         continue a canary deployment awaiting promotion
  rollback ID        roll back to the job's stable version (as a new version)
  cancel ID          stop the rollout; nodes keep what they have
  simulate -f FILE   run the rollout planner over a simulated fleet in virtual time and print the
                     timeline: --nodes N (default 20), --fail-rate R (0..1, default 0),
                     --offline-rate R, --lost-rate R, --seed S, --stable-version N (enables
                     auto-rollback to that version), --promote-after DURATION (a person promotes
                     a waiting canary after this long), -o json

A control the deployment's state does not allow is refused with the reason (and the steps that
are allowed). Common flags: --server host:port (or $EDGEPLANE_SERVER), -o text|json|yaml
`;

/** Help of \`edgectl job plan\`. */
export const planHelp = `Usage: edgectl job plan -f FILE [--server host:port] [-o text|json|yaml]

The dry run of submitting a spec, computed by the control plane's rollout planner: the changes
against the job's current version, every node the selector matches now, the canary set and each
wave's nodes in dispatch order, and warnings. Nothing is submitted.
`;

const JSON_OPTIONS = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;
const common = { server: { type: "string" }, output: { type: "string", short: "o" } } as const;
const CONTROLS = ["pause", "resume", "promote", "rollback", "cancel"] as const;
type ControlName = (typeof CONTROLS)[number];

function deploymentsClient(server: string | undefined): Client<typeof DeploymentService> {
  return createClient(DeploymentService, serverAddress(server), {
    fromStatus: fromGrpcStatus,
    defaultTimeoutMs: 30_000,
  });
}

function requireId(command: string, positionals: string[]): string {
  const id = positionals[0];
  if (!id)
    throw new EdgeplaneError("invalid_argument", `edgectl deployment ${command}: give the deployment id`);
  return id;
}

export async function deployment(argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "simulate":
      return simulateCommand(rest);
    case "list":
      return listCommand(rest);
    case "get":
      return getCommand(rest);
    case "watch":
      return watchCommand(rest);
    default:
      if (sub !== undefined && (CONTROLS as readonly string[]).includes(sub))
        return controlCommand(sub as ControlName, rest);
      process.stderr.write(
        sub ? `edgectl deployment: unknown command "${sub}"\n\n${deploymentHelp}` : deploymentHelp,
      );
      return 2;
  }
}

/** The JSON form of a deployment (proto field names). */
function json(d: Deployment): Record<string, unknown> {
  return toJson(DeploymentSchema, d, JSON_OPTIONS) as Record<string, unknown>;
}

async function listCommand(argv: readonly string[]): Promise<number> {
  const { values } = parseFlags("deployment list", argv, {
    ...common,
    job: { type: "string" },
    limit: { type: "string" },
    "next-token": { type: "string" },
  });
  const format = outputFormat(values.output);
  const api = deploymentsClient(values.server);
  try {
    const res = await api.listDeployments({
      jobId: values.job ?? "",
      limit: values.limit === undefined ? 0 : Number(values.limit),
      nextToken: values["next-token"] ?? "",
    });
    if (format !== "text") {
      printData({ items: res.items.map(json), next_token: res.nextToken }, format);
      return 0;
    }
    process.stdout.write(
      table(
        ["ID", "JOB", "VERSION", "STRATEGY", "STATE", "PROGRESS", "FAILED", "UPDATED"],
        res.items.map((d) => [
          d.id,
          d.jobName,
          String(d.jobVersion),
          d.strategy,
          d.state,
          `${Math.round(d.progress * 100)}%`,
          String(d.counters?.failed ?? 0),
          ago((json(d).updated_at as string | undefined) ?? undefined),
        ]),
      ),
    );
    if (res.nextToken)
      process.stdout.write(`next page: ${nextPageCommand("deployment list", argv, res.nextToken)}\n`);
    return 0;
  } finally {
    api.close();
  }
}

async function getCommand(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags("deployment get", argv, common);
  const id = requireId("get", positionals);
  const format = outputFormat(values.output);
  const api = deploymentsClient(values.server);
  try {
    const res = await api.getDeployment({ id });
    const d = res.deployment;
    if (d === undefined) throw new EdgeplaneError("internal", "the server answered without a deployment");
    if (format !== "text") printData(json(d), format);
    else process.stdout.write(render(d, { events: 20, color: false }));
    return 0;
  } finally {
    api.close();
  }
}

async function controlCommand(control: ControlName, argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags(`deployment ${control}`, argv, {
    ...common,
    reason: { type: "string" },
  });
  const id = requireId(control, positionals);
  const format = outputFormat(values.output);
  const api = deploymentsClient(values.server);
  try {
    const req = { id, reason: values.reason ?? "" };
    const res =
      control === "pause"
        ? await api.pauseDeployment(req)
        : control === "resume"
          ? await api.resumeDeployment(req)
          : control === "promote"
            ? await api.promoteDeployment(req)
            : control === "rollback"
              ? await api.rollbackDeployment(req)
              : await api.cancelDeployment(req);
    const d = res.deployment;
    if (d === undefined) throw new EdgeplaneError("internal", "the server answered without a deployment");
    if (format !== "text") printData(json(d), format);
    else
      process.stdout.write(
        `${control}: deployment ${d.id} is ${d.state}${d.nextSteps.length ? ` (next: ${d.nextSteps.join(", ")})` : ""}\n${d.message}\n`,
      );
    return 0;
  } finally {
    api.close();
  }
}

const TERMINAL = new Set(["succeeded", "failed", "rolled_back", "cancelled", "superseded"]);

async function watchCommand(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseFlags("deployment watch", argv, common);
  const id = requireId("watch", positionals);
  const format = outputFormat(values.output);
  const api = createClient(DeploymentService, serverAddress(values.server), { fromStatus: fromGrpcStatus });
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once("SIGINT", onSignal);
  const tty = format === "text" && process.stdout.isTTY === true;
  let last: Deployment | undefined;
  let printedEvents = 0;
  try {
    for await (const res of api.watchDeployment({ id }, { signal: controller.signal })) {
      const d = res.deployment;
      if (d === undefined) continue;
      last = d;
      if (format !== "text") {
        process.stdout.write(`${JSON.stringify(json(d))}\n`);
      } else if (tty) {
        // Redraw in place: home, clear screen, the whole view.
        process.stdout.write(`\x1b[H\x1b[2J${render(d, { events: 10, color: true })}`);
      } else {
        // A log: one status line per change, then the new timeline entries.
        const c = d.counters;
        process.stdout.write(
          `[rev ${d.revision}] ${d.state} ${Math.round(d.progress * 100)}% wave ${c?.currentWave ?? 0}/${c?.waves ?? 0} updated ${c?.updated ?? 0} healthy ${c?.healthy ?? 0} failed ${c?.failed ?? 0}: ${d.message}\n`,
        );
        const fresh = d.events.slice(Math.max(0, Math.min(printedEvents, d.events.length)));
        for (const e of fresh) process.stdout.write(`  ${eventLine(e)}\n`);
        printedEvents = d.events.length;
      }
    }
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  } finally {
    process.off("SIGINT", onSignal);
    api.close();
  }
  if (last === undefined) return 1;
  if (!TERMINAL.has(last.state)) return 0; // interrupted
  return last.state === "succeeded" ? 0 : 1;
}

function bar(done: number, total: number, width = 24): string {
  if (total <= 0) return `[${"░".repeat(width)}]`;
  const full = Math.round((Math.min(done, total) / total) * width);
  return `[${"█".repeat(full)}${"░".repeat(width - full)}]`;
}

function time(e: Deployment["events"][number]): string {
  const ms = e.time ? Number(e.time.seconds) * 1000 + Math.floor(e.time.nanos / 1e6) : 0;
  return ms > 0 ? new Date(ms).toISOString().slice(11, 19) : "--:--:--";
}

function eventLine(e: Deployment["events"][number]): string {
  const nodes =
    e.nodes.length > 0
      ? ` [${e.nodes.slice(0, 8).join(", ")}${e.nodes.length > 8 || e.details.nodes_total ? ", …" : ""}]`
      : "";
  return `${time(e)}  ${e.kind.padEnd(18)} ${e.reason}${nodes}`;
}

/** Per wave: how many nodes, dispatched, done, failed (from the timeline and the started event). */
export function waveProgress(
  d: Deployment,
): Array<{ wave: number; canary: boolean; size: number; dispatched: number; done: number; failed: number }> {
  const c = d.counters;
  const waves = c?.waves ?? 0;
  const targets = c?.targets ?? 0;
  const canaries = c?.canaries ?? 0;
  const started = d.events.find((e) => e.kind === "started");
  const waveSize =
    Number(started?.details.wave_size ?? 0) ||
    Math.max(1, Math.ceil((targets - canaries) / Math.max(1, waves - (canaries > 0 ? 1 : 0))));
  const waveOf = new Map<string, number>();
  for (const e of d.events) {
    if (e.kind !== "dispatched") continue;
    const w = Number(e.details.wave ?? 0);
    for (const n of e.nodes) waveOf.set(n, w);
  }
  const out: Array<{
    wave: number;
    canary: boolean;
    size: number;
    dispatched: number;
    done: number;
    failed: number;
  }> = [];
  for (let w = 1; w <= waves; w++) {
    const canary = canaries > 0 && w === 1;
    const before = canaries > 0 ? canaries + (w - 2) * waveSize : (w - 1) * waveSize;
    const size = canary ? canaries : Math.max(0, Math.min(waveSize, targets - before));
    out.push({ wave: w, canary, size, dispatched: 0, done: 0, failed: 0 });
  }
  const counted = new Set<string>();
  for (const e of d.events) {
    const kind =
      e.kind === "dispatched"
        ? "dispatched"
        : e.kind === "node_healthy"
          ? "done"
          : e.kind === "node_failed"
            ? "failed"
            : undefined;
    if (kind === undefined) continue;
    for (const n of e.nodes) {
      const w = waveOf.get(n);
      const row = w === undefined ? undefined : out[w - 1];
      if (row === undefined || counted.has(`${kind}/${n}`)) continue;
      counted.add(`${kind}/${n}`);
      row[kind]++;
    }
  }
  return out;
}

/** The text view of a deployment (what \`get\` prints and \`watch\` redraws). */
export function render(d: Deployment, options: { events: number; color: boolean }): string {
  const c = d.counters;
  const paint = (code: string, s: string) => (options.color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const stateColor =
    d.state === "succeeded"
      ? "32"
      : ["failed", "rolled_back", "rolling_back"].includes(d.state)
        ? "31"
        : d.state === "awaiting_promotion" || d.state === "paused"
          ? "33"
          : "36";
  const lines: string[] = [];
  lines.push(
    `deployment ${d.id}  job ${d.namespace}/${d.jobName} version ${d.jobVersion}${d.isRollback ? ` (rollback of ${d.rollbackOfDeploymentId})` : ""}`,
  );
  lines.push(`strategy ${d.strategy}   state ${paint(stateColor, d.state)}   revision ${d.revision}`);
  lines.push(`progress ${bar(c?.healthy ?? 0, c?.targets ?? 0)} ${Math.round(d.progress * 100)}%`);
  lines.push(
    `targets ${c?.targets ?? 0}  updated ${c?.updated ?? 0}  healthy ${c?.healthy ?? 0}  unhealthy ${c?.unhealthy ?? 0}  failed ${c?.failed ?? 0}  canaries ${c?.canaries ?? 0}  wave ${c?.currentWave ?? 0}/${c?.waves ?? 0}`,
  );
  for (const w of waveProgress(d)) {
    const updating = Math.max(0, w.dispatched - w.done - w.failed);
    const what =
      w.dispatched === 0
        ? "pending"
        : `${w.done}/${w.size} done${updating ? `, ${updating} updating` : ""}${w.failed ? `, ${w.failed} failed` : ""}`;
    lines.push(`  ${(w.canary ? "canary" : `wave ${w.wave}`).padEnd(8)} ${bar(w.done, w.size, 16)} ${what}`);
  }
  lines.push(`message: ${d.message}`);
  if (d.rollbackDeploymentId) lines.push(`rolled back by: ${d.rollbackDeploymentId}`);
  lines.push(`next steps: ${d.nextSteps.length ? d.nextSteps.join(", ") : "none"}`);
  const events = d.events.slice(-options.events);
  if (events.length > 0) {
    lines.push("events:");
    for (const e of events) lines.push(`  ${eventLine(e)}`);
  }
  return `${lines.join("\n")}\n`;
}

/** \`edgectl job plan -f FILE\`: the dry run over gRPC (JobService.PlanJob). */
export async function planCommand(argv: readonly string[]): Promise<number> {
  const { values } = parseFlags("job plan", argv, { ...common, file: { type: "string", short: "f" } });
  if (!values.file) throw new EdgeplaneError("invalid_argument", "edgectl job plan: -f FILE is required");
  const spec = validateJobSpec(readSpecFile(values.file), { parseExpression: (e) => parseSelector(e) });
  const format = outputFormat(values.output);
  const api = createClient(JobService, serverAddress(values.server), {
    fromStatus: fromGrpcStatus,
    defaultTimeoutMs: 30_000,
  });
  try {
    const res = await api.planJob({ spec: fromJson(JobSpecSchema, spec as unknown as JsonValue) });
    if (format !== "text") {
      printData(toJson(PlanJobResponseSchema, res, JSON_OPTIONS), format);
      return 0;
    }
    const out: string[] = [];
    out.push(
      res.jobId
        ? `job ${res.jobId}: version ${res.currentVersion} → ${res.changed ? `version ${res.currentVersion + 1}` : "unchanged"}`
        : `a new job ${spec.namespace}/${spec.name} (version 1)`,
    );
    if (res.changes.length > 0) {
      out.push("changes:");
      for (const ch of res.changes) {
        const fmt = (v: unknown) => (v === undefined ? "(none)" : JSON.stringify(v));
        const o = ch.oldValue === undefined ? undefined : toJson(ValueSchema, ch.oldValue);
        const n = ch.newValue === undefined ? undefined : toJson(ValueSchema, ch.newValue);
        out.push(`  ${ch.path}: ${fmt(o)} → ${fmt(n)}`);
      }
    }
    out.push(
      `matching nodes (${res.matchingNodeIds.length}): ${res.matchingNodeIds.slice(0, 20).join(", ")}${res.matchingNodeIds.length > 20 ? ", …" : ""}`,
    );
    if (res.waves.length > 0) {
      out.push(`rollout (${spec.deployment.strategy}):`);
      for (const w of res.waves) {
        const label = w.canary ? "canary" : `wave ${w.index}`;
        out.push(
          `  ${label.padEnd(8)} ${String(w.nodeIds.length).padStart(4)} nodes: ${w.nodeIds.slice(0, 12).join(", ")}${w.nodeIds.length > 12 ? ", …" : ""}`,
        );
      }
    }
    for (const w of res.warnings) out.push(`warning: ${w}`);
    process.stdout.write(`${out.join("\n")}\n`);
    return 0;
  } finally {
    api.close();
  }
}

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

async function simulateCommand(rest: readonly string[]): Promise<number> {
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
