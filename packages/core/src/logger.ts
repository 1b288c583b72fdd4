/**
 * A small structured logger: one line per entry, `time level component message key=value...`,
 * or JSON lines when `EDGEPLANE_LOG_FORMAT=json`. The sink is injectable so tests can capture it.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Fields of one log entry. */
export type LogFields = Readonly<Record<string, unknown>>;

/** A logger of one component. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger of a sub-component (`control-plane.http`). */
  child(component: string): Logger;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  readonly component: string;
  /** Lowest level written; default from `EDGEPLANE_LOG_LEVEL`, else "info". */
  readonly level?: LogLevel;
  readonly format?: "text" | "json";
  /** Where lines go; default stderr. */
  readonly sink?: (line: string) => void;
}

function envLevel(): LogLevel {
  const v = process.env.EDGEPLANE_LOG_LEVEL;
  return v === "debug" || v === "info" || v === "warn" || v === "error" ? v : "info";
}

function formatValue(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.message);
  if (typeof value === "string") return /^[\w./:@-]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

/** Creates a logger. */
export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? envLevel();
  const format = options.format ?? (process.env.EDGEPLANE_LOG_FORMAT === "json" ? "json" : "text");
  const sink = options.sink ?? ((line: string) => process.stderr.write(`${line}\n`));
  const write = (lvl: LogLevel, message: string, fields?: LogFields): void => {
    if (RANK[lvl] < RANK[level]) return;
    const time = new Date().toISOString();
    if (format === "json") {
      const entry: Record<string, unknown> = { time, level: lvl, component: options.component, message };
      for (const [k, v] of Object.entries(fields ?? {})) entry[k] = v instanceof Error ? v.message : v;
      sink(JSON.stringify(entry));
      return;
    }
    let line = `${time} ${lvl.toUpperCase().padEnd(5)} ${options.component}: ${message}`;
    for (const [k, v] of Object.entries(fields ?? {})) if (v !== undefined) line += ` ${k}=${formatValue(v)}`;
    sink(line);
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (component) =>
      createLogger({ ...options, level, format, sink, component: `${options.component}.${component}` }),
  };
}
