import { randomFillSync } from "node:crypto";

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"; // Crockford base32, lower case.

/**
 * Random bytes are drawn 4 KiB at a time (256 ids): each draw is a system call, ~8 µs on a VM,
 * which one id per API call made a visible share of a submit. Bytes are never reused.
 */
const pool = Buffer.alloc(4096);
let used = pool.length;

function random16(): Buffer {
  if (used + 16 > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const bytes = pool.subarray(used, used + 16);
  used += 16;
  return bytes;
}

/**
 * A new id `<prefix>-<10 chars of time><16 random chars>`: unique without coordination, sortable
 * by creation time (ULID-style), URL- and label-safe, such as `job-01jd3k5m7n9q2r4s6t8v0w2x4y`.
 */
export function newId(prefix: string, now: number = Date.now()): string {
  let time = "";
  let t = Math.max(0, Math.floor(now));
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = random16();
  let rand = "";
  for (const b of bytes) rand += ALPHABET[b % 32];
  return `${prefix}-${time}${rand}`;
}
