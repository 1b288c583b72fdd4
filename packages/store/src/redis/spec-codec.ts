/**
 * How a spec is stored inside a packed record or kept version (`record-codec.ts`): compressed,
 * because the spec is most of a job's memory in Redis and no Lua script ever reads it (it is
 * opaque after the record's first `\n`). Node compresses on write and decompresses on read.
 *
 * Stored form (the spec part of a record or version):
 * - `{...}`: plain JSON (records written before compression, and specs that would not shrink);
 * - `~1<packed>`: format 1, raw deflate (level 9) of the spec's JSON with the preset
 *   {@link SPEC_DICTIONARY_V1}, its bytes packed 7 bits per character so that the whole record
 *   stays ASCII. It must be text: the store reads records as JS strings (ioredis decodes replies
 *   as UTF-8), which would mangle raw binary. 7-bit packing costs 8/7 of the deflate size,
 *   base64 would cost 4/3.
 *
 * A stored spec's format is its first character, so records of every format can live side by
 * side; a new dictionary is a new format (`~2`), and the old one must be kept to read old records.
 */
import { Buffer } from "node:buffer";
import { constants, deflateRawSync } from "node:zlib";
import { EdgeplaneError } from "@edgeplane/core";
import { inflateRaw } from "./inflate.js";

/**
 * The preset dictionary of format 1: what a validated spec (core's `validateJobSpec`: canonical
 * key order, defaults applied) repeats from job to job. Built from the spec and config schemas
 * only (field names in canonical order, enum values, defaults, the label keys of the examples),
 * never from benchmark data. Deflate reaches back into it like into earlier output, cheapest
 * for its last bytes, so the commonest text comes last. Frozen (a test pins it): changing one
 * byte breaks every record written with it.
 */
export const SPEC_DICTIONARY_V1 =
  '"reload":{"args":["reload"],"command":"systemctl"}}' +
  '{"config":{"files":[{"content":"","mode":"0644","path":"etc/"}],' +
  '{"config":{"args":["-c"],"command":"/usr/bin/","env":{"PATH":""},"result_max_bytes":65536,"working_dir":"/var/lib/"},' +
  '"generate":{"batch_size":10,"count":100,"interval":"1s","message":{},"seq_field":"seq"}},' +
  '"nats":{"subject":"metrics."}},"output":{"discard":{}},"file":{"path":"/var/log/"}},"stdout":{}},' +
  '"pipeline":{"processors":[{"filter":"level != \\"debug\\""},{"mapping":"$merge([$, {\\"\\": $now()}])"}]}},' +
  '"canary","canary_count":1,"canary_percent":10,"max_parallel_percent":25,"no_auto_rollback":true,' +
  '"strategy":"immediate"},"strategy":"rolling"},"type":"query"}"type":"update"}"type":"config"}' +
  '"match_ids":["node-"],"edgeplane.io/os":"linux","tier":"edge"' +
  '{"config":{"input":{"file":{"paths":["/var/log/","*.log","*.json"]}},' +
  '"deployment":{"auto_promote":false,"health_check":{"deadline":"5m","max_error_rate":0.1,' +
  '"min_healthy_time":"30s"},"max_failed_nodes":10,"max_failed_nodes_percent":10,"max_parallel":0,' +
  '"no_auto_rollback":false,"strategy":"canary"},"description":"","labels":{"env":"production",' +
  '"region":""},"meta":{},"name":"","namespace":"default","priority":50,"restart_policy":"on-failure",' +
  '"selector":{"match_expressions":["tier in (edge,gateway)"],"match_labels":{"env":"production"}},' +
  '"timeouts":{"execution_timeout":0,"queue_timeout":0,"total_timeout":0},"type":"pipeline"}';

const DICT_V1 = Buffer.from(SPEC_DICTIONARY_V1, "utf8");
const FORMAT_V1 = "~1";

function corrupt(what: string, cause?: unknown): EdgeplaneError {
  return new EdgeplaneError("internal", `corrupt job store data: ${what}`, { cause });
}

/** Packs bytes 7 bits per character (ASCII 0-127), most significant bits first. */
function pack7(bytes: Uint8Array): string {
  const chars = Buffer.allocUnsafe(Math.ceil((bytes.length * 8) / 7));
  let acc = 0;
  let bits = 0;
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    acc = ((acc << 8) | (bytes[i] as number)) & 0x7fff;
    bits += 8;
    while (bits >= 7) {
      bits -= 7;
      chars[n++] = (acc >> bits) & 0x7f;
    }
  }
  if (bits > 0) chars[n++] = (acc << (7 - bits)) & 0x7f;
  return chars.toString("latin1", 0, n);
}

let unpacked = new Uint8Array(16 * 1024);

/** The inverse of {@link pack7} over `text[from..]` (a view of a reused buffer). */
function unpack7(text: string, from: number): Uint8Array {
  const size = Math.floor(((text.length - from) * 7) / 8);
  if (unpacked.length < size) unpacked = new Uint8Array(size * 2);
  let acc = 0;
  let bits = 0;
  let n = 0;
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) throw corrupt("a compressed spec has a character above 127");
    acc = ((acc << 7) | c) & 0x7fff;
    bits += 7;
    if (bits >= 8) {
      bits -= 8;
      unpacked[n++] = (acc >> bits) & 0xff;
    }
  }
  return unpacked.subarray(0, n);
}

/**
 * Specs this process wrote or read one job at a time lately: stored form → JSON, so that the
 * next reads of the same job do not inflate again. A submitted job's record is decoded about a
 * dozen times in a row (the put's reply, then the orchestrator's reads and status writes of the
 * new version). Entries come from {@link packSpec} and {@link unpackSpec} with `remember`, which
 * the store passes for single-job reads and writes but not for ListJobs pages (a page of other
 * jobs, inflated each time). Content-addressed (the same stored form is always the same JSON), so
 * sharing it between stores is harmless. Bounded in characters, oldest first out.
 */
const recent = new Map<string, string>();
const RECENT_MAX_CHARS = 4 * 1024 * 1024;
const RECENT_MAX_ENTRY = 64 * 1024;
let recentChars = 0;

function remember(stored: string, json: string): void {
  const size = stored.length + json.length;
  if (size > RECENT_MAX_ENTRY || recent.has(stored)) return;
  recent.set(stored, json);
  recentChars += size;
  for (const [k, v] of recent) {
    if (recentChars <= RECENT_MAX_CHARS) break;
    recent.delete(k);
    recentChars -= k.length + v.length;
  }
}

/**
 * The stored form of a spec's JSON: format 1 (compressed), or the JSON itself when compressing
 * would not make it shorter (tiny specs). Deterministic: the same JSON gives the same string.
 * `remember`: the store is about to write it, so keep it for the reads that follow.
 */
export function packSpec(json: string, options?: { remember?: boolean }): string {
  const compressed = deflateRawSync(Buffer.from(json, "utf8"), {
    level: constants.Z_BEST_COMPRESSION,
    dictionary: DICT_V1,
  });
  const packed = FORMAT_V1 + pack7(compressed);
  if (packed.length >= json.length) return json;
  if (options?.remember) remember(packed, json);
  return packed;
}

/**
 * The spec JSON of a stored spec, whatever its format; `what` names it in errors. `remember`:
 * keep it for the next read of the same job.
 */
export function unpackSpec(stored: string, what: string, options?: { remember?: boolean }): string {
  if (stored.charCodeAt(0) !== 0x7e) return stored; // not "~": plain JSON
  const known = recent.get(stored);
  if (known !== undefined) return known;
  if (stored.charCodeAt(1) !== 0x31)
    throw corrupt(`${what} has an unknown spec format ${stored.slice(0, 2)}`);
  const bytes = inflateRaw(unpack7(stored, 2), DICT_V1);
  const json = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("utf8");
  if (options?.remember) remember(stored, json);
  return json;
}
