/**
 * A raw-deflate decoder (RFC 1951) with a preset dictionary, for the compressed specs of the
 * Redis job store (`spec-codec.ts`).
 *
 * Why not `zlib.inflateRawSync`: every call builds a zlib stream object and a 32 KiB window
 * (about 7-10 µs and garbage before any byte is decoded), and a ListJobs page decodes 100 specs.
 * This loop reuses its buffers and allocates nothing. Encoding stays with Node's zlib
 * (`deflateRawSync`); the tests check this decoder against zlib's on random data.
 *
 * Huffman codes are decoded with a small lookup table (the next {@link FAST} input bits, as
 * deflate sends them, give symbol and length of every code up to that length) and bit by bit
 * beyond it.
 */
import { EdgeplaneError } from "@edgeplane/core";

// Length codes 257..285 and distance codes 0..29: base values and extra bits (RFC 1951 3.2.5).
const LEN_BASE = new Uint16Array([
  3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195,
  227, 258,
]);
const LEN_EXTRA = new Uint8Array([
  0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
]);
const DIST_BASE = new Uint16Array([
  1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097,
  6145, 8193, 12289, 16385, 24577,
]);
const DIST_EXTRA = new Uint8Array([
  0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
]);
/** The order code-length code lengths are sent in (RFC 1951 3.2.7). */
const CLEN_ORDER = new Uint8Array([16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]);

/** `REV[i]` is i with its 15 bits reversed (deflate sends Huffman codes most significant bit first). */
const REV = new Uint16Array(1 << 15);
for (let i = 0; i < REV.length; i++) {
  let x = i;
  let r = 0;
  for (let b = 0; b < 15; b++) {
    r = (r << 1) | (x & 1);
    x >>= 1;
  }
  REV[i] = r;
}

/** Bits of the lookup tables: small, because a spec is a few hundred bytes and each block rebuilds them. */
const FAST = 9;

/**
 * A Huffman code: the lookup table for its codes of at most {@link FAST} bits (`table[next bits]
 * = symbol << 4 | length`, 0 = a longer code or none), and the canonical form (codes per length,
 * symbols in code order) for the longer ones.
 */
interface Code {
  readonly table: Uint16Array;
  bits: number;
  readonly count: Uint16Array;
  readonly symbol: Uint16Array;
}

const newCode = (): Code => ({
  table: new Uint16Array(1 << FAST),
  bits: 0,
  count: new Uint16Array(16),
  symbol: new Uint16Array(288),
});

function corrupt(what: string): EdgeplaneError {
  return new EdgeplaneError("internal", `corrupt job store data: compressed spec ${what}`);
}

const offsets = new Uint16Array(16);

/** Which incomplete codes {@link build} accepts. */
type Incomplete = "none" | "lone" | "any";

/** Fills `h` from the code lengths `lengths[from .. from + n)` (canonical Huffman, RFC 1951 3.2.2). */
function build(h: Code, lengths: Uint8Array, from: number, n: number, incomplete: Incomplete): void {
  const count = h.count;
  count.fill(0);
  let max = 0;
  for (let i = 0; i < n; i++) {
    const l = lengths[from + i] as number;
    count[l] = (count[l] as number) + 1;
    if (l > max) max = l;
  }
  count[0] = 0;
  // As zlib: more codes than fit is corrupt, and so are fewer (unless `incomplete` allows them:
  // the fixed distance code is incomplete, and a block may have no distance code at all or a
  // single one-bit one).
  let left = 1;
  for (let l = 1; l <= 15; l++) {
    left = (left << 1) - (count[l] as number);
    if (left < 0) throw corrupt("has an over-subscribed Huffman code");
  }
  if (left > 0 && max > 0 && incomplete !== "any" && !(incomplete === "lone" && max === 1))
    throw corrupt("has an incomplete Huffman code");
  offsets[1] = 0;
  for (let l = 1; l < 15; l++) offsets[l + 1] = (offsets[l] as number) + (count[l] as number);
  // Symbols in code order: by length, then by value.
  for (let sym = 0; sym < n; sym++) {
    const l = lengths[from + sym] as number;
    if (l === 0) continue;
    const at = offsets[l] as number;
    offsets[l] = at + 1;
    h.symbol[at] = sym;
  }
  const bits = Math.max(1, Math.min(max, FAST));
  const table = h.table;
  table.fill(0, 0, 1 << bits);
  // Codes of one length are consecutive; the first of length l + 1 is (the last of l, + 1) << 1.
  let code = 0;
  let index = 0;
  for (let len = 1; len <= bits; len++) {
    const c = count[len] as number;
    for (let k = 0; k < c; k++, code++) {
      // The code's bits as they arrive, then every value of the table bits beyond it.
      const entry = ((h.symbol[index + k] as number) << 4) | len;
      for (let j = (REV[code] as number) >> (15 - len); j < 1 << bits; j += 1 << len) table[j] = entry;
    }
    index += c;
    code <<= 1;
  }
  h.bits = bits;
}

const FIXED_LIT = newCode();
const FIXED_DIST = newCode();
{
  const l = new Uint8Array(288);
  l.fill(8, 0, 144);
  l.fill(9, 144, 256);
  l.fill(7, 256, 280);
  l.fill(8, 280, 288);
  build(FIXED_LIT, l, 0, 288, "any");
  build(FIXED_DIST, new Uint8Array(30).fill(5), 0, 30, "any");
}
const dynLit = newCode();
const dynDist = newCode();
const clenCode = newCode();
const lengths = new Uint8Array(288 + 32);
const clens = new Uint8Array(19);

/**
 * Decodes a code longer than the lookup table (or none) one bit at a time, as zlib's puff.c
 * does, from `next` (at least 15 input bits). Returns `symbol << 4 | length`.
 */
function decodeLong(h: Code, next: number): number {
  let code = 0;
  let first = 0;
  let index = 0;
  for (let len = 1; len <= 15; len++) {
    code |= (next >>> (len - 1)) & 1;
    const c = h.count[len] as number;
    if (code - c < first) return ((h.symbol[index + (code - first)] as number) << 4) | len;
    index += c;
    first = (first + c) << 1;
    code <<= 1;
  }
  throw corrupt("has an invalid Huffman code");
}

let out = new Uint8Array(64 * 1024);

/** Replaces the output buffer by one at least `used + extra` long, keeping its first `used` bytes. */
function grow(used: number, extra: number): Uint8Array {
  let size = out.length * 2;
  while (size < used + extra) size *= 2;
  const bigger = new Uint8Array(size);
  bigger.set(out.subarray(0, used));
  out = bigger;
  return bigger;
}

/**
 * Inflates raw deflate `input` whose window starts with `dictionary`. Returns the output bytes
 * as a view of a buffer the next call reuses: decode them before calling again. Throws an
 * `internal` EdgeplaneError on malformed or truncated input; bytes after the final block are
 * ignored.
 */
export function inflateRaw(input: Uint8Array, dictionary: Uint8Array): Uint8Array {
  let o = dictionary.length;
  let dst = o + input.length * 4 > out.length ? grow(0, o + input.length * 4) : out;
  dst.set(dictionary, 0);
  const end = input.length;
  // The bit buffer: `bits` holds `count` input bits, next bit lowest (at most 31). Bytes past
  // the end load as 0, so that a table lookup near the end works; consuming them is caught by
  // `count < (ip - end) * 8` (checked where a block ends), and needing a fifth one means they
  // were consumed, which ends any loop over corrupt input.
  let bits = 0;
  let count = 0;
  let ip = 0;
  let final = 0;
  while (final === 0) {
    // The block header (3 bits) and, for a dynamic block, HLIT, HDIST and HCLEN (14 bits).
    while (count < 17) {
      if (ip < end) bits |= (input[ip] as number) << count;
      else if (ip >= end + 4) throw corrupt("ends early");
      ip++;
      count += 8;
    }
    final = bits & 1;
    const type = (bits >>> 1) & 3;
    bits >>>= 3;
    count -= 3;
    if (type === 0) {
      // Stored: to the byte boundary (giving back the whole bytes buffered), LEN, NLEN, bytes.
      ip -= count >> 3;
      bits = 0;
      count = 0;
      if (ip + 4 > end) throw corrupt("ends early");
      const len = (input[ip] as number) | ((input[ip + 1] as number) << 8);
      const nlen = (input[ip + 2] as number) | ((input[ip + 3] as number) << 8);
      if ((len ^ 0xffff) !== nlen) throw corrupt("has a bad stored block length");
      ip += 4;
      if (ip + len > end) throw corrupt("ends early");
      if (o + len > dst.length) dst = grow(o, len);
      dst.set(input.subarray(ip, ip + len), o);
      o += len;
      ip += len;
      continue;
    }
    let lit = FIXED_LIT;
    let dist = FIXED_DIST;
    if (type === 2) {
      const hlit = (bits & 31) + 257;
      const hdist = ((bits >>> 5) & 31) + 1;
      const hclen = ((bits >>> 10) & 15) + 4;
      bits >>>= 14;
      count -= 14;
      if (hlit > 286 || hdist > 30) throw corrupt("has too many length or distance codes");
      clens.fill(0);
      for (let i = 0; i < hclen; i++) {
        while (count < 3) {
          if (ip < end) bits |= (input[ip] as number) << count;
          else if (ip >= end + 4) throw corrupt("ends early");
          ip++;
          count += 8;
        }
        clens[CLEN_ORDER[i] as number] = bits & 7;
        bits >>>= 3;
        count -= 3;
      }
      build(clenCode, clens, 0, 19, "none");
      const total = hlit + hdist;
      for (let i = 0; i < total; ) {
        // A code of at most 7 bits and at most 7 extra bits.
        while (count < 24) {
          if (ip < end) bits |= (input[ip] as number) << count;
          else if (ip >= end + 4) throw corrupt("ends early");
          ip++;
          count += 8;
        }
        let e = clenCode.table[bits & ((1 << clenCode.bits) - 1)] as number;
        if (e === 0) e = decodeLong(clenCode, bits);
        bits >>>= e & 15;
        count -= e & 15;
        const sym = e >> 4;
        if (sym < 16) {
          lengths[i++] = sym;
          continue;
        }
        let repeat: number;
        let value = 0;
        if (sym === 16) {
          if (i === 0) throw corrupt("repeats a code length before the first");
          value = lengths[i - 1] as number;
          repeat = 3 + (bits & 3);
          bits >>>= 2;
          count -= 2;
        } else if (sym === 17) {
          repeat = 3 + (bits & 7);
          bits >>>= 3;
          count -= 3;
        } else {
          repeat = 11 + (bits & 127);
          bits >>>= 7;
          count -= 7;
        }
        if (i + repeat > total) throw corrupt("has too many code lengths");
        lengths.fill(value, i, i + repeat);
        i += repeat;
      }
      if ((lengths[256] as number) === 0) throw corrupt("has no end-of-block code");
      build(dynLit, lengths, 0, hlit, "lone");
      build(dynDist, lengths, hlit, hdist, "lone");
      lit = dynLit;
      dist = dynDist;
    } else if (type !== 1) throw corrupt("has an invalid block type");

    const litTable = lit.table;
    const litMask = (1 << lit.bits) - 1;
    const distTable = dist.table;
    const distMask = (1 << dist.bits) - 1;
    for (;;) {
      // A literal/length code: at most 15 bits (two bytes at a time while they last).
      if (count < 15) {
        if (ip + 2 <= end) {
          bits |= ((input[ip] as number) | ((input[ip + 1] as number) << 8)) << count;
          ip += 2;
          count += 16;
        } else {
          while (count < 15) {
            if (ip < end) bits |= (input[ip] as number) << count;
            else if (ip >= end + 4) throw corrupt("ends early");
            ip++;
            count += 8;
          }
        }
      }
      let e = litTable[bits & litMask] as number;
      if (e === 0) e = decodeLong(lit, bits);
      bits >>>= e & 15;
      count -= e & 15;
      const sym = e >> 4;
      if (sym < 256) {
        if (o >= dst.length) dst = grow(o, 1);
        dst[o++] = sym;
        continue;
      }
      if (sym === 256) break;
      const li = sym - 257;
      if (li >= 29) throw corrupt("has an invalid length code");
      // Its extra bits (at most 5), then a distance code (at most 15 bits) and its extra bits (at
      // most 13): refill to 24 bits before each step.
      const lx = LEN_EXTRA[li] as number;
      while (count < 24) {
        if (ip < end) bits |= (input[ip] as number) << count;
        else if (ip >= end + 4) throw corrupt("ends early");
        ip++;
        count += 8;
      }
      const len = (LEN_BASE[li] as number) + (bits & ((1 << lx) - 1));
      bits >>>= lx;
      count -= lx;
      while (count < 24) {
        if (ip < end) bits |= (input[ip] as number) << count;
        else if (ip >= end + 4) throw corrupt("ends early");
        ip++;
        count += 8;
      }
      let de = distTable[bits & distMask] as number;
      if (de === 0) de = decodeLong(dist, bits);
      bits >>>= de & 15;
      count -= de & 15;
      const di = de >> 4;
      if (di >= 30) throw corrupt("has an invalid distance code");
      const dx = DIST_EXTRA[di] as number;
      while (count < dx) {
        if (ip < end) bits |= (input[ip] as number) << count;
        else if (ip >= end + 4) throw corrupt("ends early");
        ip++;
        count += 8;
      }
      const d = (DIST_BASE[di] as number) + (bits & ((1 << dx) - 1));
      bits >>>= dx;
      count -= dx;
      if (d > o) throw corrupt("refers before its dictionary");
      if (o + len > dst.length) dst = grow(o, len);
      // Byte by byte: a match may overlap its own output (d < len).
      for (const stop = o + len; o < stop; o++) dst[o] = dst[o - d] as number;
    }
    if (count < (ip - end) * 8) throw corrupt("ends early");
  }
  return dst.subarray(dictionary.length, o);
}
