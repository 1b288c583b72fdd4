#!/usr/bin/env node
// `npm run bench -- <name> [args]`: runs test/bench/<name>.mjs against the built packages (dist/).
// Each benchmark measures its own same-run baseline and prints, as its last line, one JSON object
// {"bench", "goal", "met", ...figures}. `npm run bench` with no name lists them.
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const names = readdirSync(here)
  .filter((f) => f.endsWith(".bench.mjs"))
  .map((f) => f.slice(0, -".bench.mjs".length))
  .sort();
const [name, ...args] = process.argv.slice(2);
if (!name || !names.includes(name)) {
  console.error(`usage: npm run bench -- <name>\nbenchmarks: ${names.join(", ") || "(none)"}`);
  process.exit(name ? 2 : 0);
}
const mod = await import(pathToFileURL(join(here, `${name}.bench.mjs`)).href);
const result = await mod.run(args);
console.log(JSON.stringify(result));
process.exit(0);
