/**
 * Query-string parameters of REST requests, validated at the edge: every parameter has a declared
 * kind; an unknown parameter or a malformed value is a 400 naming it.
 */
import { EdgeplaneError } from "@edgeplane/core";

/** The kinds of parameters. */
export type ParamKind = "string" | "int" | "bool" | "list";

type ValueOf<K extends ParamKind> = K extends "int"
  ? number
  : K extends "bool"
    ? boolean
    : K extends "list"
      ? string[]
      : string;

/** Parsed parameters: absent ones are undefined. */
export type Params<S extends Record<string, ParamKind>> = { [K in keyof S]?: ValueOf<S[K]> };

function bad(field: string, description: string): EdgeplaneError {
  return new EdgeplaneError("invalid_argument", `${field}: ${description}`, {
    details: [{ field, description }],
  });
}

/** Parses `query` against `schema`. Lists accept `a,b` and repeated parameters. */
export function parseQuery<S extends Record<string, ParamKind>>(
  query: URLSearchParams,
  schema: S,
): Params<S> {
  const out: Record<string, unknown> = {};
  for (const key of new Set(query.keys())) {
    const kind = schema[key];
    if (!kind) {
      const known = Object.keys(schema);
      throw bad(key, `is not a parameter of this endpoint${known.length ? `; use ${known.join(", ")}` : ""}`);
    }
    const values = query.getAll(key);
    if (kind === "list") {
      out[key] = values
        .flatMap((v) => v.split(","))
        .map((v) => v.trim())
        .filter(Boolean);
      continue;
    }
    if (values.length > 1) throw bad(key, "is given more than once");
    const raw = values[0] ?? "";
    if (kind === "int") {
      if (!/^-?\d{1,15}$/.test(raw)) throw bad(key, `must be an integer (got ${JSON.stringify(raw)})`);
      out[key] = Number(raw);
    } else if (kind === "bool") {
      if (raw !== "true" && raw !== "false" && raw !== "")
        throw bad(key, `must be true or false (got ${JSON.stringify(raw)})`);
      out[key] = raw !== "false";
    } else out[key] = raw;
  }
  return out as Params<S>;
}
