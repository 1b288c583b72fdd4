/**
 * A structured diff of two specs: one change per leaf path that differs. Objects are walked key by
 * key; arrays and scalars are compared as whole values (a list of match_expressions is one value).
 */

/** One difference. `old_value` is absent when the field was added, `new_value` when removed. */
export interface SpecChangeJson {
  readonly path: string;
  readonly old_value?: unknown;
  readonly new_value?: unknown;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function pathOf(parent: string, key: string): string {
  const part = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : JSON.stringify(key);
  return parent === "" ? part : /^[A-Za-z_]/.test(part) ? `${parent}.${part}` : `${parent}[${part}]`;
}

/** The changes that turn `from` into `to`, sorted by path. */
export function diffSpecs(from: unknown, to: unknown, parent = ""): SpecChangeJson[] {
  if (isObject(from) && isObject(to)) {
    const keys = [...new Set([...Object.keys(from), ...Object.keys(to)])].sort();
    return keys.flatMap((k) => {
      const path = pathOf(parent, k);
      if (!(k in to)) return [{ path, old_value: from[k] }];
      if (!(k in from)) return [{ path, new_value: to[k] }];
      return diffSpecs(from[k], to[k], path);
    });
  }
  if (JSON.stringify(from) === JSON.stringify(to)) return [];
  return [{ path: parent, old_value: from, new_value: to }];
}
