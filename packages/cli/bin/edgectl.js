#!/usr/bin/env node
// The `edgectl` command npm links into node_modules/.bin. It runs the built CLI (dist/main.js);
// it is its own file because npm links bins at install time, before the first build, and skips a
// bin whose file does not exist yet (which left `npx edgectl` asking the registry).
try {
  await import("../dist/main.js");
} catch (err) {
  if (err?.code === "ERR_MODULE_NOT_FOUND" && String(err.message).includes("main.js")) {
    process.stderr.write("edgectl is not built yet: run `npm run build` (or `npm start`) first\n");
    process.exit(2);
  }
  throw err;
}
