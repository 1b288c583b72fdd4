/**
 * The selector parser: Kubernetes' `labels.Parse` grammar, plus edgeplane's two decisions
 * (an empty expression is rejected; `>`/`<` are supported with Kubernetes' semantics).
 *
 * ```
 * selector    := requirement { "," requirement }
 * requirement := "!" KEY | KEY | KEY ("=" | "==" | "!=") [VALUE]
 *              | KEY ("in" | "notin") "(" VALUE? { "," VALUE? } ")" | KEY (">" | "<") INTEGER
 * ```
 *
 * One pass, one token of lookahead, no backtracking and no regular expressions, so the cost is
 * linear in the input. Errors name the UTF-8 byte offset of the offending token (the end of
 * the string when input ran out), what was found, what was expected and, for the common
 * mistakes (`IN`, `>=`, `!k=v`, `||`), how to fix it.
 */
import { EdgeplaneError, type ErrorDetail } from "@edgeplane/core";
import { Lexer, type Token } from "./lexer.js";
import {
  compileRequirement,
  formatRequirement,
  type LabelPredicate,
  type Labels,
  type Operator,
  type Requirement,
} from "./requirement.js";
import { parseInt64, utf8Length, validateLabelKey, validateLabelValue } from "./validate.js";

/** A parsed selector: the AND of its requirements. */
export interface Selector {
  /** The requirements in the order they were written. */
  readonly requirements: readonly Requirement[];
  /** Whether `labels` satisfy every requirement (no requirements: always true). */
  matches(labels: Labels): boolean;
  /** The canonical spelling, requirements sorted by key as Kubernetes prints them. */
  toString(): string;
}

/** Options of {@link parseSelector}. */
export interface ParseSelectorOptions {
  /** The field named in errors, such as `label_selector`; default `selector`. */
  readonly field?: string;
  /**
   * Accept an empty or whitespace-only expression as "match everything" (Kubernetes' behaviour,
   * for query filters such as `?selector=`). Default false: in a job spec it is likely a mistake.
   */
  readonly allowEmpty?: boolean;
}

/**
 * Parses one selector expression: one requirement or several joined by `,` (Kubernetes syntax,
 * plus `>`/`<` with an integer).
 *
 * @throws EdgeplaneError `invalid_argument` whose message and single detail name the field, the
 *   byte position and what was expected, e.g.
 *   `selector: "tier in (a": at byte 10: expected "," or ")" — close the value list`;
 *   `metadata.position` holds the byte offset.
 * @example parseSelector("region=eu-west,tier in (edge,gateway),!maintenance").matches(labels)
 */
export function parseSelector(expr: string, options: ParseSelectorOptions = {}): Selector {
  const result = parseExpression(expr, options.allowEmpty ?? false);
  if (!Array.isArray(result)) throw fieldProblemsError([toFieldProblem(options.field ?? "selector", result)]);
  return createSelector(result);
}

/**
 * Parses a job's `match_expressions`: every string is a selector expression, and all their
 * requirements are ANDed. Every string is checked, and all problems are reported at once.
 *
 * @param field the field name used in errors: `match_expressions[2]`, or with a path such as
 *   `spec.selector.match_expressions` → `spec.selector.match_expressions[2]`.
 * @throws EdgeplaneError `invalid_argument` with one detail per bad string:
 *   `{field: "match_expressions[2]", description: "\"tier in (a\": at byte 10: expected ..."}`.
 */
export function parseMatchExpressions(
  list: readonly string[],
  field = "match_expressions",
): readonly Requirement[] {
  const problems: FieldProblem[] = [];
  const requirements = collectMatchExpressions(list, field, problems);
  if (problems.length > 0) throw fieldProblemsError(problems);
  return requirements;
}

/** A problem with one field: the detail to report and, for parse errors, the byte position. */
export interface FieldProblem {
  readonly detail: ErrorDetail;
  readonly position?: number;
}

/**
 * Parses every expression of `list`, appending one problem per bad string to `problems` and
 * returning the requirements of the good ones. Shared with `compileNodeSelector`, which reports the
 * problems of `match_labels`, `match_ids` and `match_expressions` in one error.
 * @internal
 */
export function collectMatchExpressions(
  list: readonly string[],
  field: string,
  problems: FieldProblem[],
): Requirement[] {
  const requirements: Requirement[] = [];
  list.forEach((expr, i) => {
    const result = parseExpression(expr, false);
    if (Array.isArray(result)) requirements.push(...result);
    else problems.push(toFieldProblem(`${field}[${i}]`, result));
  });
  return requirements;
}

/**
 * One `invalid_argument` error for all `problems`: the message is the first problem (and how many
 * more there are), `details` lists every one, `metadata.position` is the first byte position.
 * @internal
 */
export function fieldProblemsError(problems: readonly FieldProblem[]): EdgeplaneError {
  const first = problems[0];
  const head =
    first === undefined ? "invalid selector" : `${first.detail.field}: ${first.detail.description}`;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem(s), see details)` : "";
  const position = problems.find((p) => p.position !== undefined)?.position;
  return new EdgeplaneError("invalid_argument", head + more, {
    details: problems.map((p) => p.detail),
    metadata: position === undefined ? {} : { position },
  });
}

/** Builds a {@link Selector} over already validated requirements. */
export function createSelector(requirements: readonly Requirement[]): Selector {
  return new RequirementSelector(requirements);
}

class RequirementSelector implements Selector {
  readonly requirements: readonly Requirement[];
  /** Compiled on first use: validating a spec at submit time never needs them. */
  #predicates: readonly LabelPredicate[] | undefined;

  constructor(requirements: readonly Requirement[]) {
    this.requirements = [...requirements];
  }

  matches(labels: Labels): boolean {
    this.#predicates ??= this.requirements.map(compileRequirement);
    for (const p of this.#predicates) if (!p(labels)) return false;
    return true;
  }

  toString(): string {
    return [...this.requirements]
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map(formatRequirement)
      .join(",");
  }
}

/** A parse failure: where (UTF-16 index into the input) and what. */
interface Problem {
  readonly input: string;
  readonly index: number;
  readonly message: string;
}

/** Turns a parse problem into a field problem: `"<expr>": at byte N: <message>`. */
function toFieldProblem(field: string, p: Problem): FieldProblem {
  const position = utf8Length(p.input, p.index);
  return {
    detail: { field, description: `${quoteAround(p.input, p.index)}: at byte ${position}: ${p.message}` },
    position,
  };
}

/** The input as a JSON string; long inputs are cut to a window around `index` so messages stay short. */
function quoteAround(input: string, index: number): string {
  const max = 80;
  if (input.length <= max) return JSON.stringify(input);
  let start = Math.max(0, index - 30);
  let end = Math.min(input.length, index + 30);
  // Never cut a surrogate pair in half.
  if (start > 0 && isLowSurrogate(input.charCodeAt(start))) start++;
  if (end < input.length && isLowSurrogate(input.charCodeAt(end))) end--;
  const body = JSON.stringify(input.slice(start, end)).slice(1, -1);
  return `"${start > 0 ? "…" : ""}${body}${end < input.length ? "…" : ""}"`;
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

const OPERATORS = '"=", "==", "!=", "in", "notin", ">" or "<"';
const INT_RULE = "a non-negative base-10 integer of at most 63 digits and no larger than 9223372036854775807";

/** Shows a token in a message; very long identifiers are shortened. */
function shown(tok: Token): string {
  if (tok.kind === "end") return "the end of the expression";
  const text = tok.text.length > 40 ? `${tok.text.slice(0, 40)}…` : tok.text;
  return JSON.stringify(text);
}

/** Either the requirements of `expr` or the first problem found. */
function parseExpression(expr: string, allowEmpty: boolean): Requirement[] | Problem {
  const lx = new Lexer(expr);
  const fail = (tok: Token, expected: string, hint?: string): Problem => ({
    input: expr,
    index: tok.start,
    message: `${tok.kind === "end" ? "" : `found ${shown(tok)}, `}expected ${expected}${hint ? ` — ${hint}` : ""}`,
  });
  const invalid = (tok: Token, message: string): Problem => ({ input: expr, index: tok.start, message });

  const requirements: Requirement[] = [];
  const first = lx.peek();
  if (first.kind === "end") {
    if (allowEmpty) return requirements;
    return fail(
      first,
      'a requirement such as "key=value"',
      "an empty expression is rejected; leave it out to match everything",
    );
  }
  for (;;) {
    const start = lx.peek();
    if (start.kind !== "ident" && start.kind !== "!") {
      const hint = start.kind === "," ? 'remove the extra ","' : undefined;
      return fail(start, 'a label key or "!"', hint);
    }
    const req = parseRequirement(lx, fail, invalid);
    if (!("key" in req)) return req;
    requirements.push(req);
    const sep = lx.next();
    if (sep.kind === "end") return requirements;
    if (sep.kind !== ",") {
      const hint =
        sep.kind === "ident"
          ? 'requirements are separated by ","; values cannot contain spaces or be quoted'
          : undefined;
      return fail(sep, '"," or the end of the expression', hint);
    }
    const after = lx.peek();
    if (after.kind !== "ident" && after.kind !== "!") {
      return fail(after, 'a label key or "!" after ","', 'remove the extra ","');
    }
  }
}

const NOT_HINT = '"!" only negates a bare key ("!k": k is absent); write "k!=v" or "k notin (v)"';

type Fail = (tok: Token, expected: string, hint?: string) => Problem;
type Invalid = (tok: Token, message: string) => Problem;

function parseRequirement(lx: Lexer, fail: Fail, invalid: Invalid): Requirement | Problem {
  let tok = lx.next();
  const negated = tok.kind === "!";
  if (negated) {
    tok = lx.next();
    if (tok.kind !== "ident") {
      return fail(tok, 'a label key after "!"', tok.kind === "!" ? 'there is no "!!"' : undefined);
    }
  }
  const key = tok.text;
  const keyProblem = validateLabelKey(key);
  if (keyProblem !== undefined) return invalid(tok, `invalid key ${shown(tok)}: ${keyProblem}`);

  const after = lx.peek();
  if (after.kind === "end" || after.kind === ",") return requirement(key, negated ? "!" : "exists", []);
  if (negated) return fail(after, `"," or the end of the expression after "!${key}"`, NOT_HINT);

  const opTok = lx.next();
  let op: Operator;
  switch (opTok.kind) {
    case "=":
    case "==":
    case "!=":
    case ">":
    case "<":
      op = opTok.kind;
      break;
    case "ident":
      if (opTok.text === "in" || opTok.text === "notin") {
        op = opTok.text;
        break;
      }
      return fail(opTok, `an operator (${OPERATORS}), "," or the end of the expression`, operatorHint(opTok));
    default:
      return fail(opTok, `an operator (${OPERATORS}), "," or the end of the expression`);
  }

  if (op === "in" || op === "notin") return parseValueList(lx, key, op, fail, invalid);

  // A single value; a missing one (followed by "," or the end) is the empty value.
  const next = lx.peek();
  let value = "";
  let valueTok = next;
  if (next.kind === "ident") {
    valueTok = lx.next();
    value = valueTok.text;
  } else if (next.kind !== "end" && next.kind !== ",") {
    let hint: string | undefined;
    if ((op === ">" || op === "<") && next.kind === "=") {
      hint = `there is no "${op}=": write "${key}${op}N" with N one ${op === ">" ? "less" : "more"} than intended`;
    } else if (next.kind === "=") hint = `there is no "${op}=": write "${key}=v", "${key}==v" or "${key}!=v"`;
    return fail(next, op === ">" || op === "<" ? `an integer after "${op}"` : `a value after "${op}"`, hint);
  }
  if (op === ">" || op === "<") {
    if (parseInt64(value) === undefined || validateLabelValue(value) !== undefined) {
      if (valueTok.kind !== "ident") return fail(valueTok, `an integer after "${op}"`);
      return invalid(valueTok, `invalid value ${shown(valueTok)} for "${op}": it must be ${INT_RULE}`);
    }
    return requirement(key, op, [value]);
  }
  const valueProblem = validateLabelValue(value);
  if (valueProblem !== undefined) return invalid(valueTok, valueMessage(valueTok, key, valueProblem));
  return requirement(key, op, [value]);
}

/** `"(" item { "," item } ")"` where an item is a value or nothing (the empty value). */
function parseValueList(
  lx: Lexer,
  key: string,
  op: "in" | "notin",
  fail: Fail,
  invalid: Invalid,
): Requirement | Problem {
  const open = lx.next();
  if (open.kind !== "(") {
    return fail(open, `"(" to open the value list after "${op}"`, `write "${key} ${op} (a,b)"`);
  }
  const values = new Set<string>();
  for (;;) {
    const item = lx.peek();
    if (item.kind === "ident") {
      lx.next();
      const problem = validateLabelValue(item.text);
      if (problem !== undefined) return invalid(item, valueMessage(item, key, problem));
      values.add(item.text);
    } else if (item.kind === "," || item.kind === ")") {
      values.add(""); // "()", "(a,)", "(,a)" and "(a,,b)" all hold the empty value
    } else {
      return fail(item, 'a value, "," or ")"', item.kind === "end" ? "close the value list" : undefined);
    }
    const sep = lx.next();
    if (sep.kind === ")") break;
    if (sep.kind !== ",") {
      const hint =
        sep.kind === "end"
          ? "close the value list"
          : sep.kind === "ident"
            ? 'separate values with ","'
            : undefined;
      return fail(sep, '"," or ")"', hint);
    }
  }
  return requirement(key, op, [...values].sort());
}

function valueMessage(tok: Token, key: string, problem: string): string {
  const or = tok.text.includes("|") ? ' (there is no "||": use "k in (a,b)" for one of several values)' : "";
  const and = tok.text.includes("&") ? ' (there is no "&&": join requirements with ",")' : "";
  return `invalid value ${shown(tok)} for key "${key}": ${problem}${or}${and}`;
}

function operatorHint(tok: Token): string | undefined {
  const lower = tok.text.toLowerCase();
  if (lower === "in" || lower === "notin") return `operators are lower case: write "${lower}"`;
  return "a key is followed by an operator; keys and values cannot contain spaces";
}

function requirement(key: string, operator: Operator, values: string[]): Requirement {
  return { key, operator, values };
}
