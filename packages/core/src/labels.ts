/**
 * Label key and value validation (shared by job labels, meta keys, node labels and the selector),
 * byte for byte what Kubernetes' `content.IsLabelKey` and
 * `content.IsLabelValue` accept (see `shared/reference/label-selector-semantics.md`).
 *
 * The checks are hand-written character loops rather than the regular expressions Kubernetes
 * uses: they run in one pass over at most a few hundred bytes, report the first offending
 * character, and there is no regular expression anywhere in this package to worry about.
 */

/** The longest name part of a key, and the longest value, in bytes. */
export const MAX_NAME_BYTES = 63;
/** The longest prefix (DNS subdomain) of a key, in bytes. */
export const MAX_PREFIX_BYTES = 253;
/** The longest label value, in bytes. */
export const MAX_VALUE_BYTES = 63;

/**
 * Why `key` is not a valid label key, or `undefined` when it is.
 *
 * A key is `[prefix "/"] name`: the name is 1–63 bytes of letters, digits, `-`, `_` and `.`,
 * starting and ending with a letter or digit (upper case allowed); the optional prefix is a
 * lowercase DNS subdomain of at most 253 bytes (no 63-byte cap per DNS label, as in Kubernetes).
 *
 * @example validateLabelKey("example.com/tier") // undefined
 * @example validateLabelKey("a/b/c") // 'has 2 "/" but a key has at most one ("prefix/name")'
 */
export function validateLabelKey(key: string): string | undefined {
  const slash = key.indexOf("/");
  if (slash === -1) return checkName(key, "name");
  if (key.indexOf("/", slash + 1) !== -1) {
    const count = key.split("/").length - 1;
    return `has ${count} "/" but a key has at most one ("prefix/name", e.g. "example.com/tier")`;
  }
  const prefix = key.slice(0, slash);
  const problem = checkPrefix(prefix);
  if (problem !== undefined) return problem;
  return checkName(key.slice(slash + 1), "name after the prefix");
}

/**
 * Why `value` is not a valid label value, or `undefined` when it is.
 *
 * A value is empty, or 1–63 bytes of letters, digits, `-`, `_` and `.` starting and ending with a
 * letter or digit. So `/`, `:`, spaces and a leading or trailing `-`, `_` or `.` are invalid.
 */
export function validateLabelValue(value: string): string | undefined {
  if (value.length === 0) return undefined;
  const bytes = utf8Length(value);
  if (bytes > MAX_VALUE_BYTES) return `is ${bytes} bytes long; a value is at most ${MAX_VALUE_BYTES} bytes`;
  const bad = firstBadNameChar(value);
  if (bad !== undefined) return `${bad}; a value is empty or ${NAME_RULE}`;
  return undefined;
}

const NAME_RULE = 'letters, digits, "-", "_" and "." that start and end with a letter or digit';

function checkName(name: string, what: string): string | undefined {
  if (name.length === 0) return `${what} is empty; it must be 1-${MAX_NAME_BYTES} bytes of ${NAME_RULE}`;
  const bytes = utf8Length(name);
  if (bytes > MAX_NAME_BYTES) return `${what} is ${bytes} bytes long; it is at most ${MAX_NAME_BYTES} bytes`;
  const bad = firstBadNameChar(name);
  if (bad !== undefined) return `${what}: ${bad}; it must be ${NAME_RULE}`;
  return undefined;
}

function checkPrefix(prefix: string): string | undefined {
  const rule = 'it must be a lowercase DNS subdomain such as "example.com"';
  if (prefix.length === 0) return `prefix before "/" is empty; ${rule}`;
  const bytes = utf8Length(prefix);
  if (bytes > MAX_PREFIX_BYTES)
    return `prefix is ${bytes} bytes long; it is at most ${MAX_PREFIX_BYTES} bytes`;
  // RFC 1123 subdomain: dot-separated non-empty labels of [a-z0-9-], each starting and ending
  // with [a-z0-9]. Kubernetes does not cap a label at 63 bytes here, so neither do we.
  let labelStart = 0;
  for (let i = 0; i <= prefix.length; i++) {
    const c = i < prefix.length ? prefix.charCodeAt(i) : DOT;
    if (c === DOT) {
      if (i === labelStart) {
        return i === prefix.length
          ? `prefix "${prefix}" ends with "."; ${rule}`
          : `prefix "${prefix}" has an empty part at offset ${i}; ${rule}`;
      }
      if (prefix.charCodeAt(i - 1) === DASH) return `prefix "${prefix}" has a part ending with "-"; ${rule}`;
      labelStart = i + 1;
    } else if (isLowerAlnum(c)) {
      // fine anywhere in a part
    } else if (c === DASH) {
      if (i === labelStart) return `prefix "${prefix}" has a part starting with "-"; ${rule}`;
    } else {
      const hint = c >= 0x41 && c <= 0x5a ? " (upper case is not allowed in the prefix)" : "";
      return `prefix "${prefix}": ${describeChar(prefix, i)} at offset ${i} is not allowed${hint}; ${rule}`;
    }
  }
  return undefined;
}

/** Describes the first character that breaks the name/value rule, or `undefined`. */
function firstBadNameChar(s: string): string | undefined {
  const last = s.length - 1;
  for (let i = 0; i <= last; i++) {
    const c = s.charCodeAt(i);
    if (isAlnum(c)) continue;
    if (c === DASH || c === UNDERSCORE || c === DOT) {
      if (i === 0) return `starts with ${describeChar(s, i)}`;
      if (i === last) return `ends with ${describeChar(s, i)}`;
      continue;
    }
    return `${describeChar(s, i)} at offset ${i} is not allowed`;
  }
  return undefined;
}

const DOT = 0x2e;
const DASH = 0x2d;
const UNDERSCORE = 0x5f;

function isLowerAlnum(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39);
}

function isAlnum(c: number): boolean {
  return isLowerAlnum(c) || (c >= 0x41 && c <= 0x5a);
}

/** A character quoted so that invisible ones (`\v`, NBSP, NUL) are visible in a message. */
function describeChar(s: string, i: number): string {
  const cp = s.codePointAt(i) ?? 0;
  const ch = String.fromCodePoint(cp);
  if (cp === 0x20) return '" " (space)';
  if (cp < 0x20 || cp === 0x7f || cp === 0xa0 || (cp >= 0xd800 && cp <= 0xdfff)) {
    return `"\\u${cp.toString(16).padStart(4, "0")}"`;
  }
  return JSON.stringify(ch);
}

/**
 * The length of `s` in UTF-8 bytes, or of its first `end` UTF-16 code units. A lone surrogate
 * counts 3 bytes, as its replacement character U+FFFD would be encoded.
 */
export function utf8Length(s: string, end: number = s.length): number {
  let bytes = 0;
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < end && isLowSurrogate(s.charCodeAt(i + 1))) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;

/**
 * Parses `s` exactly as Go's `strconv.ParseInt(s, 10, 64)`: an optional `+` or `-`, then one or
 * more ASCII digits (leading zeros allowed, no `_`), within int64. Returns a `number` when the value
 * is a safe integer (the common case, compared without allocating) and a `bigint` beyond that;
 * `undefined` when `s` is not an int64. Comparisons between `number` and `bigint` are exact in JS.
 */
export function parseInt64(s: string): number | bigint | undefined {
  const n = s.length;
  if (n === 0) return undefined;
  const first = s.charCodeAt(0);
  const signed = first === 0x2b || first === 0x2d;
  if (signed && n === 1) return undefined;
  for (let i = signed ? 1 : 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
  }
  // Up to 15 digits always fit a double exactly; longer ones go through BigInt for the range check.
  if (n <= 15) return Number(s);
  const big = BigInt(s);
  if (big > INT64_MAX || big < INT64_MIN) return undefined;
  return Number.isSafeInteger(Number(big)) ? Number(big) : big;
}
