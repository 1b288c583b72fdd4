// `npm run bench -- heartbeats [--nodes 10000] [--seconds 15] [--warmup 3] [--connections 4]
//                              [--executions 2] [--persist-ms 10000]`
//
// The node registry under a fleet's heartbeats: N simulated agents (many per NATS connection)
// register, then heartbeat at 1 per second each, with 1-2 executions per heartbeat (pre-encoded,
// so the publisher's cost is not in the way). Measured in the same run, on the same messages:
//
// - cp:   a child process running the control plane's NodeRegistry (NATS bus, Redis node and
//         desired-state stores, liveness sweep and coalesced writes on, as in production);
// - bare: a child process with a bare nats.js subscriber on the same subject that decodes every
//         message with protobuf-es (`fromBinary(HeartbeatSchema)`) and does nothing else.
//
// CPU is `process.cpuUsage()` (user + system) of each child over the measured window, divided by
// the heartbeats that child received in it; the publisher (this process), nats-server and Redis
// are separate processes, so the figures are attributable. Both children run at once and see the
// same messages, so machine noise hits both. Heap per node is the cp child's V8 heap plus
// ArrayBuffer memory after `gc()` with every node registered and heartbeating, minus the same
// figure taken before the registry started, divided by the nodes; the stores are in Redis, so
// nothing stored is counted. `--persist-ms` shortens how often a node's last heartbeat is written
// (production: 60 s) so that coalesced writes happen inside the window.
import { fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { quiet, round } from "./lib.mjs";

const GOAL =
  "control-plane CPU per heartbeat <= 2.5x a bare nats.js subscriber decoding the same messages; heap <= 1 KB per node";
const HEARTBEAT_SUBJECT = "ep.node.*.out.heartbeat";

export async function run(args = []) {
  const opts = parseArgs(args);
  const { startNats, startRedis } = await import("@edgeplane/testkit");
  const { connectNatsBus } = await import("@edgeplane/bus");
  const { SimAgent } = await import("@edgeplane/orchestrator");

  const nats = await startNats({ jetstream: false });
  const redis = await startRedis();
  const children = [];
  const buses = [];
  let publisher;
  try {
    const prefix = `bench${randomUUID().slice(0, 8)}:`;
    const common = { nats: nats.url, redis: redis.url, prefix, persistMs: opts.persistMs };
    const cp = await spawnChild("cp", common);
    const bare = await spawnChild("bare", common);
    children.push(cp, bare);

    for (let c = 0; c < opts.connections; c++) {
      buses.push(await connectNatsBus({ servers: [nats.url], name: `bench-agents-${c}` }));
    }
    const agents = Array.from(
      { length: opts.nodes },
      (_, i) =>
        new SimAgent({
          bus: buses[i % opts.connections],
          nodeId: `node-${String(i).padStart(6, "0")}`,
          labels: {
            region: ["eu-west", "us-east", "ap-south"][i % 3],
            site: `site-${String(i % 200).padStart(4, "0")}`,
            tier: i % 4 === 0 ? "gateway" : "edge",
            "edgeplane.io/arch": i % 5 === 0 ? "arm64" : "amd64",
            "edgeplane.io/os": "linux",
          },
          agentVersion: "0.1.0",
          timeoutMs: 60_000,
        }),
    );
    const registerStarted = performance.now();
    await pool(agents, 256, async (a) => {
      const reply = await a.register();
      if (!reply.accepted) throw new Error(`registration of ${a.nodeId} refused: ${reply.message}`);
    });
    const registerMs = performance.now() - registerStarted;
    const registered = await cp.ask({ type: "count" });
    if (registered.nodes !== opts.nodes)
      throw new Error(`the registry holds ${registered.nodes} nodes, not ${opts.nodes}`);

    // Realistic heartbeats: 1-2 executions each, with health and counters.
    const frames = agents.map((a, i) => {
      const n = 1 + (i % opts.executions);
      a.executions = Array.from({ length: n }, (_, k) => ({
        executionId: `exec-${a.nodeId}-${k}`,
        jobId: `job-${k}`,
        jobVersion: 3,
        state: "running",
        health: { healthy: true, errorRate: 0.002 },
        counters: {
          messagesIn: 123_456n,
          messagesOut: 120_001n,
          messagesFiltered: 3000n,
          messagesErrored: 12n,
        },
        progress: 0,
        attempt: 1,
      }));
      return {
        bus: buses[i % opts.connections],
        subject: `ep.node.${a.nodeId}.out.heartbeat`,
        data: a.heartbeatBytes(),
      };
    });
    const bytes = frames.reduce((s, f) => s + f.data.byteLength, 0) / frames.length;

    // Publish every node's heartbeat once per second, spread evenly over the second.
    let sent = 0;
    const started = performance.now();
    publisher = setInterval(() => {
      const due = Math.floor(((performance.now() - started) / 1000) * opts.nodes);
      while (sent < due) {
        const f = frames[sent % frames.length];
        f.bus.publish(f.subject, f.data);
        sent++;
      }
    }, 5);

    await sleep(opts.warmup * 1000);
    const sentAtStart = sent;
    await Promise.all([cp.ask({ type: "start" }), bare.ask({ type: "start" })]);
    const windowStarted = performance.now();
    await sleep(opts.seconds * 1000);
    const [cpWindow, bareWindow] = await Promise.all([cp.ask({ type: "stop" }), bare.ask({ type: "stop" })]);
    const windowMs = performance.now() - windowStarted;
    const sentInWindow = sent - sentAtStart;
    clearInterval(publisher);
    publisher = undefined;
    await sleep(500);
    const [cpFinal, bareFinal] = await Promise.all([
      cp.ask({ type: "finish" }),
      bare.ask({ type: "finish" }),
    ]);

    const cpPerMsg = cpWindow.cpuUs / cpWindow.messages;
    const barePerMsg = bareWindow.cpuUs / bareWindow.messages;
    const ratio = cpPerMsg / barePerMsg;
    const heapPerNode =
      (cpFinal.heapUsed - cpFinal.heapUsed0 + cpFinal.arrayBuffers - cpFinal.arrayBuffers0) / opts.nodes;
    const met = ratio <= 2.5 && heapPerNode <= 1024;
    return {
      bench: "heartbeats",
      goal: GOAL,
      met,
      stretch_1_5x: ratio <= 1.5,
      nodes: opts.nodes,
      heartbeats: cpWindow.messages,
      cp_cpu_us_per_msg: round(cpPerMsg, 2),
      bare_cpu_us_per_msg: round(barePerMsg, 2),
      ratio: round(ratio, 2),
      heap_bytes_per_node: Math.round(heapPerNode),
      heap_v8_bytes_per_node: Math.round((cpFinal.heapUsed - cpFinal.heapUsed0) / opts.nodes),
      heap_buffers_bytes_per_node: Math.round((cpFinal.arrayBuffers - cpFinal.arrayBuffers0) / opts.nodes),
      window_s: round(windowMs / 1000, 1),
      sent_in_window: sentInWindow,
      bare_heartbeats: bareWindow.messages,
      rate_per_s: Math.round(cpWindow.messages / (windowMs / 1000)),
      heartbeat_bytes: Math.round(bytes),
      cp_cpu_percent: round((cpWindow.cpuUs / (windowMs * 1000)) * 100, 1),
      bare_cpu_percent: round((bareWindow.cpuUs / (windowMs * 1000)) * 100, 1),
      register_ms: Math.round(registerMs),
      registry: {
        ready: cpFinal.stats.nodes.ready,
        dropped: cpFinal.stats.dropped,
        persist: cpFinal.stats.persist,
        desired_resends: cpFinal.stats.desiredResends,
      },
      connections: opts.connections,
      persist_ms: opts.persistMs,
      bare_total: bareFinal.total,
      node: process.version,
    };
  } finally {
    if (publisher) clearInterval(publisher);
    await Promise.allSettled(buses.map((b) => b.close()));
    for (const c of children) c.kill();
    await Promise.allSettled([nats.stop(), redis.stop()]);
  }
}

function parseArgs(args) {
  const opts = { nodes: 10_000, seconds: 15, warmup: 3, connections: 4, executions: 2, persistMs: 10_000 };
  for (let i = 0; i < args.length; i += 2) {
    const key = args[i]?.replace(/^--/, "").replace(/-(\w)/g, (_, c) => c.toUpperCase());
    const value = Number(args[i + 1]);
    if (!(key in opts) || !Number.isFinite(value) || value <= 0) {
      throw new Error(
        `unknown or bad argument ${args[i]} ${args[i + 1] ?? ""}; see the header of heartbeats.bench.mjs`,
      );
    }
    opts[key] = value;
  }
  return opts;
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function pool(items, limit, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Forks this file as a consumer child with `--expose-gc`; `ask` sends a command and awaits its answer. */
async function spawnChild(role, config) {
  const child = fork(fileURLToPath(import.meta.url), ["--bench-child", role, JSON.stringify(config)], {
    execArgv: [...process.execArgv.filter((a) => a !== "--expose-gc"), "--expose-gc"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const waiting = [];
  child.on("message", (m) => waiting.shift()?.resolve(m));
  child.on("exit", (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`the ${role} child exited (${code})`));
  });
  const ask = (command) =>
    new Promise((resolve, reject) => {
      waiting.push({ resolve, reject });
      if (command) child.send(command);
    });
  await ask(undefined); // "ready"
  return { ask, kill: () => child.kill("SIGKILL") };
}

// ── The consumer children ───────────────────────────────────────────────────────────────────

async function childMain(role, config) {
  const memory = async () => {
    globalThis.gc();
    globalThis.gc();
    const m = process.memoryUsage();
    if (process.env.HEAP_SNAPSHOT_DIR && role === "cp")
      (await import("node:v8")).writeHeapSnapshot(
        `${process.env.HEAP_SNAPSHOT_DIR}/${Date.now()}.heapsnapshot`,
      );
    return { heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers };
  };
  let received;
  let total;
  let stats = () => ({});
  let base;
  if (role === "cp") {
    const { connectNatsBus } = await import("@edgeplane/bus");
    const { createNodeRegistry } = await import("@edgeplane/orchestrator");
    const { createRedisDesiredStateStore, createRedisNodeStore } = await import("@edgeplane/store");
    const bus = await connectNatsBus({ servers: [config.nats], name: "bench-control-plane" });
    const registry = createNodeRegistry({
      bus,
      nodeStore: createRedisNodeStore({ redis: config.redis, prefix: config.prefix }),
      desiredStore: createRedisDesiredStateStore({ redis: config.redis, prefix: config.prefix }),
      heartbeatIntervalMs: 1000,
      heartbeatPersistMs: config.persistMs,
      logger: quiet,
    });
    base = await memory();
    await registry.start();
    received = () => registry.stats().received.heartbeat;
    total = received;
    stats = () => registry.stats();
    process.on("message", (m) => {
      if (m.type === "count") process.send({ nodes: registry.size });
    });
  } else {
    const { connect } = await import("@nats-io/transport-node");
    const { fromBinary } = await import("@bufbuild/protobuf");
    const { HeartbeatSchema } = await import("@edgeplane/api");
    const nc = await connect({ servers: [config.nats], name: "bench-bare" });
    let count = 0;
    let sink = 0;
    nc.subscribe(HEARTBEAT_SUBJECT, {
      callback: (err, msg) => {
        if (err) return;
        const hb = fromBinary(HeartbeatSchema, msg.data);
        sink += hb.executions.length;
        count++;
      },
    });
    await nc.flush();
    base = await memory();
    received = () => count;
    total = () => count + (sink > 0 ? 0 : 0);
  }
  let cpu0;
  let n0;
  process.on("message", async (m) => {
    if (m.type === "start") {
      cpu0 = process.cpuUsage();
      n0 = received();
      process.send({ ok: true });
    } else if (m.type === "stop") {
      const cpu = process.cpuUsage(cpu0);
      process.send({ cpuUs: cpu.user + cpu.system, messages: received() - n0 });
    } else if (m.type === "finish") {
      const now = await memory();
      process.send({
        heapUsed0: base.heapUsed,
        arrayBuffers0: base.arrayBuffers,
        ...now,
        total: total(),
        stats: stats(),
      });
    }
  });
  process.send({ ready: true });
}

if (process.argv[2] === "--bench-child") {
  childMain(process.argv[3], JSON.parse(process.argv[4] ?? "{}")).catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
