// `npm run bench -- fanout [--nodes 10000] [--connections 4] [--runs 3]`
//
// Immediate deployment to N simulated agents: the time from the API call (POST /api/v1/jobs)
// returning to every agent holding its assignment, against a same-run baseline that publishes
// the same N pre-encoded DesiredState messages on the same subjects from one NATS connection.
//
// Layout: nats-server, redis-server and the control plane (the rollout runtime, placement in
// rollout mode, the APIs: test/e2e/support/control-plane-process.mjs) are separate processes;
// this process runs the N `SimAgent`s of @edgeplane/orchestrator over `--connections` NATS
// connections and timestamps each agent's receipt. Agents stay silent (no heartbeats, no
// events) so the figure is the fan-out itself. Each run submits a new version of the job, so every
// run is a full deployment of a new version to every node; a first, warm-up deployment (which
// creates the job, and pays for JIT and script loading) is reported apart and not counted.
// `cp_cpu_us_per_node` / `redis_cpu_us_per_node`: CPU the control plane and Redis spent per node
// over the measured deployments (Linux /proc; robust to a busy machine where latency is not).
//
// The control plane runs with `edgectl server`'s defaults (change streams polled every 200 ms and
// read at once after an API write; Redis writes coalesced). To compare: BENCH_POLL_MS=<ms> sets
// the poll period, COALESCE=0 turns coalescing off (environment variables of this command).
//
// Also exports the helpers rolling.bench.mjs uses.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { FLEET_FLAGS, hasFleetFlags, respawnWith, round } from "./lib.mjs";

const GOAL =
  "immediate deployment to 10,000 agents: API return → every agent holds its assignment under 1 s (ratio to publishing the same pre-encoded messages reported)";
const LAUNCHER = fileURLToPath(new URL("../e2e/support/control-plane-process.mjs", import.meta.url));

export async function run(args = []) {
  if (!hasFleetFlags()) return respawnWith("fanout", args, FLEET_FLAGS);
  const opts = parseArgs(args, { nodes: 10_000, connections: 4, runs: 5 });
  const env = await startEnvironment({ ...opts, report: false });
  try {
    const warmup = await deploy(env, { strategy: "immediate" }, "warm-up");
    const runs = [];
    const cpu0 = { cp: cpuMs(env.cp.child.pid), redis: cpuMs(env.redis.pid) };
    for (let i = 0; i < opts.runs; i++) {
      const r = await deploy(env, { strategy: "immediate" }, `v${i + 1}`);
      runs.push(r);
    }
    // The last deployment's trailing work (job and deployment states) belongs to it too.
    await new Promise((r) => setTimeout(r, 200));
    const perNode = (ms0, ms1) => round(((ms1 - ms0) * 1000) / (opts.runs * opts.nodes), 1);
    const cpCpu = perNode(cpu0.cp, cpuMs(env.cp.child.pid));
    const redisCpu = perNode(cpu0.redis, cpuMs(env.redis.pid));
    const base = [];
    for (let i = 0; i < opts.runs; i++) base.push(await baseline(env));
    const best = Math.min(...runs.map((r) => r.allHoldMs));
    const median = med(runs.map((r) => r.allHoldMs));
    const baseMedian = med(base);
    return {
      bench: "fanout",
      goal: GOAL,
      met: median < 1000,
      nodes: opts.nodes,
      connections: opts.connections,
      runs: opts.runs,
      deploy_ms_median: round(median, 1),
      deploy_ms_best: round(best, 1),
      deploy_ms_each: runs.map((r) => round(r.allHoldMs, 1)),
      warmup_deploy_ms: round(warmup.allHoldMs, 1),
      register_ms: Math.round(env.registerMs),
      first_agent_ms_median: round(med(runs.map((r) => r.firstMs)), 1),
      api_call_ms_median: round(med(runs.map((r) => r.apiMs)), 1),
      baseline_ms_median: round(baseMedian, 1),
      baseline_ms_each: base.map((b) => round(b, 1)),
      ratio_to_baseline: round(median / baseMedian, 1),
      cp_cpu_us_per_node: cpCpu,
      redis_cpu_us_per_node: redisCpu,
      node: process.version,
    };
  } finally {
    await env.stop();
  }
}

/**
 * CPU ms a process used so far (Linux /proc: utime + stime in 10 ms ticks); NaN where /proc is
 * not there (the figure then reads null).
 */
export function cpuMs(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/** Median. */
export function med(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** `--key value` pairs over `defaults` (numbers). */
export function parseArgs(args, defaults) {
  const opts = { ...defaults };
  for (let i = 0; i < args.length; i += 2) {
    const key = args[i]?.replace(/^--/, "").replace(/-(\w)/g, (_, c) => c.toUpperCase());
    const value = Number(args[i + 1]);
    if (!(key in opts) || !Number.isFinite(value) || value <= 0)
      throw new Error(`unknown or bad argument ${args[i]} ${args[i + 1] ?? ""}; see the benchmark's header`);
    opts[key] = value;
  }
  return opts;
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool(items, limit, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/** Starts the control plane process; resolves its URL and a stop function. */
function startControlPlane(extraEnv, nodeArgs = []) {
  const child = spawn(process.execPath, [...nodeArgs, LAUNCHER], {
    env: { ...process.env, LOG_LEVEL: "warn", ...extraEnv },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk.toString();
      const line = out.split("\n").find((l) => l.includes('"ready"'));
      if (line) resolve({ child, ...JSON.parse(line) });
    });
    child.once("exit", (code) => reject(new Error(`control plane exited (${code}) before it was ready`)));
  });
}

/** The id of simulated agent `i` (its group is `g<i / groupSize>`). */
export function nodeIdOf(i) {
  return `node-${String(i).padStart(6, "0")}`;
}

/**
 * nats-server, redis-server, the control plane process and `nodes` simulated agents (labels
 * `site=bench`, `group=g<i / groupSize>`). With `report`, each agent reports every new
 * execution as running and healthy at once (an execution event), as a rollout needs.
 */
export async function startEnvironment({
  nodes,
  connections,
  report,
  groupSize = 10,
  cpEnv = {},
  nodeArgs = [],
}) {
  const { startNats, startRedis } = await import("@edgeplane/testkit");
  const { connectNatsBus } = await import("@edgeplane/bus");
  const { SimAgent } = await import("@edgeplane/orchestrator");
  const { timestampFromMs } = await import("@bufbuild/protobuf/wkt");
  const nats = await startNats({ jetstream: false, config: "max_payload: 4194304" });
  const redis = await startRedis();
  const prefix = `bench${randomUUID().slice(0, 6)}:`;
  const cp = await startControlPlane(
    {
      REDIS_URL: redis.url,
      NATS_URL: nats.url,
      PREFIX: prefix,
      HEARTBEAT_MS: "30000",
      POLL_MS: process.env.BENCH_POLL_MS ?? "",
      COALESCE: process.env.COALESCE ?? "",
      EDGEPLANE_LEADER_TTL_MS: "10000",
      EDGEPLANE_ROLLOUT_SETTLE_MS: "1",
      ...cpEnv,
    },
    nodeArgs,
  );
  const buses = [];
  for (let c = 0; c < connections; c++)
    buses.push(await connectNatsBus({ servers: [nats.url], name: `bench-agents-${c}` }));
  const publisher = await connectNatsBus({ servers: [nats.url], name: "bench-baseline" });
  /** What the current measurement waits for: job id → (node → receive time). */
  const watch = { jobId: "", version: 0, got: new Map(), onAll: undefined, expected: 0 };
  /** Per node: times its assignments arrived and it reported (for turnaround). */
  const timeline = { received: new Map(), reported: new Map(), enabled: false };
  /** Every fresh apply (the baseline counts them). */
  const applies = { n: 0, target: Number.POSITIVE_INFINITY, onTarget: undefined };
  const agents = Array.from({ length: nodes }, (_, i) => {
    const id = nodeIdOf(i);
    return new SimAgent({
      bus: buses[i % connections],
      nodeId: id,
      labels: { site: "bench", group: `g${Math.floor(i / groupSize)}` },
      timeoutMs: 60_000,
      keepReceived: false,
      onApply: (ds, a) => {
        const now = performance.now();
        if (++applies.n >= applies.target) applies.onTarget?.();
        for (const x of ds.assignments) {
          if (x.jobId === watch.jobId && x.jobVersion === watch.version && !watch.got.has(a.nodeId)) {
            watch.got.set(a.nodeId, now);
            if (watch.got.size === watch.expected) watch.onAll?.();
          }
          if (timeline.enabled) {
            const key = `${x.jobId}/${a.nodeId}`;
            if (!timeline.received.has(key)) timeline.received.set(key, now);
          }
        }
        if (!report) return;
        for (const x of ds.assignments) {
          if (a.reported?.has(x.executionId)) continue;
          a.reported ??= new Set();
          a.reported.add(x.executionId);
          if (timeline.enabled) timeline.reported.set(`${x.jobId}/${a.nodeId}`, performance.now());
          a.event({
            executionId: x.executionId,
            jobId: x.jobId,
            jobVersion: x.jobVersion,
            state: "running",
            health: { healthy: true, errorRate: 0, since: timestampFromMs(Date.now()) },
            attempt: 1,
          });
        }
      },
    }).listen();
  });
  const registerStarted = performance.now();
  await pool(agents, 256, async (a) => {
    const reply = await a.register();
    if (!reply.accepted) throw new Error(`registration of ${a.nodeId} refused: ${reply.message}`);
  });
  const registerMs = performance.now() - registerStarted;
  const api = async (method, path, body) => {
    const res = await fetch(`${cp.httpUrl}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };
  // Wait until the control plane leads and knows every node.
  for (;;) {
    const res = await api("GET", "/api/v1/nodes?selector=site%3Dbench&limit=1");
    if (res.status === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    nats,
    redis,
    cp,
    agents,
    buses,
    publisher,
    watch,
    timeline,
    applies,
    api,
    registerMs,
    prefix,
    async stop() {
      cp.child.kill("SIGTERM");
      await new Promise((r) => {
        cp.child.once("exit", r);
        setTimeout(r, 5000);
      });
      cp.child.kill("SIGKILL");
      for (const a of agents) a.close();
      await Promise.allSettled([...buses, publisher].map((b) => b.close()));
      await Promise.allSettled([nats.stop(), redis.stop()]);
    },
  };
}

/** A job spec over the bench fleet (or one group). */
export function benchSpec(name, deployment, description, selector = { match_labels: { site: "bench" } }) {
  return {
    name,
    type: "pipeline",
    description,
    config: { input: { generate: { interval: "1s", message: {} } }, output: { discard: {} } },
    selector,
    deployment,
  };
}

/**
 * Submits a version of job "fanout" with `deployment`, and times: the API call, the first and
 * the last agent holding it; then waits for the deployment to end (when agents report).
 */
export async function deploy(env, deployment, description, { waitSucceeded = false } = {}) {
  const { watch } = env;
  const nodes = env.agents.length;
  const started = performance.now();
  // The version is known only from the reply; arm the watch for "any version above the last".
  const res = await env.api("POST", "/api/v1/jobs", benchSpec("fanout", deployment, description));
  const apiReturned = performance.now();
  if (res.status >= 300) throw new Error(`submit failed: ${JSON.stringify(res.body)}`);
  const job = res.body.job;
  const version = job.status.version;
  const early = watch.jobId === job.id && watch.version === version ? watch.got : new Map();
  watch.jobId = job.id;
  watch.version = version;
  watch.got = early;
  watch.expected = nodes;
  // Receipts that arrived before the reply are counted at their own time.
  for (const a of env.agents) {
    if (watch.got.has(a.nodeId)) continue;
    if (a.desired?.assignments.some((x) => x.jobId === job.id && x.jobVersion === version))
      watch.got.set(a.nodeId, apiReturned);
  }
  if (watch.got.size < nodes)
    await new Promise((resolve, reject) => {
      watch.onAll = resolve;
      setTimeout(
        () => reject(new Error(`only ${watch.got.size} of ${nodes} agents got the assignment in 120 s`)),
        120_000,
      ).unref();
    });
  watch.onAll = undefined;
  const times = [...watch.got.values()];
  const last = Math.max(...times);
  const first = Math.min(...times);
  let succeededMs;
  if (waitSucceeded) {
    for (;;) {
      const list = await env.api("GET", `/api/v1/deployments?job_id=${job.id}&limit=1`);
      const d = list.body.items?.[0];
      if (d?.job_version === version && d.state === "succeeded") {
        succeededMs = performance.now() - apiReturned;
        break;
      }
      if (d?.job_version === version && ["failed", "rolled_back", "cancelled"].includes(d.state))
        throw new Error(`deployment ended ${d.state}: ${d.message}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return {
    version,
    apiMs: apiReturned - started,
    firstMs: first - apiReturned,
    allHoldMs: last - apiReturned,
    succeededMs,
  };
}

/** Publishes every agent's held desired state (pre-encoded, revision + 1) and times receipt by all. */
export async function baseline(env) {
  const { create } = await import("@bufbuild/protobuf");
  const { DesiredStateSchema } = await import("@edgeplane/api");
  const { encode, subjects } = await import("@edgeplane/bus");
  const frames = env.agents.map((a) => ({
    subject: subjects.desired(a.nodeId),
    data: encode(
      DesiredStateSchema,
      create(DesiredStateSchema, { ...a.desired, revision: a.appliedRevision + 1 }),
    ),
  }));
  // Counted through the agents' own apply path: a fresh revision fires onApply once per agent.
  const all = new Promise((resolve) => {
    env.applies.target = env.applies.n + frames.length;
    env.applies.onTarget = resolve;
  });
  const started = performance.now();
  for (const f of frames) env.publisher.publish(f.subject, f.data);
  await all;
  const ms = performance.now() - started;
  env.applies.target = Number.POSITIVE_INFINITY;
  env.applies.onTarget = undefined;
  return ms;
}
