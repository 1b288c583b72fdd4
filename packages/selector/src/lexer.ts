/**
 * The selector lexer, Kubernetes' `labels.Lexer` rules over a JS string.
 *
 * Kubernetes lexes bytes. Every byte the lexer treats specially is ASCII and UTF-8 never uses an
 * ASCII byte inside a multi-byte character, so scanning UTF-16 code units gives the same token
 * boundaries; byte offsets are computed only when an error is reported.
 *
 * Deliberate difference: Kubernetes stops at a NUL byte as if the string ended there (its reader
 * returns 0 at the end), so `x=a \0junk` is valid in Kubernetes. Here NUL is an ordinary identifier
 * byte, which then fails key/value validation: silently ignoring the rest of an expression is the
 * kind of surprise a control plane should not have.
 */

/** Token kinds. Keywords (`in`, `notin`) are identifiers; the parser decides by position. */
export type TokenKind = "ident" | "=" | "==" | "!=" | "!" | "(" | ")" | "," | ">" | "<" | "end";

/** One token: its kind, its text, and where it starts and ends (UTF-16 indexes into the input). */
export interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

/** Only these four bytes are whitespace (not `\v`, `\f` or NBSP, unlike JS `\s` and `trim()`). */
export function isSelectorWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/** `= ! ( ) , > <` */
function isSpecial(c: number): boolean {
  return c === 0x3d || c === 0x21 || c === 0x28 || c === 0x29 || c === 0x2c || c === 0x3e || c === 0x3c;
}

/** A pull lexer with one token of lookahead; linear in the input, no regular expressions. */
export class Lexer {
  readonly input: string;
  private pos = 0;
  private peeked: Token | undefined;

  constructor(input: string) {
    this.input = input;
  }

  /** The next token without consuming it. */
  peek(): Token {
    this.peeked ??= this.scan();
    return this.peeked;
  }

  /** Consumes and returns the next token. */
  next(): Token {
    const tok = this.peek();
    this.peeked = undefined;
    return tok;
  }

  private scan(): Token {
    const s = this.input;
    const n = s.length;
    let i = this.pos;
    while (i < n && isSelectorWhitespace(s.charCodeAt(i))) i++;
    if (i >= n) {
      this.pos = n;
      return { kind: "end", text: "", start: n, end: n };
    }
    const c = s.charCodeAt(i);
    if (isSpecial(c)) {
      // Longest match over "=", "==", "!=", "!", "(", ")", ",", ">", "<": only "!=" and "==" are
      // two bytes long, so `===` lexes as "==" then "=", and `>=` as ">" then "=".
      const two = i + 1 < n && s.charCodeAt(i + 1) === 0x3d && (c === 0x21 || c === 0x3d);
      const end = two ? i + 2 : i + 1;
      this.pos = end;
      const text = s.slice(i, end);
      return { kind: text as TokenKind, text, start: i, end };
    }
    let j = i + 1;
    while (j < n) {
      const d = s.charCodeAt(j);
      if (isSelectorWhitespace(d) || isSpecial(d)) break;
      j++;
    }
    this.pos = j;
    return { kind: "ident", text: s.slice(i, j), start: i, end: j };
  }
}
