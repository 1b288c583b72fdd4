/** `@edgeplane/cli`: the `edgectl` command line; the binary is `dist/main.js`. */
export { parseFlags, serverAddress } from "./args.js";
