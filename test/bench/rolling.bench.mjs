// `npm run bench -- rolling [--nodes 10000] [--connections 4] [--runs 2] [--jobs 1000] [--group 10]
//                           [--start-ms 0]`
//
// Two figures, in one environment (nats-server, redis-server and the control plane as separate
// processes; the simulated agents here, each reporting every new execution running and healthy
// at once with an execution event, as a rollout needs):
//
// 1. Rolling vs immediate over N agents: a rolling deployment in 10 waves (max_parallel N/10,
//    min_healthy_time 0) against an immediate one, both timed from the API call returning to
//    every agent holding the version (and to the deployment's `succeeded`). Goal: rolling at most
//    1.5x immediate.
// 2. Concurrency: `--jobs` jobs, each selecting its own `--group` nodes, submitted at once, each
//    rolling with max_parallel 2 and min_healthy_time 0. Wave turnaround = the time from the
//    report that freed a slot (a node of the job reporting its execution healthy) to the next
//    node of that job receiving its assignment, both timestamped here. Goal: p99 under 10 ms.
//    With `--start-ms S` each agent reports a new execution after a random U(0.5 S, 1.5 S) delay
//    (an execution starting up), timestamped when it reports; with 0 (the default) it reports at
//    once, which makes the 1,000 rollouts a closed loop that keeps the control plane saturated:
//    turnaround is then the queue of every other rollout's step (see docs/benchmarks.md).
//    CPU per dispatched node (control plane, Redis) and the dispatch rate are reported too.

import { readFileSync } from "node:fs";
import { benchSpec, deploy, med, parseArgs, pool, startEnvironment } from "./fanout.bench.mjs";
import { round } from "./lib.mjs";

/** CPU ms a process used so far (Linux /proc; utime + stime in 10 ms ticks). */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const GOAL =
  "rolling over 10,000 agents in 10 waves (min_healthy_time 0) at most 1.5x the immediate deployment's time; 1,000 concurrent rolling deployments of 10 nodes each with wave turnaround p99 under 10 ms";

function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

export async function run(args = []) {
  const opts = parseArgs(args, { nodes: 10_000, connections: 4, runs: 2, jobs: 1000, group: 10, startMs: 0 });
  const env = await startEnvironment({ ...opts, report: true, groupSize: opts.group });
  try {
    // 1. Rolling vs immediate (a first immediate deployment warms everything up).
    await deploy(env, { strategy: "immediate" }, "warm-up", { waitSucceeded: true });
    const immediate = [];
    const rolling = [];
    const rollingDeployment = {
      strategy: "rolling",
      max_parallel: Math.ceil(opts.nodes / 10),
      health_check: { deadline: "60s", min_healthy_time: "0s" },
    };
    for (let i = 0; i < opts.runs; i++) {
      immediate.push(await deploy(env, { strategy: "immediate" }, `immediate ${i}`, { waitSucceeded: true }));
      rolling.push(await deploy(env, rollingDeployment, `rolling ${i}`, { waitSucceeded: true }));
    }
    const immHold = med(immediate.map((r) => r.allHoldMs));
    const rollHold = med(rolling.map((r) => r.allHoldMs));
    const immDone = med(immediate.map((r) => r.succeededMs));
    const rollDone = med(rolling.map((r) => r.succeededMs));

    // 2. Many small rolling deployments at once.
    env.timeline.enabled = true;
    if (opts.startMs > 0) {
      for (const a of env.agents) {
        const send = a.event.bind(a);
        a.event = (e) => {
          setTimeout(
            () => {
              env.timeline.reported.set(`${e.jobId}/${a.nodeId}`, performance.now());
              send(e);
            },
            opts.startMs * (0.5 + Math.random()),
          );
          return "";
        };
      }
    }
    const cpu0 = { cp: cpuMs(env.cp.child.pid), redis: cpuMs(env.redis.pid) };
    const groups = Math.min(opts.jobs, Math.floor(opts.nodes / opts.group));
    const jobIds = new Array(groups);
    const submitStarted = performance.now();
    await pool(
      Array.from({ length: groups }, (_, g) => g),
      64,
      async (g) => {
        const res = await env.api(
          "POST",
          "/api/v1/jobs",
          benchSpec(
            `group-${g}`,
            {
              strategy: "rolling",
              max_parallel: 2,
              health_check: { deadline: "60s", min_healthy_time: "0s" },
            },
            "",
            { match_labels: { group: `g${g}` } },
          ),
        );
        if (res.status >= 300) throw new Error(`submit failed: ${JSON.stringify(res.body)}`);
        jobIds[g] = res.body.job.id;
      },
    );
    const submittedMs = performance.now() - submitStarted;
    const expected = groups * opts.group;
    const jobSet = new Set(jobIds);
    const countMine = () => {
      let n = 0;
      for (const key of env.timeline.reported.keys()) if (jobSet.has(key.slice(0, key.indexOf("/")))) n++;
      return n;
    };
    const waitStarted = performance.now();
    while (countMine() < expected) {
      if (performance.now() - waitStarted > 180_000)
        throw new Error(`only ${countMine()} of ${expected} nodes got their job in 180 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const allDispatchedMs = performance.now() - submitStarted;
    const cpu = { cp: cpuMs(env.cp.child.pid) - cpu0.cp, redis: cpuMs(env.redis.pid) - cpu0.redis };
    // Every deployment ends succeeded.
    let succeeded = 0;
    const doneStarted = performance.now();
    for (;;) {
      succeeded = 0;
      let token = "";
      do {
        const res = await env.api(
          "GET",
          `/api/v1/deployments?limit=1000${token ? `&next_token=${token}` : ""}`,
        );
        for (const d of res.body.items) if (jobSet.has(d.job_id) && d.state === "succeeded") succeeded++;
        token = encodeURIComponent(res.body.next_token ?? "");
      } while (token);
      if (succeeded === groups || performance.now() - doneStarted > 60_000) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const allSucceededMs = performance.now() - submitStarted;
    // Turnaround: per job, each node after the first wave, from the latest report before it arrived.
    const turnarounds = [];
    const byJob = new Map();
    for (const [key, t] of env.timeline.received) {
      const slash = key.indexOf("/");
      const job = key.slice(0, slash);
      if (!jobSet.has(job)) continue;
      let e = byJob.get(job);
      if (!e) {
        e = { received: [], reported: [] };
        byJob.set(job, e);
      }
      e.received.push(t);
      e.reported.push(env.timeline.reported.get(key) ?? t);
    }
    for (const e of byJob.values()) {
      const received = [...e.received].sort((a, b) => a - b);
      const reported = [...e.reported].sort((a, b) => a - b);
      const firstWave = received.slice(0, 2);
      for (const r of received.slice(firstWave.length)) {
        let freed;
        for (const rep of reported) if (rep < r) freed = rep;
        if (freed !== undefined) turnarounds.push(r - freed);
      }
    }
    const p50 = percentile(turnarounds, 50);
    const p99 = percentile(turnarounds, 99);
    return {
      bench: "rolling",
      goal: GOAL,
      met: rollHold <= 1.5 * immHold && p99 < 10,
      nodes: opts.nodes,
      connections: opts.connections,
      rolling_vs_immediate: {
        met: rollHold <= 1.5 * immHold,
        immediate_all_hold_ms: round(immHold, 1),
        rolling_all_hold_ms: round(rollHold, 1),
        ratio: round(rollHold / immHold, 2),
        immediate_succeeded_ms: round(immDone, 1),
        rolling_succeeded_ms: round(rollDone, 1),
        succeeded_ratio: round(rollDone / immDone, 2),
        waves: 10,
        runs: opts.runs,
      },
      concurrent: {
        met: p99 < 10,
        deployments: groups,
        nodes_each: opts.group,
        max_parallel: 2,
        start_ms: opts.startMs,
        succeeded,
        turnarounds: turnarounds.length,
        turnaround_p50_ms: round(p50, 2),
        turnaround_p90_ms: round(percentile(turnarounds, 90), 2),
        turnaround_p99_ms: round(p99, 2),
        turnaround_max_ms: round(Math.max(...turnarounds), 2),
        submit_all_ms: round(submittedMs, 0),
        all_dispatched_ms: round(allDispatchedMs, 0),
        all_succeeded_ms: round(allSucceededMs, 0),
        dispatches_per_s: round(expected / (allDispatchedMs / 1000), 0),
        control_plane_cpu_us_per_node: round((cpu.cp * 1000) / expected, 0),
        redis_cpu_us_per_node: round((cpu.redis * 1000) / expected, 0),
      },
      node: process.version,
    };
  } finally {
    await env.stop();
  }
}
