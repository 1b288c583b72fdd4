/**
 * Durations in Go syntax ("90s", "5m", "1h30m", "1.5h", "250ms"), as the Expanso API writes
 * them. Parsed by hand in one pass (no regular expression over user input).
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** The longest accepted duration: 10 years, to keep arithmetic on deadlines exact. */
const MAX_MS = 10 * 365 * 24 * 3_600_000;

/**
 * Parses a Go duration into milliseconds; `undefined` (with no throw) when it is not one.
 * Negative durations are refused (no edgeplane setting can be negative). "0" is accepted.
 */
export function parseDuration(text: string): number | undefined {
  if (text === "0") return 0;
  if (text.length === 0 || text.length > 64) return undefined;
  let i = 0;
  let total = 0;
  while (i < text.length) {
    const start = i;
    while (i < text.length && isDigit(text.charCodeAt(i))) i++;
    let number = text.slice(start, i);
    if (text[i] === ".") {
      i++;
      const fracStart = i;
      while (i < text.length && isDigit(text.charCodeAt(i))) i++;
      if (i === fracStart && number === "") return undefined;
      number = `${number || "0"}.${text.slice(fracStart, i) || "0"}`;
    }
    if (number === "") return undefined;
    const unitStart = i;
    while (i < text.length && !isDigit(text.charCodeAt(i)) && text[i] !== ".") i++;
    const factor = UNIT_MS[text.slice(unitStart, i)];
    if (factor === undefined) return undefined;
    total += Number(number) * factor;
  }
  if (!Number.isFinite(total) || total > MAX_MS) return undefined;
  return Math.round(total);
}

/** Formats milliseconds the way Go prints durations ("1h30m0s", "30s", "250ms"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000) return `${ms}ms`;
  let rest = Math.round(ms);
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = rest / 1000;
  return `${h > 0 ? `${h}h` : ""}${h > 0 || m > 0 ? `${m}m` : ""}${s}s`;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
