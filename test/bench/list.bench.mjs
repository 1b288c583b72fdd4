// `npm run bench -- list [--jobs 1000000] [--samples 300] [--batch 2000] [--offset-samples 15]`: ListJobs keyset
// pagination on the Redis JobStore at depth, against an offset-based control on the same indexes
// in the same run, plus Redis memory per stored job.
//
// Setup: a fresh redis-server from testkit (configured like production: AOF everysec,
// noeviction, automatic AOF rewrites off so a rewrite does not run in the middle of a sample).
// Jobs are bulk-loaded with pipelined HSET/ZADD/XADD/SADD of exactly the structures the Lua
// scripts write (the store's own encoders from @edgeplane/store/internal; the integration suite
// checks those are byte-identical to what putJob/updateStatus write), over a deterministic mix
// of 4 namespaces, 6 live states and 4 types, each with a ~1 KB spec. After loading, a few
// jobs go through putJob/findJob/getJob to check the store reads the loaded data as its own.
//
// Measured query: namespace "*", no filter, order created_at desc, limit 100: the widest k-way
// merge (every live partition of every namespace). Page 1 has no cursor; page 5000 starts from
// the cursor of the job just before it (found with the offset control below). Samples of the two
// pages alternate; each is one listJobs call, decode included. The offset control reads the same
// page with offset paging over the same partitions (merging from the start and skipping 499,900
// members in Lua), which is what OFFSET/LIMIT costs without keyset cursors; it must return the
// same jobs. Last (so its memory does not disturb the samples), a walk pages from the start to
// page 5000 and checks every page is full, every job is seen once, and it ends at that cursor.
//
// Memory: used_memory after loading minus before, per job; minus the average spec JSON size
// (the encoded JSON, although the store keeps specs compressed: see the store's README).
//
// The specs: ~1.16 KB of snake_case JSON in canonical key order, but not specs validateJobSpec
// would accept (an http_client output and Bloblang mappings the config schema does not have,
// selector expressions as objects, timeouts as strings, no defaults applied), with 36 random hex
// digits and per-job names, labels, paths and numbers. Each is compressed on its own (against a
// dictionary built from the schema, not from this data), so repeats between jobs do not help:
// they compress 2.4x, less than the validated examples/*.yaml (4-7x, `examples_spec_compression_ratio`).
//
// Without --expose-gc the benchmark re-runs itself in a child `node --expose-gc` (as the selector
// benchmark does), so that it can collect the loader's garbage before sampling.
import { Buffer } from "node:buffer";
import { readdirSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { validateJobSpec } from "@edgeplane/core";
import { parseSelector } from "@edgeplane/selector";
import { createRedisJobStore, LIVE_STATES, specDigest } from "@edgeplane/store";
import {
  decodeRecord,
  encodeRecord,
  labelsSlot,
  nameMember,
  submittedMessage,
  timeMember,
} from "@edgeplane/store/internal";
import { startRedis } from "@edgeplane/testkit";
import { Redis } from "ioredis";
import { parse as parseYaml } from "yaml";
import { prng, respawnWithGc, round } from "./lib.mjs";

const GOAL =
  "p99(page 5000)/p99(page 1) <= 1.5 and page p99 < 10 ms at 1M jobs; Redis memory per job <= encoded spec + 300 B";
const LIMIT = 100;
const DEEP_PAGE = 5000;
const NAMESPACES = [
  ["production", 0.4],
  ["staging", 0.3],
  ["edge-eu", 0.2],
  ["edge-us", 0.1],
];
const STATES = [
  ["running", 0.5],
  ["completed", 0.2],
  ["pending", 0.1],
  ["failed", 0.1],
  ["queued", 0.05],
  ["stopped", 0.05],
];
const TYPES = [
  ["pipeline", 0.5],
  ["query", 0.2],
  ["update", 0.2],
  ["config", 0.1],
];
const BASE_TIME = Date.UTC(2025, 0, 1);

export async function run(args = []) {
  // gc() between phases keeps the loader's garbage out of the samples; it needs --expose-gc.
  if (typeof globalThis.gc !== "function") return respawnWithGc("list", args);
  const opts = parseArgs(args);
  const server = await startRedis({ args: ["--auto-aof-rewrite-percentage", "0"] });
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  try {
    const store = createRedisJobStore({ redis, prefix: "ep:" });
    const before = await usedMemory(redis);
    const load = await loadJobs(redis, store, opts);
    const after = await usedMemory(redis);
    const memoryPerJob = (after - before) / opts.jobs;
    const loadedOk = await checkLoaded(store, load.sample);

    const query = {
      namespace: "*",
      limit: LIMIT,
      orderBy: "created_at",
      order: "desc",
      includeDeleted: false,
    };
    const deepPage = Math.min(DEEP_PAGE, Math.floor(opts.jobs / LIMIT));
    const skipped = (deepPage - 1) * LIMIT;
    const partitionKeys = [];
    for (const [ns] of NAMESPACES) {
      for (const state of LIVE_STATES) {
        for (const [type] of TYPES) partitionKeys.push(store.keys.index(ns, state, type, "created"));
      }
    }
    // The cursor of page `deepPage`: the job just before it, found with the offset control.
    const [lastId, lastPacked] = await offsetPage(redis, store, partitionKeys, skipped - 1, 1);
    const cursor = { key: JSON.parse(lastPacked.slice(0, lastPacked.indexOf("\n")))[10], id: lastId };

    const page1 = [];
    const pageDeep = [];
    globalThis.gc();
    await redis.config("RESETSTAT");
    for (let i = 0; i < opts.samples; i++) {
      page1.push(await timed(() => store.listJobs(query)));
      pageDeep.push(await timed(() => store.listJobs({ ...query, cursor })));
    }
    // Server-side share: the listJobs script's own time (both pages together).
    const stats = await redis.info("commandstats");
    const scriptUs = Number(
      /cmdstat_evalsha:calls=\d+,usec=\d+,usec_per_call=([\d.]+)/.exec(stats)?.[1] ?? NaN,
    );
    const expected = (await store.listJobs({ ...query, cursor })).items.map((j) => j.id);
    const offset = [];
    let offsetAgrees = true;
    for (let i = 0; i < opts.offsetSamples; i++) {
      let reply;
      offset.push(
        await timed(async () => {
          reply = await offsetPage(redis, store, partitionKeys, skipped, LIMIT);
          for (let j = 1; j < reply.length; j += 2) decodeRecord(reply[j - 1], reply[j]);
        }),
      );
      if (reply.filter((_, j) => j % 2 === 0).join() !== expected.join()) offsetAgrees = false;
    }
    // Last, so its memory does not disturb the samples: paging from the start reaches the same
    // cursor, every page full, every job once.
    const walk = await walkTo(store, query, deepPage, cursor);
    const codec = codecCost();

    const p99Page1 = percentile(page1, 0.99);
    const p99Deep = percentile(pageDeep, 0.99);
    const ratio = p99Deep / p99Page1;
    const overhead = memoryPerJob - load.specBytes;
    const correct = walk.ok && offsetAgrees && loadedOk;
    const met = correct && ratio <= 1.5 && Math.max(p99Page1, p99Deep) < 10 && overhead <= 300;
    return {
      bench: "list",
      goal: GOAL,
      met,
      jobs: opts.jobs,
      p50_page1_ms: round(percentile(page1, 0.5)),
      p99_page1_ms: round(p99Page1),
      p50_page5000_ms: round(percentile(pageDeep, 0.5)),
      p99_page5000_ms: round(p99Deep),
      ratio: round(ratio),
      redis_script_ms_per_page: round(scriptUs / 1000),
      offset_p50_page5000_ms: round(percentile(offset, 0.5)),
      offset_p99_page5000_ms: round(percentile(offset, 0.99)),
      memory_per_job_bytes: Math.round(memoryPerJob),
      encoded_spec_bytes: Math.round(load.specBytes),
      stored_spec_bytes: Math.round(load.storedSpecBytes),
      spec_compression_ratio: round(load.specBytes / load.storedSpecBytes, 2),
      overhead_per_job_bytes: Math.round(overhead),
      memory_breakdown_per_job: await breakdown(redis, store, opts.jobs),
      // Per record, in this process: encode (meta + deflate of the spec), decode with the spec
      // compressed as stored, and decode of the same record with a plain-JSON spec (as before
      // compression); a page decodes 100 records.
      record_encode_us: codec.encodeUs,
      record_decode_us: codec.decodeUs,
      record_decode_plain_json_us: codec.decodePlainUs,
      examples_spec_compression_ratio: exampleRatios(),
      deep_page: deepPage,
      correct,
      checks: { paging_walk: walk.ok, offset_agrees: offsetAgrees, loaded_data_read_by_store: loadedOk },
      query: "namespace * (all live states and types), created_at desc, limit 100",
      partitions_merged: partitionKeys.length,
      samples: opts.samples,
      offset_samples: opts.offsetSamples,
      load_seconds: round(load.seconds, 1),
      // Other work on the machine shows up in the p99s: the 1-minute load average at the end.
      cpus: cpus().length,
      load_average_1m: round(loadavg()[0] ?? 0, 2),
      redis: (await redis.info("server")).match(/redis_version:(\S+)/)?.[1],
      node: process.version,
    };
  } finally {
    redis.disconnect();
    await server.stop({ graceMs: 5000 });
  }
}

function parseArgs(args) {
  const opts = { jobs: 1_000_000, samples: 300, batch: 2000, offsetSamples: 15 };
  for (let i = 0; i < args.length; i++) {
    const value = Number(args[i + 1]);
    if (args[i] === "--jobs") opts.jobs = value;
    else if (args[i] === "--samples") opts.samples = value;
    else if (args[i] === "--batch") opts.batch = value;
    else if (args[i] === "--offset-samples") opts.offsetSamples = value;
    else continue;
    i++;
  }
  if (!(opts.jobs >= LIMIT * 2)) throw new Error(`--jobs must be at least ${LIMIT * 2}`);
  return opts;
}

function pick(rand, table) {
  let r = rand();
  for (const [value, weight] of table) {
    r -= weight;
    if (r < 0) return value;
  }
  return table[table.length - 1][0];
}

const hex = (rand, n) => Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join("");

/** A realistic ~1 KB pipeline/query/update/config spec (snake_case, canonical key order). */
function makeSpec(rand, i, namespace, type) {
  const region = ["us-west", "us-east", "eu-west", "eu-central", "ap-south"][i % 5];
  const name = `${type}-${region}-${i.toString(36)}`;
  const labels = {
    app: `app-${i % 101}`,
    env: namespace === "staging" ? "staging" : "production",
    region,
    team: `team-${i % 23}`,
  };
  return {
    config: {
      input: { file: { paths: [`/var/log/app-${i % 37}/*.log`, `/var/lib/edge/${hex(rand, 8)}/*.json`] } },
      output: {
        http_client: { url: `https://collector.${region}.example.com/ingest/${hex(rand, 12)}`, verb: "POST" },
      },
      pipeline: {
        processors: [
          { mapping: `root = this\nroot.site = "${region}-${i % 211}"\nroot.batch = "${hex(rand, 10)}"\n` },
          { filter: `this.level != "debug" && this.size > ${Math.floor(rand() * 1000)}` },
        ],
      },
    },
    deployment: {
      auto_promote: rand() < 0.5,
      canary_count: 2,
      health_check: { deadline: "300s", max_error_rate: 0.05, min_healthy_time: "30s" },
      max_failed_nodes: 3,
      max_parallel: 1 + (i % 10),
      strategy: ["rolling", "canary", "immediate"][i % 3],
    },
    description: `Collects ${type} data on edge nodes in ${region}, batch ${hex(rand, 6)}, and forwards it to the regional collector`,
    labels,
    meta: { owner: `user${i % 500}@example.com`, ticket: `OPS-${10000 + (i % 9000)}` },
    name,
    namespace,
    priority: 1 + (i % 100),
    restart_policy: "on-failure",
    selector: {
      match_expressions: [{ key: "tier", operator: "In", values: ["edge", "gateway"] }],
      match_labels: { env: labels.env, region },
    },
    timeouts: { execution_timeout: "3600s", queue_timeout: "600s" },
    type,
  };
}

/**
 * Bulk-loads the jobs: per job one HSET of the packed record, the three index ZADDs of its
 * partition, and its change-stream entry (capped like the store's), pipelined in batches.
 * The record is what putJob then updateStatus would leave: revision 2 unless still pending.
 */
async function loadJobs(redis, store, opts) {
  const keys = store.keys;
  const rand = prng(42);
  const started = performance.now();
  let specBytes = 0;
  let storedSpecBytes = 0;
  const sample = [];
  for (const [ns] of NAMESPACES) await redis.sadd(keys.namespaces, ns);
  let pipeline = redis.pipeline();
  const pending = [];
  for (let i = 0; i < opts.jobs; i++) {
    const namespace = pick(rand, NAMESPACES);
    const type = pick(rand, TYPES);
    const state = pick(rand, STATES);
    const spec = makeSpec(rand, i, namespace, type);
    const specJson = JSON.stringify(spec);
    specBytes += Buffer.byteLength(specJson);
    const createdAt = BASE_TIME + i * 7;
    const updatedAt = state === "pending" ? createdAt : createdAt + 3;
    const id = `job-${createdAt.toString(32).padStart(10, "0")}${i.toString(32).padStart(16, "0")}`;
    const meta = {
      namespace,
      name: spec.name,
      type,
      version: 1,
      revision: state === "pending" ? 1 : 2,
      stableVersion: 0,
      state,
      message: state === "pending" ? submittedMessage(1) : `${state} on 5 nodes`,
      details: {},
      deploymentId: "",
      createdAt,
      updatedAt,
      labels: labelsSlot(spec.labels, spec),
      digest: specDigest(type, spec.labels, spec),
      versionCreatedAt: createdAt,
      versionKind: "submit",
      sourceVersion: 0,
      oldestVersion: 1,
    };
    const record = encodeRecord(meta, specJson);
    storedSpecBytes += record.length - record.indexOf("\n") - 1;
    pipeline.hset(keys.records, id, record);
    pipeline.zadd(keys.index(namespace, state, type, "created"), 0, timeMember(createdAt, id));
    pipeline.zadd(keys.index(namespace, state, type, "updated"), 0, timeMember(updatedAt, id));
    pipeline.zadd(keys.index(namespace, state, type, "name"), 0, nameMember(spec.name, id));
    pipeline.xadd(
      keys.events,
      "MAXLEN",
      "~",
      100000,
      "*",
      "job",
      id,
      "ns",
      namespace,
      "kind",
      "status",
      "version",
      "1",
      "revision",
      String(meta.revision),
      "state",
      state,
      "time",
      String(updatedAt),
    );
    if (i % 99991 === 0) sample.push({ id, namespace, name: spec.name, type, spec, state, createdAt });
    if ((i + 1) % opts.batch === 0) {
      pending.push(pipeline.exec());
      pipeline = redis.pipeline();
      // Two batches in flight keep Redis busy while the next one is built.
      if (pending.length >= 2) await pending.shift();
    }
  }
  pending.push(pipeline.exec());
  for (const results of await Promise.all(pending)) {
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0];
  }
  return {
    seconds: (performance.now() - started) / 1000,
    specBytes: specBytes / opts.jobs,
    storedSpecBytes: storedSpecBytes / opts.jobs,
    sample,
  };
}

/** The store reads bulk-loaded jobs as its own: get, find, and an identical put is a no-op. */
async function checkLoaded(store, sample) {
  for (const s of sample) {
    const job = await store.getJob(s.id);
    const found = await store.findJob(s.namespace, s.name);
    const put = await store.putJob({
      namespace: s.namespace,
      name: s.name,
      type: s.type,
      labels: s.spec.labels,
      spec: s.spec,
      newId: `${s.id}-new`,
      now: s.createdAt + 10,
    });
    if (job?.state !== s.state || job.createdAt !== s.createdAt || found?.id !== s.id) return false;
    if (put.changed || put.job.id !== s.id) return false;
  }
  return sample.length > 0;
}

/** Pages from the start to `page`: every page full, every job once, ending at `cursor`. */
async function walkTo(store, query, page, cursor) {
  const seen = new Set();
  let next;
  let ok = true;
  for (let p = 1; p < page; p++) {
    const result = await store.listJobs(next === undefined ? query : { ...query, cursor: next });
    for (const job of result.items) {
      if (seen.has(job.id)) ok = false;
      seen.add(job.id);
    }
    if (result.items.length !== LIMIT || result.next === undefined) ok = false;
    next = result.next;
  }
  return { ok: ok && seen.size === (page - 1) * LIMIT && next?.id === cursor.id && next?.key === cursor.key };
}

/** Offset paging over the same partitions: merge from the start, skip `offset`, take `limit`. */
const OFFSET_LUA = `
local offset, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local heap, n = {}, 0
local function head(i) local p = heap[i]; return p.buf[p.pos] end
local function fill(p)
  p.buf = redis.call("ZREVRANGE", p.key, p.start, p.start + 999)
  p.start, p.pos = p.start + #p.buf, 1
  return #p.buf > 0
end
local function down(i)
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and head(l) > head(m) then m = l end
    if r <= n and head(r) > head(m) then m = r end
    if m == i then return end
    heap[i], heap[m] = heap[m], heap[i]
    i = m
  end
end
for i = 2, #KEYS do
  local p = {key = KEYS[i], start = 0}
  if fill(p) then n = n + 1; heap[n] = p end
end
for i = math.floor(n / 2), 1, -1 do down(i) end
local ids, taken = {}, 0
while n > 0 and taken < offset + limit do
  local p = heap[1]
  taken = taken + 1
  if taken > offset then ids[#ids + 1] = string.sub(p.buf[p.pos], 13) end
  p.pos = p.pos + 1
  if p.pos > #p.buf and not fill(p) then heap[1] = heap[n]; heap[n] = nil; n = n - 1 end
  if n > 0 then down(1) end
end
local out = {}
if #ids > 0 then
  local records = redis.call("HMGET", KEYS[1], unpack(ids))
  for i, id in ipairs(ids) do out[#out + 1] = id; out[#out + 1] = records[i] end
end
return out
`;

/** One offset page: `[id, packed record, ...]` of members offset..offset+limit-1, newest first. */
function offsetPage(redis, store, partitionKeys, offset, limit) {
  return redis.eval(
    OFFSET_LUA,
    partitionKeys.length + 1,
    store.keys.records,
    ...partitionKeys,
    offset,
    limit,
  );
}

async function breakdown(redis, store, jobs) {
  const usage = async (key) => Number((await redis.call("MEMORY", "USAGE", key, "SAMPLES", "200")) ?? 0);
  let indexes = 0;
  let stream = 0;
  for (const [ns] of NAMESPACES) {
    for (const state of LIVE_STATES) {
      for (const [type] of TYPES) {
        for (const kind of ["created", "updated", "name"])
          indexes += await usage(store.keys.index(ns, state, type, kind));
      }
    }
  }
  stream = await usage(store.keys.events);
  return {
    records_hash: Math.round((await usage(store.keys.records)) / jobs),
    indexes_3_per_job: Math.round(indexes / jobs),
    events_stream: Math.round(stream / jobs),
    note: "MEMORY USAGE estimates (sampled); used_memory also counts allocator overhead",
  };
}

/** µs per record to encode, decode (spec compressed) and decode with a plain-JSON spec. */
function codecCost() {
  const rand = prng(7);
  const records = [];
  const plain = [];
  for (let i = 0; i < 2000; i++) {
    const spec = makeSpec(rand, i, "production", "pipeline");
    const specJson = JSON.stringify(spec);
    const meta = {
      namespace: "production",
      name: spec.name,
      type: "pipeline",
      version: 1,
      revision: 2,
      stableVersion: 0,
      state: "running",
      message: "running on 5 nodes",
      details: {},
      deploymentId: "",
      createdAt: BASE_TIME + i,
      updatedAt: BASE_TIME + i + 3,
      labels: 0,
      digest: specDigest("pipeline", spec.labels, spec),
      versionCreatedAt: BASE_TIME + i,
      versionKind: "submit",
      sourceVersion: 0,
      oldestVersion: 1,
    };
    records.push([meta, specJson]);
  }
  const best = (fn) => {
    let min = Infinity;
    for (let r = 0; r < 5; r++) {
      const t = performance.now();
      fn();
      min = Math.min(min, performance.now() - t);
    }
    return round((min * 1000) / records.length, 2);
  };
  const packed = records.map(([meta, json]) => encodeRecord(meta, json));
  for (const [i, p] of packed.entries()) plain.push(`${p.slice(0, p.indexOf("\n"))}\n${records[i][1]}`);
  return {
    encodeUs: best(() => {
      for (const [meta, json] of records) encodeRecord(meta, json);
    }),
    decodeUs: best(() => {
      for (const [i, p] of packed.entries()) decodeRecord(`job-${i}`, p);
    }),
    decodePlainUs: best(() => {
      for (const [i, p] of plain.entries()) decodeRecord(`job-${i}`, p);
    }),
  };
}

/** Encoded / stored spec size of each example in examples/ (validated, as the store gets them). */
function exampleRatios() {
  const dir = new URL("../../examples/", import.meta.url);
  const out = {};
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()) {
    const spec = validateJobSpec(parseYaml(readFileSync(new URL(file, dir), "utf8")), {
      parseExpression: (e) => parseSelector(e),
    });
    const json = JSON.stringify(spec);
    const record = encodeRecord({ labels: 0 }, json);
    out[file] = round(Buffer.byteLength(json) / (record.length - record.indexOf("\n") - 1), 2);
  }
  return out;
}

async function usedMemory(redis) {
  const info = await redis.info("memory");
  return Number(/used_memory:(\d+)/.exec(info)[1]);
}

async function timed(fn) {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}
