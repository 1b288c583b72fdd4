// npm run bench -- submit [--calls N] [--inflight N]
//
// PutJob over grpc-js against the control plane on the Redis store (1 KB specs, 64 calls in
// flight), against a bare grpc-js echo server that answers the same request bytes with the same
// bytes, measured in the same run. CPU per call is this process's CPU (client + server run here)
// plus, for PutJob, the Redis server's CPU from INFO (a separate process).
//
// Each PutJob also queues work for the rollout runtime and placement, which run in this process as
// in `edgectl server` and read the change stream at once after each write (and every 200 ms): they
// start the new version's deployment and move the job's state (extra guarded writes: with no
// node matching, one deployment create and one job write). Under 64 calls in flight they fall
// behind, so part of that work runs after the last PutJob answers. The run therefore waits for
// the process to go quiet after the warm-up (so that backlog is not charged to the echo) and after
// the PutJob phase, and reports that drain: its time, its CPU, and the sustained rate
// calls / (phase + drain).
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient, JobService, PutJobRequestSchema } from "@edgeplane/api";
import { startControlPlane } from "@edgeplane/control-plane";
import { fromGrpcStatus } from "@edgeplane/core";
import { startRedis } from "@edgeplane/testkit";
import * as grpc from "@grpc/grpc-js";
import { Redis } from "ioredis";
import { quiet } from "./lib.mjs";

function arg(args, name, fallback) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

/** A 1 KB spec, unique by name. */
function spec(i, ns) {
  return {
    name: `bench-${i}`,
    namespace: ns,
    type: "pipeline",
    description: "x".repeat(800),
    labels: { team: "bench", tier: "edge" },
    selector: { matchExpressions: ["tier in (edge,gateway)", "!maintenance"] },
    config: { input: { generate: { interval: "1s", message: { n: i } } }, output: { stdout: {} } },
  };
}

/** Runs `calls` calls with `inflight` concurrency; returns calls/s, CPU µs/call. */
async function drive(calls, inflight, callOne) {
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inflight }, async () => {
      while (next < calls) await callOne(next++);
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { rate: calls / (ms / 1000), cpuUsPerCall: (cpu.user + cpu.system) / calls, ms };
}

/**
 * Waits until this process is quiet (under 5% of a core for 3 windows of 100 ms in a row, or
 * `maxMs`): the orchestrator has worked off what the last phase queued. Returns the time until
 * the quiet windows began and the CPU µs used meanwhile.
 */
async function settle(maxMs = 120_000) {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let last = process.cpuUsage();
  let busyUntil = t0;
  let quietWindows = 0;
  while (quietWindows < 3 && performance.now() - t0 < maxMs) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const d = process.cpuUsage(last);
    last = process.cpuUsage();
    if (d.user + d.system < 5000) quietWindows++;
    else {
      quietWindows = 0;
      busyUntil = performance.now();
    }
  }
  const cpu = process.cpuUsage(cpu0);
  return { ms: busyUntil - t0, cpuUs: cpu.user + cpu.system };
}

async function redisCpuUs(redis) {
  const info = await redis.info("cpu");
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0);
  return (user + sys) * 1e6;
}

export async function run(args) {
  const calls = arg(args, "calls", 20_000);
  const inflight = arg(args, "inflight", 64);
  const server = await startRedis();
  const redis = new Redis(server.url);
  const cp = await startControlPlane({
    grpcAddr: "127.0.0.1:0",
    httpAddr: "127.0.0.1:0",
    store: server.url,
    redisPrefix: `bench${randomUUID().slice(0, 6)}`,
    logger: quiet,
  });
  const api = createClient(JobService, cp.grpcAddress, { fromStatus: fromGrpcStatus });

  // The bare echo server: the same method path, bytes in, the same bytes out.
  const echo = new grpc.Server();
  const identity = (b) => b;
  const echoService = {
    putJob: {
      path: "/edgeplane.v1.JobService/PutJob",
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  };
  echo.addService(echoService, { putJob: (call, cb) => cb(null, call.request) });
  const echoPort = await new Promise((resolve, reject) =>
    echo.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  const EchoClient = grpc.makeGenericClientConstructor(echoService, "Echo");
  const echoClient = new EchoClient(`127.0.0.1:${echoPort}`, grpc.credentials.createInsecure());

  const ns = `b${randomUUID().slice(0, 6)}`;
  // Both sides' requests are built before the clock starts: the echo gets request i's bytes, the
  // typed client request i's message, which it encodes to the same bytes in the timed loop.
  const requests = Array.from({ length: calls + 2000 }, (_, i) =>
    create(PutJobRequestSchema, { spec: spec(i, ns) }),
  );
  const payloads = requests.map((req) => Buffer.from(toBinary(PutJobRequestSchema, req)));
  const specBytes = payloads[0].length;
  const echoCall = (i) =>
    new Promise((resolve, reject) => echoClient.putJob(payloads[i], (e, r) => (e ? reject(e) : resolve(r))));
  const putCall = (i) => api.putJob(requests[i]);

  // Warm both paths (JIT, connections, Redis scripts loaded), then let the orchestrator work off
  // the warm-up jobs so that their backlog does not run during the echo phase.
  await drive(2000, inflight, (i) => echoCall(i));
  await drive(2000, inflight, (i) => api.putJob({ spec: spec(calls + i, `${ns}w`) }));
  const warmDrain = await settle();

  const echoResult = await drive(calls, inflight, echoCall);
  const r0 = await redisCpuUs(redis);
  const putResult = await drive(calls, inflight, putCall);
  const r1 = await redisCpuUs(redis);
  const drain = await settle();
  const r2 = await redisCpuUs(redis);
  const redisUsPerCall = (r1 - r0) / calls;

  const ratio = putResult.rate / echoResult.rate;
  api.close();
  echoClient.close();
  echo.forceShutdown();
  await cp.stop({ graceMs: 1000 });
  await redis.quit();
  await server.stop();
  const r = (x) => Math.round(x * 10) / 10;
  return {
    bench: "submit",
    goal: "PutJob on the Redis store >= 50% of a bare grpc-js echo's calls/s (stretch 70%), 1 KB specs, 64 in flight",
    met: ratio >= 0.5,
    stretch_met: ratio >= 0.7,
    calls,
    inflight,
    request_bytes: specBytes,
    put_calls_per_s: r(putResult.rate),
    echo_calls_per_s: r(echoResult.rate),
    ratio: Math.round(ratio * 1000) / 1000,
    put_cpu_us_per_call: r(putResult.cpuUsPerCall),
    put_redis_cpu_us_per_call: r(redisUsPerCall),
    echo_cpu_us_per_call: r(echoResult.cpuUsPerCall),
    // The orchestrator's backlog after the last PutJob answered (see the header).
    put_drain_ms: Math.round(drain.ms),
    put_sustained_calls_per_s: r(calls / ((putResult.ms + drain.ms) / 1000)),
    put_cpu_us_per_call_with_drain: r(putResult.cpuUsPerCall + drain.cpuUs / calls),
    put_redis_cpu_us_per_call_with_drain: r((r2 - r0) / calls),
    warmup_drain_ms: Math.round(warmDrain.ms),
    cpus: (await import("node:os")).cpus().length,
    load_average_1m: (await import("node:os")).loadavg()[0],
  };
}
