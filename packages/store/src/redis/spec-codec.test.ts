import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { constants, deflateRawSync, inflateRawSync, type ZlibOptions } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { inflateRaw } from "./inflate.js";
import { packSpec, SPEC_DICTIONARY_V1, unpackSpec } from "./spec-codec.js";

const DICT = Buffer.from(SPEC_DICTIONARY_V1, "utf8");

/** A validated spec as the store gets it (canonical key order, defaults applied). */
const spec = {
  config: {
    input: { file: { paths: ["/var/log/app/*.log"] } },
    output: { stdout: {} },
    pipeline: { processors: [{ mapping: '$merge([$, {"processed_at": $now()}])' }] },
  },
  deployment: {
    auto_promote: false,
    health_check: { max_error_rate: 0.1, min_healthy_time: "30s" },
    max_failed_nodes: 10,
    max_failed_nodes_percent: 10,
    max_parallel: 0,
    no_auto_rollback: false,
    strategy: "immediate",
  },
  description: "Processes application logs from edge nodes — é ✓ 𝄞",
  labels: { env: "production", region: "us-west" },
  name: "log-processor",
  namespace: "production",
  priority: 50,
  restart_policy: "on-failure",
  selector: { match_labels: { env: "production" } },
  timeouts: { execution_timeout: 0, queue_timeout: 0, total_timeout: 0 },
  type: "pipeline",
};

/** Every way zlib writes blocks: stored, fixed and dynamic Huffman, Huffman-only, RLE. */
const zlibOptions: ZlibOptions[] = [
  { level: 0 },
  { level: 1 },
  { level: 6 },
  { level: 9 },
  { level: 9, strategy: constants.Z_FIXED },
  { level: 9, strategy: constants.Z_HUFFMAN_ONLY },
  { level: 9, strategy: constants.Z_RLE },
  { level: 9, memLevel: 1 },
];

/** Bytes that compress somewhat (repeats, a small alphabet) or not at all. */
const someBytes = fc.oneof(
  fc.uint8Array({ maxLength: 3000 }),
  fc
    .array(fc.constantFrom("{", "}", '"name"', ":", ",", "edge", "0", "1", "production", "é"), {
      maxLength: 800,
    })
    .map((parts) => Buffer.from(parts.join(""), "utf8")),
  fc
    .tuple(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 300 }))
    .map(([unit, n]) => Buffer.concat(Array.from({ length: n }, () => unit))),
);

describe("inflateRaw", () => {
  it("decodes what zlib encodes, with and without a dictionary, in every block type", () => {
    fc.assert(
      fc.property(someBytes, fc.constantFrom(...zlibOptions), fc.boolean(), (data, options, withDict) => {
        const dictionary = withDict ? DICT : new Uint8Array(0);
        const compressed = deflateRawSync(data, withDict ? { ...options, dictionary: DICT } : options);
        expect(Buffer.from(inflateRaw(compressed, dictionary))).toEqual(Buffer.from(data));
      }),
      { numRuns: 400 },
    );
  });

  it("decodes large outputs (the buffer grows) and matches across the dictionary", () => {
    const big = Buffer.from(JSON.stringify({ ...spec, config: { files: Array(3000).fill(spec) } }));
    expect(big.length).toBeGreaterThan(1_000_000);
    const compressed = deflateRawSync(big, { dictionary: DICT });
    expect(Buffer.from(inflateRaw(compressed, DICT)).equals(big)).toBe(true);
    const small = Buffer.from(JSON.stringify(spec));
    expect(Buffer.from(inflateRaw(deflateRawSync(small, { dictionary: DICT }), DICT)).equals(small)).toBe(
      true,
    );
  });

  it("rejects corrupt input with an internal error, and never decodes differently from zlib", () => {
    const valid = deflateRawSync(Buffer.from(JSON.stringify(spec)), { dictionary: DICT });
    const damaged = fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      fc.integer({ min: 0, max: valid.length - 1 }).map((n) => valid.subarray(0, n)), // truncated
      fc
        .tuple(fc.integer({ min: 0, max: valid.length - 1 }), fc.integer({ min: 1, max: 255 }))
        .map(([at, x]) => {
          const copy = Buffer.from(valid);
          copy[at] = (copy[at] as number) ^ x;
          return copy;
        }),
    );
    fc.assert(
      fc.property(damaged, (data) => {
        let expected: Buffer | undefined;
        try {
          expected = inflateRawSync(data, { dictionary: DICT, finishFlush: constants.Z_SYNC_FLUSH });
        } catch {
          expected = undefined;
        }
        let got: Buffer | undefined;
        try {
          got = Buffer.from(inflateRaw(data, DICT));
        } catch (err) {
          expect(err).toMatchObject({ code: "internal" });
          return;
        }
        // Accepted: zlib accepts it too, with the same bytes (zlib is laxer only about
        // truncation, which finishFlush Z_SYNC_FLUSH tolerates).
        expect(expected).toBeDefined();
        expect(got.equals(expected as Buffer)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("spec codec", () => {
  it("round-trips specs through the compressed format, ASCII only", () => {
    const json = JSON.stringify(spec);
    const stored = packSpec(json);
    expect(stored.startsWith("~1")).toBe(true);
    expect(stored.length).toBeLessThan(json.length / 3);
    expect([...stored].every((c) => c.charCodeAt(0) < 0x80)).toBe(true);
    expect(unpackSpec(stored, "record x")).toBe(json);
    expect(packSpec(json)).toBe(stored); // deterministic
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify({ value });
        expect(unpackSpec(packSpec(text), "record x")).toBe(text);
      }),
      { numRuns: 300 },
    );
  });

  it("decodes the same with or without remembering (a cache of recent specs)", () => {
    const json = JSON.stringify({ ...spec, name: "remembered" });
    const stored = packSpec(json, { remember: true });
    expect(stored).toBe(packSpec(json));
    expect(unpackSpec(stored, "record x")).toBe(json);
    const read = packSpec(JSON.stringify({ ...spec, name: "read" }));
    expect(unpackSpec(read, "record x", { remember: true })).toBe(unpackSpec(read, "record x"));
    // Large specs are not kept, and a flood of specs evicts old ones; neither changes results.
    const big = JSON.stringify({ ...spec, description: "y".repeat(100_000) });
    expect(unpackSpec(packSpec(big, { remember: true }), "record x")).toBe(big);
    for (let i = 0; i < 5000; i++) packSpec(JSON.stringify({ ...spec, name: `n${i}` }), { remember: true });
    expect(unpackSpec(stored, "record x")).toBe(json);
  });

  it("keeps specs that would not shrink as plain JSON, and reads plain JSON", () => {
    expect(packSpec("{}")).toBe("{}");
    expect(packSpec('{"a":1}')).toBe('{"a":1}');
    expect(unpackSpec('{"a":1}', "record x")).toBe('{"a":1}');
  });

  it("keeps format 1 readable: the dictionary is frozen and stored bytes decode as they did", () => {
    // Records in Redis outlive this code: a changed dictionary must be a new format.
    expect(createHash("sha256").update(SPEC_DICTIONARY_V1).digest("hex")).toBe(
      "fda0b15f2c5ee7c1c59bd948b1603478c3cd1a1bbd23fc7286cb3b2e0c3c263e",
    );
    const stored =
      "~1UaPT\u0013i|N%\u001aCi\u000b\u0006\u0003\u0012\u0014]\u0012\t\u00116E`\u0016\u00013:\\\fPX\tP9\u0011\u0018\u0000";
    expect(unpackSpec(stored, "record x")).toBe(
      '{"name":"golden","namespace":"default","priority":50,"type":"query","config":{"command":"uname","args":["-a"]}}',
    );
  });

  it("reports an unknown format or damaged data as internal", () => {
    expect(() => unpackSpec("~9abc", "record x")).toThrow(
      expect.objectContaining({ code: "internal", message: expect.stringContaining("record x") }),
    );
    expect(() => unpackSpec("~1\u00ff\u00ff", "record x")).toThrow(
      expect.objectContaining({ code: "internal" }),
    );
    const stored = packSpec(JSON.stringify(spec));
    expect(() => unpackSpec(stored.slice(0, 20), "record x")).toThrow(
      expect.objectContaining({ code: "internal" }),
    );
  });
});
