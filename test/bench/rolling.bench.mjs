// `npm run bench -- rolling [--nodes 10000] [--connections 4] [--runs 2] [--jobs 1000] [--group 10]
//                           [--start-ms 3000]`
//
// Two figures, in one environment (nats-server, redis-server and the control plane as separate
// processes; the simulated agents here, each reporting every new execution running and healthy
// with an execution event, as a rollout needs; this process runs with the fleet flags of lib.mjs):
//
// 1. Rolling vs immediate over N agents: a rolling deployment in 10 waves (max_parallel N/10,
//    min_healthy_time 0) against an immediate one, both timed from the API call returning to
//    every agent holding the version (and to the deployment's `succeeded`); agents report at once.
//    Goal: rolling at most 1.5x immediate.
// 2. Concurrency: `--jobs` jobs, each selecting its own `--group` nodes, submitted at once, each
//    rolling with max_parallel 2 and min_healthy_time 0. Wave turnaround = the time from the
//    report that freed a slot (a node of the job reporting its execution healthy) to the next
//    node of that job receiving its assignment, both timestamped here. Goal: p99 under 10 ms.
//    Each agent reports a new execution after a random U(0.5 S, 1.5 S) delay, S = `--start-ms`
//    (an execution starting up), timestamped when it reports. `--start-ms 0` reports at once,
//    which makes the 1,000 rollouts a closed loop that keeps the control plane saturated:
//    turnaround is then the queue of every other rollout's step, ~in-flight / throughput by
//    Little's law, whatever one step costs (see docs/benchmarks.md). The control plane's share
//    of each turnaround (from its trace) and the transport's are reported beside it, with the
//    CPU per dispatched node (control plane, Redis) and the dispatch rate.
//
// CP_CPU_PROFILE=<file>: the control plane writes a CPU profile of the concurrent phase (from the
// first submit to the last node dispatched) to <file>. CP_NODE_ARGS="--flag ...": node flags for
// the control plane process (experiments with V8's GC, for example; the figures in
// docs/benchmarks.md are without).

import { readFileSync } from "node:fs";
import { benchSpec, deploy, med, nodeIdOf, parseArgs, pool, startEnvironment } from "./fanout.bench.mjs";
import { FLEET_FLAGS, hasFleetFlags, respawnWith, round } from "./lib.mjs";

/** System calls a process made so far that read or write (Linux /proc/<pid>/io: syscr, syscw). */
function syscalls(pid) {
  const io = readFileSync(`/proc/${pid}/io`, "utf8");
  return { read: Number(/syscr: (\d+)/.exec(io)?.[1]), write: Number(/syscw: (\d+)/.exec(io)?.[1]) };
}

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

/** The rollout runtime's and placement's counters over the phase, per dispatched node. */
function perNode(before, after, nodes) {
  const out = {};
  for (const [name, key] of [
    ["deployment_syncs", "deploymentSyncs"],
    ["deployment_writes", "deploymentWrites"],
    ["job_syncs", "jobSyncs"],
    ["job_writes", "jobWrites"],
    ["conflicts", "conflicts"],
  ])
    out[name] = round((after.runtime[key] - before.runtime[key]) / nodes, 2);
  return out;
}

/**
 * The turnarounds of the concurrent phase split by where the time went, from the control plane's
 * trace (`TRACE=1` in the launcher: per node, when its execution events arrived and its desired
 * states left, absolute ms) and the agents' timeline. `controlPlane`: per dispatch after a job's
 * first wave, from the arrival of the latest report before it to the desired state leaving;
 * `inbound`: report sent → arrived (reports sent while dispatches were still to come: the rest
 * meet the benchmark's own polling of the API); `outbound`: desired state left → the agent had it.
 */
async function splitTurnarounds(env, jobIds, group, since, until) {
  const trace = (await env.api("GET", "/debug/trace")).body;
  const byNode = (flat) => {
    const m = new Map();
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const t = flat[i + 1] - performance.timeOrigin;
      if (t < since) continue;
      const ts = m.get(flat[i]);
      if (ts) ts.push(t);
      else m.set(flat[i], [t]);
    }
    return m;
  };
  const arrived = byNode(trace.events);
  const left = byNode(trace.pushes);
  const out = { controlPlane: [], inbound: [], outbound: [] };
  jobIds.forEach((jobId, g) => {
    const reports = [];
    const pushes = [];
    for (let k = 0; k < group; k++) {
      const node = nodeIdOf(g * group + k);
      const sent = env.timeline.reported.get(`${jobId}/${node}`);
      const got = env.timeline.received.get(`${jobId}/${node}`);
      const inAt = (arrived.get(node) ?? []).find((t) => sent !== undefined && t >= sent - 1);
      const outAt = left.get(node)?.[0];
      if (inAt !== undefined) {
        reports.push(inAt);
        if (sent < until) out.inbound.push(inAt - sent);
      }
      if (outAt !== undefined) {
        pushes.push(outAt);
        if (got !== undefined) out.outbound.push(got - outAt);
      }
    }
    reports.sort((a, b) => a - b);
    pushes.sort((a, b) => a - b);
    for (const p of pushes.slice(2)) {
      let freed;
      for (const r of reports) if (r < p) freed = r;
      if (freed !== undefined) out.controlPlane.push(p - freed);
    }
  });
  return out;
}

export async function run(args = []) {
  if (!hasFleetFlags()) return respawnWith("rolling", args, FLEET_FLAGS);
  const opts = parseArgs(args, {
    nodes: 10_000,
    connections: 4,
    runs: 2,
    jobs: 1000,
    group: 10,
    startMs: 3000,
  });
  const profile = process.env.CP_CPU_PROFILE;
  const env = await startEnvironment({
    ...opts,
    report: true,
    groupSize: opts.group,
    // The control plane notes when each execution event arrived and each desired state left, so
    // the turnaround splits into its own share and the transport's (see the figures below).
    cpEnv: { TRACE: "1", ...(profile ? { CPU_PROFILE: profile } : {}) },
    nodeArgs: process.env.CP_NODE_ARGS ? process.env.CP_NODE_ARGS.split(" ") : [],
  });
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
    const io0 = syscalls(env.cp.child.pid);
    const stats0 = (await env.api("GET", "/debug/stats?reset=1")).body;
    if (profile) process.kill(env.cp.child.pid, "SIGUSR2");
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
    // Nodes of these jobs that reported: counted once now, then as reports come (a walk of the
    // whole map every 20 ms would take CPU from the processes being measured).
    const reported = env.timeline.reported;
    const isMine = (key) => jobSet.has(key.slice(0, key.indexOf("/")));
    let mine = 0;
    for (const key of reported.keys()) if (isMine(key)) mine++;
    const set = reported.set.bind(reported);
    reported.set = (key, t) => {
      if (!reported.has(key) && isMine(key)) mine++;
      return set(key, t);
    };
    const countMine = () => mine;
    const waitStarted = performance.now();
    while (countMine() < expected) {
      if (performance.now() - waitStarted > 180_000)
        throw new Error(`only ${countMine()} of ${expected} nodes got their job in 180 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const allDispatchedMs = performance.now() - submitStarted;
    if (profile) process.kill(env.cp.child.pid, "SIGUSR2");
    const cpu = { cp: cpuMs(env.cp.child.pid) - cpu0.cp, redis: cpuMs(env.redis.pid) - cpu0.redis };
    const io1 = syscalls(env.cp.child.pid);
    const cpStats = (await env.api("GET", "/debug/stats")).body;
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
    const split = await splitTurnarounds(
      env,
      jobIds,
      opts.group,
      submitStarted,
      submitStarted + allDispatchedMs,
    );
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
        // The same turnarounds as the control plane sees them (from the report's arrival to the
        // next desired state leaving it), and the transport around it: the report reaching the
        // control plane, the desired state reaching the agent (NATS and either event loop).
        control_plane_turnaround_p50_ms: round(percentile(split.controlPlane, 50), 2),
        control_plane_turnaround_p99_ms: round(percentile(split.controlPlane, 99), 2),
        report_to_control_plane_p99_ms: round(percentile(split.inbound, 99), 2),
        desired_state_to_agent_p99_ms: round(percentile(split.outbound, 99), 2),
        submit_all_ms: round(submittedMs, 0),
        all_dispatched_ms: round(allDispatchedMs, 0),
        all_succeeded_ms: round(allSucceededMs, 0),
        dispatches_per_s: round(expected / (allDispatchedMs / 1000), 0),
        // The control plane's event loop and garbage collector over the dispatch window.
        control_plane_loop_delay_p99_ms: cpStats.loop.p99,
        control_plane_gc: cpStats.gc,
        // The runtime's work per dispatched node (syncs, record writes, revision conflicts).
        per_node: perNode(stats0, cpStats, expected),
        control_plane_cpu_us_per_node: round((cpu.cp * 1000) / expected, 0),
        redis_cpu_us_per_node: round((cpu.redis * 1000) / expected, 0),
        // Socket reads and writes (all of them: Redis, NATS, the benchmark's API polls).
        control_plane_syscalls_per_node: {
          read: round((io1.read - io0.read) / expected, 1),
          write: round((io1.write - io0.write) / expected, 1),
        },
      },
      node: process.version,
    };
  } finally {
    await env.stop();
  }
}
