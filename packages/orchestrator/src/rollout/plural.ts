/** `1 node`, `2 nodes`, `1 canary`, `3 canaries`: a count and its noun, for messages a person reads. */
export function plural(n: number, word: string, words = `${word}s`): string {
  return `${n} ${n === 1 ? word : words}`;
}
